# syntax=docker/dockerfile:1
# Production image: `docker build -t omnitron-capture .` (see docker-compose.yml).

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install -r /tmp/requirements.lock

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=omnitron.settings.production \
    HOST=0.0.0.0 \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/omnitron-metrics
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY . .
# Static files are collected at build time; the key, hosts and database URL here serve
# only this step (it connects to no database). Without the metrics directory, which
# does not exist yet: multiprocess metrics would fail to write their files.
RUN env -u PROMETHEUS_MULTIPROC_DIR DJANGO_SECRET_KEY=build-only-for-collectstatic-0123456789abcdefghijklmnopq DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=postgres://build-only@localhost/none \
    python manage.py collectstatic --noinput -v 0
# Prometheus' multiprocess files (a volume shared with the worker in docker-compose.yml).
RUN mkdir -p /tmp/omnitron-metrics && chown app /tmp/omnitron-metrics
USER app
EXPOSE 8000
# `docker run IMAGE` serves gunicorn; `docker run IMAGE worker` runs the webhook worker.
ENTRYPOINT ["scripts/docker-entrypoint.sh"]
