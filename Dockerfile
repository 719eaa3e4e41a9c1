# The Airflow image with the pack, from any base (docker-compose.yml builds it; docs/deploy.md):
#   - the official image (default):       docker compose build
#   - a plain Debian 12 + Python 3.11 base (sites that cannot pull images; deploy/containers/base-image.sh):
#       podman build --build-arg BASE_IMAGE=localhost/mlops-base:bookworm-py311 -t airflow-mlops-pack:0.1.0 .
# Either way: user airflow (uid 50000, gid 0), AIRFLOW_HOME=/opt/airflow, ENTRYPOINT dumb-init + /entrypoint,
# Python packages from requirements-runtime.lock only (no test or lint tools), nothing fetched at run time.
# Python 3.11: the version the locks were resolved for.
ARG BASE_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${BASE_IMAGE}

ARG AIRFLOW_VERSION=3.3.2
ARG AIRFLOW_UID=50000
# The installer: pinned, like everything else the build fetches.
ARG UV_VERSION=0.9.30

USER 0
# On the official image this finds its user, venv and /entrypoint and changes nothing; on a plain
# Debian base it installs what the official image has and the services use (curl for health checks,
# dumb-init), creates the airflow user and a virtualenv at the official image's path (~/.local).
COPY deploy/containers/entrypoint.sh deploy/containers/prepare-base.sh /opt/mlops/bin/
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    AIRFLOW_UID="${AIRFLOW_UID}" sh /opt/mlops/bin/prepare-base.sh

ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW_USER_HOME_DIR=/home/airflow \
    AIRFLOW_VERSION=${AIRFLOW_VERSION} \
    PATH=/home/airflow/.local/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never

USER ${AIRFLOW_UID}
# The exact runtime versions (a subset of requirements.lock, `make lock`), installed without
# resolution; the cache mount keeps downloads across rebuilds and out of the image.
COPY --chown=${AIRFLOW_UID}:0 deploy/containers/install.sh /opt/mlops/bin/install.sh
COPY --chown=${AIRFLOW_UID}:0 requirements-runtime.lock requirements-build.lock /opt/mlops/
RUN --mount=type=cache,target=/home/airflow/.cache,uid=${AIRFLOW_UID},gid=0 \
    UV_VERSION="${UV_VERSION}" sh /opt/mlops/bin/install.sh -r /opt/mlops/requirements-runtime.lock

# The pack itself, without dependency resolution; its build backend pinned by requirements-build.lock.
COPY --chown=${AIRFLOW_UID}:0 pyproject.toml README.md /opt/mlops/
COPY --chown=${AIRFLOW_UID}:0 plugins/mlops_pack /opt/mlops/plugins/mlops_pack
RUN --mount=type=cache,target=/home/airflow/.cache,uid=${AIRFLOW_UID},gid=0 \
    UV_VERSION="${UV_VERSION}" sh /opt/mlops/bin/install.sh --build-constraints /opt/mlops/requirements-build.lock \
        /opt/mlops \
    && python -c "import airflow, mlops_pack; assert airflow.__version__ == '${AIRFLOW_VERSION}', airflow.__version__"

COPY --chown=${AIRFLOW_UID}:0 dags /opt/airflow/dags
COPY --chown=${AIRFLOW_UID}:0 include /opt/airflow/include
COPY --chown=${AIRFLOW_UID}:0 deploy /opt/airflow/deploy

WORKDIR /opt/airflow
EXPOSE 8080
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]
CMD []
