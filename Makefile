# convlens: `make serve` and `make test` set up .venv themselves; both are quiet when nothing needs installing.
VENV ?= .venv
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
MNIST_DIR ?= ../shared/mnist
export MNIST_DIR

PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: serve test test-fast lint docs screenshot train analyze report variants bench bench-training bench-peers peers \
	import-example

$(PY):
	@$(PYTHON) -m venv $(VENV)

$(VENV)/.serve-installed: $(PY) pyproject.toml constraints.txt
	@echo "installing the serve extra into $(VENV) (FastAPI, uvicorn, onnxruntime, numpy, Pillow): about 80 s the first time"
	@$(PIP) -e '.[serve]'
	@touch $@

$(VENV)/.all-installed: $(PY) pyproject.toml constraints.txt
	@echo "installing the serve, train and dev extras into $(VENV) (TensorFlow, PyTorch, Playwright, mkdocs-material...): several minutes the first time"
	@$(PIP) -e '.[serve,train,dev]'
	@touch $@ $(VENV)/.serve-installed

serve: $(VENV)/.serve-installed
	@HOST=$(HOST) PORT=$(PORT) $(PY) -m service

# Everything, as CI runs it (the docs build and the examples included): about 13 minutes on 2 cores.
test: $(VENV)/.all-installed
	@$(PY) -m pytest $(PYTEST_ARGS)

# The inner loop: everything but the slow lanes (training, containers, browser, load), on two pytest-xdist
# workers (one test file each at a time, so a file's fixtures start once); a few minutes on 2 cores.
test-fast: $(VENV)/.all-installed
	@$(PY) -m pytest -n 2 --dist loadfile -m "not (training or containers or browser or load)" $(PYTEST_ARGS)

# The documentation site, docs/ -> site/, refused on any warning (a broken link, a page left out of the nav).
docs: $(VENV)/.all-installed
	@NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site
	@echo "wrote site/index.html"

# docs/screenshot.png: the page in headless Chromium after drawing a 7, clicking a conv2 filter and opening the
# Explain panel (needs /usr/bin/chromium).
screenshot: $(VENV)/.all-installed
	@CONVLENS_SCREENSHOT=docs/screenshot.png $(PY) -m pytest -q -p no:cacheprovider tests/e2e/test_page.py \
		-k drawn_digits_are_recognised
	@echo "wrote docs/screenshot.png"

lint: $(VENV)/.all-installed
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

train: $(VENV)/.all-installed
	@$(PY) -m training train --data-dir $(MNIST_DIR) --out-dir models

analyze: $(VENV)/.all-installed
	@$(PY) -m training analyze --data-dir $(MNIST_DIR)

report: $(VENV)/.all-installed
	@$(PY) -m training report --data-dir $(MNIST_DIR)

# The activation x optimizer sweep (README, "Variants"): all 16 into models/variants/, a line per variant and epoch.
# Extra flags pass through, e.g. SWEEP_ARGS='--epochs 12' or SWEEP_ARGS='--out-dir /tmp/variants'.
variants: $(VENV)/.all-installed
	@$(PY) -m training sweep --data-dir $(MNIST_DIR) $(SWEEP_ARGS)

bench: $(VENV)/.all-installed
	@$(PY) -m bench
	@$(PY) -m bench.soak

# The peers (MLServer, PyTriton) in a virtualenv of their own beside the checkout: bench/peers-requirements.txt says
# why it is separate and why it is based on Debian's Python.
PEERS_VENV ?= ../venv-peers
PEERS_BASE_PYTHON ?= /usr/bin/python3

$(PEERS_VENV)/.installed: bench/peers-requirements.txt
	@echo "installing MLServer and PyTriton into $(PEERS_VENV): about a minute the first time"
	@$(PEERS_BASE_PYTHON) -m venv $(PEERS_VENV)
	@$(PEERS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r bench/peers-requirements.txt
	@touch $@

# KServe's Python model server and LitServe in another (bench/peers-kserve-requirements.txt says why).
KSERVE_VENV ?= ../venv-kserve

$(KSERVE_VENV)/.installed: bench/peers-kserve-requirements.txt
	@echo "installing KServe and LitServe into $(KSERVE_VENV): about a minute the first time"
	@$(PEERS_BASE_PYTHON) -m venv $(KSERVE_VENV)
	@$(KSERVE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r bench/peers-kserve-requirements.txt
	@touch $@

# Both peers' virtualenvs, without measuring (CI makes them so that the load lane's smoke run of bench.peers runs).
peers: $(PEERS_VENV)/.installed $(KSERVE_VENV)/.installed

# convlens beside MLServer, PyTriton, KServe and LitServe on the Open Inference Protocol (about 15 minutes):
# bench/results/peers.json.
bench-peers: $(VENV)/.all-installed $(PEERS_VENV)/.installed $(KSERVE_VENV)/.installed
	@CONVLENS_PEERS_PYTHON=$(abspath $(PEERS_VENV))/bin/python \
		CONVLENS_KSERVE_PYTHON=$(abspath $(KSERVE_VENV))/bin/python $(PY) -m bench.peers

# The classifier's training speed, every alternative beside a plain model.fit in the same run (about 40 minutes).
bench-training: $(VENV)/.all-installed
	@$(PY) -m bench.training

openapi: $(VENV)/.serve-installed
	@$(PY) -m service.api.openapi > openapi/openapi.json
	@echo "wrote openapi/openapi.json"

# The shipped example of a user's own network (examples/train_mnist_cnn.py) into models/imported/mnist-cnn/.
import-example: $(VENV)/.serve-installed
	@$(PY) -m service.importer examples/models/mnist-cnn.onnx --name mnist-cnn --preprocess mnist \
		--analysis examples/models/mnist-cnn-analysis
