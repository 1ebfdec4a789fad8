# syntax=docker/dockerfile:1
#
# patbot image: `docker build -t patbot:0.1.0 .`
#
# Two stages. The builder resolves the dependencies declared in pyproject.toml into a
# virtualenv at /opt/venv; the final stage copies only that virtualenv onto a fresh slim
# Python, so no pip cache, build backend, source tree or compiler reaches the image.
# Both stages use the same base image because a virtualenv is tied to its interpreter's path.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so that editing the code does not
# re-download them. Every dependency ships wheels, so the builder needs no compiler.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > requirements.txt \
 && pip install --requirement requirements.txt

# Then the project itself (README.md is optional to setuptools: a missing one is only a warning).
COPY bot ./bot
COPY handlers ./handlers
COPY entrypoints ./entrypoints
RUN pip install --no-deps . \
 && pip uninstall --yes pip

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="patbot" \
      org.opencontainers.image.description="Slack chat-ops bot that governs Databricks personal access tokens"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PORT=3000

# A fixed, unprivileged uid so that Kubernetes' runAsNonRoot / runAsUser 10001 match the image.
RUN groupadd --system --gid 10001 patbot \
 && useradd --system --uid 10001 --gid patbot --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin patbot

COPY --from=builder /opt/venv /opt/venv

# The working directory holds nothing: settings come from the environment or $PATBOT_SECRETS_DIR.
WORKDIR /app
USER 10001:10001

EXPOSE 3000

# /healthz answers 200 while the process lives, in HTTP and in Socket Mode alike.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=2)"]

ENTRYPOINT ["patbot"]
CMD ["serve"]
