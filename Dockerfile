# syntax=docker/dockerfile:1
# Two stages: build the wheel with the full source, then install only the wheel
# (and its dependencies) into a clean image that runs as a non-root user.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the wheel is built from (pyproject names README.md as the readme).
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip wheel --no-deps -w /dist .

FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=builder /dist/ /tmp/dist/
RUN pip install /tmp/dist/*.whl \
    && rm -rf /tmp/dist \
    && groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
USER 10001
WORKDIR /tmp
EXPOSE 8000
# slim has no curl: use the interpreter. urlopen raises on connection errors and
# on HTTP >= 400, so a not-ready service exits non-zero.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=3)"]
ENTRYPOINT ["claims-validator"]
CMD ["serve"]
