# convlens API image: FastAPI + onnxruntime with the shipped models, no TensorFlow.
#   docker build -t convlens .            (podman: podman build --format docker -t convlens .)
#   docker run -p 8000:8000 convlens
# Configuration is environment only: CONVLENS_* (see README, "Configuration and limits"), WEB_CONCURRENCY
# (uvicorn worker processes, default 1), PORT (default 8000), FORWARDED_ALLOW_IPS (proxies trusted for
# X-Forwarded-*). Models are baked in at /app/models; mount another folder there to replace them.
ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtual environment with the serve extra only, pinned by constraints.txt ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml constraints.txt ./
# The requirement list is read from pyproject.toml (core dependencies + the serve extra), so this layer is
# rebuilt only when the dependencies change, not when the code does.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p.get('dependencies', []) + p['optional-dependencies']['serve']))" > requirements-serve.txt \
 && /opt/venv/bin/pip install -c constraints.txt -r requirements-serve.txt \
 && /opt/venv/bin/pip uninstall --quiet -y pip setuptools
COPY service/ /app/service/
RUN /opt/venv/bin/python -m compileall -q /app/service

# ---- runtime: the venv, the service package and the models; runs as an unprivileged user ----
FROM ${PYTHON_IMAGE}
ARG APP_UID=10001
RUN groupadd --gid ${APP_UID} convlens \
 && useradd --uid ${APP_UID} --gid ${APP_UID} --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin convlens
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONVLENS_MODEL_DIR=/app/models \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=1
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app/service /app/service
COPY models/ /app/models/
WORKDIR /app
# numeric, so that Kubernetes' runAsNonRoot can verify it
USER ${APP_UID}:${APP_UID}
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
# `python -m service` verifies the models (a bad one stops it with a one-line reason), then runs uvicorn on
# HOST:PORT with WEB_CONCURRENCY worker processes
CMD ["python", "-m", "service"]
