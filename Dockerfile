# mecasermin-cds: the CDS Hooks service under gunicorn, as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CDS_PORT=8080 \
    CDS_WORKERS=2 \
    CDS_WORKER_TIMEOUT=30 \
    CDS_AUTH_MODE=required \
    CDS_DATABASE_URL=sqlite:////var/lib/mecasermin-cds/mecasermin-cds.sqlite3

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY cards ./cards
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app cds \
    && mkdir -p /var/lib/mecasermin-cds \
    && chown cds /var/lib/mecasermin-cds

USER cds
VOLUME ["/var/lib/mecasermin-cds"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CDS_PORT', '8080'), timeout=2)"

CMD ["mecasermin-cds", "serve", "--host", "0.0.0.0"]
