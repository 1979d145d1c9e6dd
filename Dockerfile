# 1min-relay: the OpenAI-compatible relay for 1min.ai.
#   docker build -t 1min-relay .
#   docker run -p 5001:5001 -v relay-data:/data 1min-relay
# All configuration is by environment variable (see the README's configuration table).

# --- build the project's own wheel (the build backend is only needed here) ------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime ---------------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first, pinned and hash-checked, so this layer is reused until the lock file changes.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes -r /tmp/requirements.lock && rm /tmp/requirements.lock
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels

# An unprivileged user owning only the data directory (the embedded SQLite state lives there).
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin relay \
    && mkdir /data && chown relay:relay /data
USER relay
WORKDIR /data
# Listening on every interface is what a container needs; HOST/PORT stay overridable like any setting.
ENV DATA_DIR=/data HOST=0.0.0.0 PORT=5001
VOLUME ["/data"]
EXPOSE 5001

HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '5001'), timeout=4)"]

CMD ["1min-relay", "serve"]
