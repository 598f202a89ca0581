# memrelay image: one image for every role (`memrelay serve`, `memrelay worker`, `memrelay migrate`, `memrelay up`).
#   docker build -t memrelay .
#   docker compose up          (see docker-compose.yml and docs/operations.md)

# --- build: the locked dependencies (hash-checked) and memrelay itself into a venv -----------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/memrelay
WORKDIR /src
COPY requirements.lock ./
RUN /opt/memrelay/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml setup.py README.md ./
COPY memrelay ./memrelay
COPY engine ./engine
COPY gateway ./gateway
COPY connectors ./connectors
COPY worker ./worker
COPY workflows ./workflows
RUN /opt/memrelay/bin/pip install --no-deps --no-build-isolation . \
    && /opt/memrelay/bin/python -c "import memrelay.cli.main"

# --- runtime: the venv only, run as an unprivileged user -------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 memrelay \
    && useradd --system --uid 10001 --gid memrelay --home-dir /data --shell /usr/sbin/nologin memrelay \
    && mkdir -p /data && chown memrelay:memrelay /data
COPY --from=build /opt/memrelay /opt/memrelay
ENV PATH=/opt/memrelay/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MEMRELAY_DATA_DIR=/data \
    MEMRELAY_HOST=0.0.0.0 \
    MEMRELAY_PORT=8080
USER memrelay
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# liveness of the gateway; workers override it (docker-compose.yml) since they serve no HTTP
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('MEMRELAY_PORT', '8080')}/healthz\", timeout=4)"]
# SIGTERM (docker stop) drains: `serve` stops gunicorn, `worker` finishes or requeues its job
STOPSIGNAL SIGTERM
ENTRYPOINT ["memrelay"]
CMD ["serve"]
