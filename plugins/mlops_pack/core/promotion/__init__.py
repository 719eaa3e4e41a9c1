"""Promotion: the gate, the retrain policy, the typed decision and its record, the registry lease and
the planning of crash repair. Plain functions and dataclasses, no Airflow or MLflow import; the
registry side is ``hooks/mlflow_lock.py`` and the service that drives a promotion ``promotion.py``."""
