# The example stack's image: litedeploy's entrypoint in front of a small demo app server.
# Tests build it from a locally made base image (no registry there): --build-arg BASE_IMAGE=...
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

# Extra pip arguments, e.g. "--no-index --find-links /src/wheels" for offline builds.
ARG PIP_ARGS=""

WORKDIR /src
COPY pyproject.toml README.md ./
COPY entrypoint ./entrypoint
COPY deploy ./deploy
COPY wheels ./wheels
RUN python3 -m venv /opt/litedeploy \
 && /opt/litedeploy/bin/pip install --no-cache-dir --disable-pip-version-check ${PIP_ARGS} /src \
 && rm -rf /src/wheels

# The app runs as this unprivileged user; the entrypoint starts as root only to hand the
# bind-mounted database folder to it, then drops privileges before exec.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home app \
 && mkdir -p /data && chown app:app /data

WORKDIR /app
COPY demo/server.py ./server.py
COPY demo/migrations ./migrations

ENV DB_PATH=/data/app.db \
    MIGRATIONS_DIR=/app/migrations \
    APP_USER=app \
    PORT=8000 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
VOLUME ["/data"]

HEALTHCHECK --interval=2s --timeout=2s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]

ENTRYPOINT ["/opt/litedeploy/bin/entrypoint", "run", "--"]
CMD ["python3", "/app/server.py"]
