# AIGC digits: the Streamlit dashboard with the shipped generator baked in.
#   docker build -t aigc-digits .
#   docker run --rm -p 8501:8501 --stop-timeout 60 aigc-digits    # then open http://localhost:8501
# CPU only. Runs need no network: the weights and the evaluator come from checkpoints/.
# A public demo by default: training is off (AIGC_TRAINING, below); see docs/hosting.md for the modes.

# The base image is pinned by digest, so a rebuild gets the same bytes. To update it, pick the new
# tag and read its digest (the multi-arch index), then replace both below and rebuild:
#   docker buildx imagetools inspect python:3.11-slim-bookworm      (the "Digest:" line)
#   or: docker pull python:3.11-slim-bookworm && docker inspect --format '{{index .RepoDigests 0}}' python:3.11-slim-bookworm
FROM python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    AIGC_TRAINING=off \
    AIGC_STOP_GRACE_S=50

WORKDIR /app

# Dependencies first, so that code changes reuse this layer. requirements.txt stays the one
# list of pins: on x86_64 the same TensorFlow version is installed as the CPU-only wheel
# (tensorflow-cpu, no CUDA libraries); elsewhere (arm64) the plain wheel is CPU-only already.
COPY requirements.txt ./
RUN if [ "$(uname -m)" = "x86_64" ]; then \
        sed -E 's/^tensorflow([=<>~!]=)/tensorflow-cpu\1/' requirements.txt > /tmp/requirements.docker.txt; \
    else \
        cp requirements.txt /tmp/requirements.docker.txt; \
    fi \
    && pip install -r /tmp/requirements.docker.txt \
    && rm /tmp/requirements.docker.txt

# Non-root user (uid 1000, as Hugging Face Spaces expects); only runs/ is writable by it,
# so a session can train but can never overwrite the shipped weights.
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin app \
    && mkdir -p /app/runs \
    && chown app:app /app/runs

COPY aigc/ ./aigc/
COPY checkpoints/ ./checkpoints/
COPY .streamlit/config.toml ./.streamlit/config.toml
COPY app.py ./

USER 1000
EXPOSE 8501

# Slim images have no curl: ask Streamlit's health endpoint with Python.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('STREAMLIT_SERVER_PORT', '8501'), timeout=4)" || exit 1

# PID 1 is a small supervisor: on `docker stop` (SIGTERM) it stops a running training job gracefully
# (checkpoint, state 'stopped') before the server; give it time with `docker run --stop-timeout 60`
# (Docker's default is 10 s, then SIGKILL). AIGC_STOP_GRACE_S is the trainer's share of that time.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "aigc.serve.supervisor", \
     "streamlit", "run", "app.py", \
     "--server.headless", "true", \
     "--server.address", "0.0.0.0", \
     "--server.fileWatcherType", "none"]
