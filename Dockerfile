# syntax=docker/dockerfile:1
# One image for every yQuant service; each compose service gives its own command:
#   python -m webhook | ordermanager | brokergateway | dashboard | kissim
# Build for both architectures (Oracle A1 is arm64), see docs/operations.md:
#   docker buildx build --platform linux/arm64,linux/amd64 -t REGISTRY/yquant:TAG --push .
# CPython 3.13 on trixie = glibc 2.41: requirements.lock holds wheels for exactly that
# (scripts/wheeltags.py). Pin the base by digest for reproducible builds:
#   --build-arg PYTHON_IMAGE=python:3.13-slim-trixie@sha256:...
# The container tests build FROM a stand-in with Debian trixie's python3 (3.13, tests/containers).
ARG PYTHON_IMAGE=python:3.13-slim-trixie

# --- build: a virtual environment from the lock, wheels only -------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# The venv gets no pip of its own: the base image's pip installs into it.
RUN python -m venv --without-pip /opt/venv
COPY requirements.lock /tmp/requirements.lock
# Every file is checked against the lock's sha256 and must be a wheel: nothing is compiled.
RUN python -m pip --python /opt/venv/bin/python install --no-deps --require-hashes --only-binary=:all: \
        -r /tmp/requirements.lock
COPY yquant /app/yquant
COPY webhook /app/webhook
COPY ordermanager /app/ordermanager
COPY brokergateway /app/brokergateway
COPY dashboard /app/dashboard
COPY kissim /app/kissim
COPY notifier /app/notifier
# Byte-code now: the root filesystem is read-only at run time.
RUN /opt/venv/bin/python -m compileall -q -j 0 /app

# --- runtime: the interpreter, the venv and the code; no compiler, no pip in the venv -------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="yquant" \
      org.opencontainers.image.description="TradingView alerts to risk-checked KIS orders: webhook, ordermanager, brokergateway, dashboard" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 yquant \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin yquant \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/yquant
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    YQ_ENVIRONMENT=production \
    YQ_LOG_JSON=true \
    YQ_STATE_DIR=/var/lib/yquant \
    YQ_VALKEY__LOAD_FUNCTIONS=false
WORKDIR /app
USER 10001:10001
EXPOSE 8000 8080 9101 9102
CMD ["python", "-m", "yquant", "--help"]
