"""Provider metadata (entry point ``apache_airflow_provider``): connection types and extra links."""

from __future__ import annotations

from mlops_pack import __version__


def get_provider_info() -> dict:
    # No "plugins" key: the airflow.plugins entry point registers MlopsPackPlugin, and a provider-declared
    # plugin would be a second registration (a plugin import error in the UI).
    return {
        "package-name": "airflow-mlops-pack",
        "name": "MLOps pack",
        "description": "Scrape, validate (Great Expectations), train and promote (MLflow), score and "
                       "monitor drift (Evidently): the closed retrain loop as operators and DAGs.",
        "versions": [__version__],
        "connection-types": [
            {"connection-type": "mlflow", "hook-class-name": "mlops_pack.hooks.mlflow.MlflowHook",
             "hook-name": "MLflow"},
            {"connection-type": "mlops_scrape", "hook-class-name": "mlops_pack.hooks.scrape.ScrapeHook",
             "hook-name": "MLOps scraping"},
        ],
        "triggers": [
            {"integration-name": "MLOps scraping", "python-modules": ["mlops_pack.triggers.source_change"]},
        ],
        "extra-links": [
            "mlops_pack.links.MlflowRunLink",
            "mlops_pack.links.MlflowModelVersionLink",
            "mlops_pack.links.DriftReportLink",
        ],
    }
