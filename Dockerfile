# mecasermin-cds: the CDS Hooks service under gunicorn, as a non-root user.
# The base image is pinned by version (Python 3.11.14, Debian 12); to pin by digest as well, append
# `@sha256:…` from `docker buildx imagetools inspect python:3.11.14-slim-bookworm`.
# The SMART app's SDC renderer (LHC-Forms): npm ci from the lock file, in a stage of its own; only its
# prebuilt dist/lforms files reach the image (CDS_SMART_RENDERER_DIR). Nothing is built.
FROM node:22.20.0-bookworm-slim AS smart-web
WORKDIR /web
COPY service/smart/web/package.json service/smart/web/package-lock.json service/smart/web/.npmrc ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CDS_PORT=8080 \
    CDS_WORKERS=2 \
    CDS_WORKER_CLASS=gthread \
    CDS_THREADS=8 \
    CDS_WORKER_TIMEOUT=30 \
    CDS_AUTH_MODE=required \
    CDS_DATABASE_URL=sqlite:////var/lib/mecasermin-cds/mecasermin-cds.sqlite3 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/mecasermin-cds-metrics \
    CDS_SMART_RENDERER_DIR=/app/renderer/lforms

# The letter's PDF (WeasyPrint) needs Pango and a font from Debian.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Every dependency from the lock file, with its hash; then the service itself, without resolving anything.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY service ./service
COPY cards ./cards
COPY --from=smart-web /web/node_modules/lforms/dist/lforms ./renderer/lforms
RUN pip install --no-deps --no-build-isolation . && pip check \
    && useradd --system --uid 10001 --home-dir /app cds \
    && mkdir -p /var/lib/mecasermin-cds \
    && chown cds /var/lib/mecasermin-cds

USER 10001
VOLUME ["/var/lib/mecasermin-cds"]
EXPOSE 8080

# Liveness only (no database I/O): a busy database must not get a healthy container restarted.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('CDS_PORT', '8080'), timeout=2)"

CMD ["mecasermin-cds", "serve", "--host", "0.0.0.0"]
