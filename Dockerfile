# syntax=docker/dockerfile:1
# The operator's image: `workunits run` on a slim Python, as a non-root user, with
# nothing written to the image at run time (it works with readOnlyRootFilesystem).
#
#   docker build -t workunits:dev .
#
# Dependencies come from requirements.lock (exact versions and hashes); regenerate it
# with pip-tools when pyproject.toml's dependencies change (see docs/install.md).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the locked dependencies and the package -----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src

# Dependencies first, so a change to the code alone reuses this layer.
COPY requirements.lock ./
RUN python -m venv /opt/workunits \
 && /opt/workunits/bin/pip install --no-deps --require-hashes -r requirements.lock

# The package itself, as a wheel; its dependencies are already there.
# README.m[d]: the glob keeps COPY from failing where the file is absent.
COPY pyproject.toml README.m[d] ./
COPY operator ./operator
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/workunits/bin/pip install --no-deps /wheels/*.whl \
 && /opt/workunits/bin/pip uninstall -y pip \
 && python -m compileall -q /opt/workunits

# --- run: the base image, the virtualenv, nothing else -------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="workunits" \
      org.opencontainers.image.description="Kubernetes operator: declared work units run as Jobs" \
      org.opencontainers.image.licenses="Apache-2.0"

# No package manager tooling at run time: the operator needs none.
RUN python -m pip uninstall -y pip setuptools wheel 2>/dev/null || true

COPY --from=build /opt/workunits /opt/workunits

# HOME points at /tmp, which the Deployment mounts as an emptyDir: the root filesystem
# stays read-only. Bytecode was compiled at build time and is never written.
ENV PATH=/opt/workunits/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    WORKUNITS_BIND_ADDRESS=0.0.0.0 \
    WORKUNITS_HEALTH_PORT=8081 \
    WORKUNITS_METRICS_PORT=8080

# A numeric user, so runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["workunits", "run"]
