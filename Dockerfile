# syntax=docker/dockerfile:1
# MAI API image: `docker build -t mai .` (docker compose builds it for the api and migrate services).

# --- build: resolve the locked dependencies into /app/.venv with uv ---------------------------
FROM python:3.11-slim AS build
# No ahead-of-time bytecode: it would add ~100 MB; the non-root user owns /app and writes
# __pycache__ on first import instead. (The locked runtime dependencies are ~410 MB.)
ENV UV_COMPILE_BYTECODE=0 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv>=0.5"
WORKDIR /app
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY alembic.ini langgraph.json* ./
COPY alembic ./alembic
COPY app ./app
COPY graphs ./graphs
COPY prompts ./prompts
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

# --- runtime: the virtualenv and the sources, no build tools, not root ------------------------
FROM python:3.11-slim AS runtime
LABEL org.opencontainers.image.title="MAI" \
      org.opencontainers.image.description="A production backend for LangGraph agents" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 mai \
    && useradd --system --uid 10001 --gid mai --home-dir /app --shell /usr/sbin/nologin mai \
    && mkdir -p /data \
    && chown mai:mai /data
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MAI_DATA_DIR=/data \
    MAI_PORT=8000 \
    MAI_WORKERS=1
WORKDIR /app
COPY --from=build --chown=mai:mai /app /app
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/mai-entrypoint
USER mai
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('MAI_PORT', '8000'), timeout=4); sys.exit(r.status != 200)"]
ENTRYPOINT ["mai-entrypoint"]
CMD ["serve"]
