"""convlens offline training: MNIST, the paper's networks in Keras, the ONNX export, the statistics and the report.

Importing the package turns TensorFlow's oneDNN kernels on (``TF_ENABLE_ONEDNN_OPTS=1``) unless the environment
already says otherwise. TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI or BF16 or AMX; on this
project's AVX2 machine they train the classifier faster too (``python -m bench.training``). The variable is read
when TensorFlow starts, hence here, before any module of the package imports it.

It also keeps TensorFlow quiet, so that the commands' own progress lines stand out, unless ``CONVLENS_TF_LOGS=1``
asks for its logs: its C++ log level (``TF_CPP_MIN_LOG_LEVEL``), its Python warnings (``tf.function`` retracing),
and the lines its C++ start-up writes before its log is initialised (``oneDNN custom operations are on``, ``Could
not find cuda drivers``), which ignore the log level: ``quiet_start`` keeps those out of stderr while TensorFlow is
first imported (by whichever module imports it: keras does too), and writes them after all if the import fails.
The package itself imports no TensorFlow, so commands that do not need it never start it.
"""

import logging
import os

from training.quiet_start import silence_tensorflow_start

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
if os.environ.get("CONVLENS_TF_LOGS", "") not in ("1", "true", "yes"):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    silence_tensorflow_start()
