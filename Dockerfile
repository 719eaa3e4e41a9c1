# The official Airflow image with the pack installed from the lock (docker-compose.yml builds it).
# Python 3.11: the version requirements.lock was resolved for.
FROM apache/airflow:3.3.2-python3.11

# The exact versions the demo and the tests run, with Airflow itself held at the image's version.
COPY --chown=airflow:0 requirements.lock /opt/mlops/requirements.lock
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/mlops/requirements.lock

# The pack itself (no dependency resolution: the lock above has them all), then what the DAGs read.
COPY --chown=airflow:0 pyproject.toml README.md /opt/mlops/
COPY --chown=airflow:0 plugins/mlops_pack /opt/mlops/plugins/mlops_pack
RUN pip install --no-cache-dir --no-deps /opt/mlops

COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 include /opt/airflow/include
COPY --chown=airflow:0 deploy /opt/airflow/deploy
