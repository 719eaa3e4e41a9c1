-- docker-compose.yml: MLflow's backend store, beside Airflow's metadata DB (POSTGRES_DB) on one server.
CREATE DATABASE mlops_mlflow OWNER airflow;
-- model.search: the Optuna studies the Celery workers share (connection mlops_search, [mlops] search_conn_id).
CREATE DATABASE mlops_search OWNER airflow;
