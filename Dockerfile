FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DATABASE_POOL=true
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN DEBUG=true python manage.py collectstatic --noinput

# Attachments (docs/attachments.md) on the filesystem storage: compose mounts the media volume here.
ENV MEDIA_ROOT=/app/media
RUN useradd --create-home app && mkdir -p /app/media && chown app /app/media
USER app

EXPOSE 8000
# Migrations run at start so a fresh database works. uvicorn serves HTTP and WebSockets and speaks
# the ASGI lifespan protocol (start-up recovery, graceful shutdown on SIGTERM); uvloop and httptools
# (requirements.txt) and the connection pool (DATABASE_POOL) are what bench/ measures.
# --no-proxy-headers: uvicorn believes no X-Forwarded-* header; the app does, as many hops as
# TRUSTED_PROXIES says (one: the nginx of docker-compose.yml, deploy/nginx.conf).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 CMD ["python", "deploy/healthcheck.py"]
CMD ["sh", "-c", "python manage.py migrate --noinput && exec uvicorn chatproject.asgi:application --host 0.0.0.0 --port 8000 --loop uvloop --http httptools --no-proxy-headers --no-access-log --timeout-graceful-shutdown 20"]
