# Thigh-pain CDS service. Two stages: the first builds the wheel and a virtual environment,
# the second copies only that environment into a clean slim image (no compilers, no pip
# cache, no sources), runs as an unprivileged user and answers its own health check.
#
#   docker build -t thigh-pain-cds .
#   docker run --rm -p 127.0.0.1:8080:8080 thigh-pain-cds
#
# Settings are CDS_* environment variables (README, "Configuration").

ARG PYTHON=3.11-slim-bookworm

FROM python:${PYTHON} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cds ./cds
COPY cards ./cards
RUN python -m venv /opt/cds \
 && /opt/cds/bin/pip install ".[postgres]" \
 && /opt/cds/bin/pip uninstall --yes pip

FROM python:${PYTHON}
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/cds --create-home cds
COPY --from=build /opt/cds /opt/cds
ENV PATH=/opt/cds/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CDS_HOST=0.0.0.0 \
    CDS_PORT=8080 \
    CDS_LOG_FORMAT=json \
    CDS_DATABASE_URL=sqlite:////var/lib/cds/cds-feedback.sqlite3
USER cds
WORKDIR /var/lib/cds
VOLUME ["/var/lib/cds"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CDS_PORT', '8080') + '/health/live', timeout=2)"]
CMD ["cds", "serve"]
