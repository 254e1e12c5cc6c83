# The tracker bot. Build: docker build -t activity-invite-tracker .
# Secrets (DISCORD_TOKEN, MONGODB_URI) come from the environment at run time, never from the image.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data \
    HEALTH_PORT=8080 \
    HEALTH_HOST=127.0.0.1

WORKDIR /app

# An unprivileged user that owns only the data folder; the code stays root-owned and read-only.
# /data/backups exists in the image so that a fresh volume mounted there (docker-compose.yml's
# bot-backups) starts owned by that user too.
RUN groupadd --system --gid 10001 tracker \
    && useradd --system --uid 10001 --gid tracker --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin tracker \
    && mkdir -p /data/backups \
    && chown tracker:tracker /data /data/backups \
    && chmod 700 /data/backups

# Dependencies in their own layer: rebuilt only when requirements.txt changes.
# The member card's fonts (Noto, CJK and emoji included) are PyPI packages in it: no apt step.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY main.py ./
COPY app/ app/
COPY cogs/ cogs/
COPY repositories/ repositories/
COPY scripts/ scripts/

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080

# docker stop sends SIGTERM: the bot flushes open voice sessions and pending writes, then exits.
# Give it time with stop_grace_period (docker-compose.yml) or `docker stop -t 60`.
STOPSIGNAL SIGTERM

# /healthz: 200 when the gateway is connected and MongoDB answers a ping (standard library, no curl).
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=3 \
    CMD ["python", "/app/scripts/docker/healthcheck.py"]

CMD ["python", "main.py"]
