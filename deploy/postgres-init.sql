-- docker-compose.yml: MLflow's backend store, beside Airflow's metadata DB (POSTGRES_DB) on one server.
CREATE DATABASE mlops_mlflow OWNER airflow;
