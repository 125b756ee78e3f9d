# AIGC digits: the Streamlit dashboard with the shipped generator baked in.
#   docker build -t aigc-digits .
#   docker run --rm -p 8501:8501 aigc-digits            # then open http://localhost:8501
# CPU only. Runs need no network: the weights and the evaluator come from checkpoints/.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

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

CMD ["streamlit", "run", "app.py", \
     "--server.headless", "true", \
     "--server.address", "0.0.0.0", \
     "--server.fileWatcherType", "none"]
