"""AirflowPlugin of the pack: operator extra links, the UI app (files over HTTP) and the model health page.

Workers and the DAG processor load plugins too, so the FastAPI app (``mlops_pack.ui.app``, ~1 s of
imports) is built only when the api-server reads ``fastapi_apps``.

Registered once, by the ``airflow.plugins`` entry point of the installed package. Airflow reports any
second registration as a plugin import error, so nothing else may load it: ``plugins/.airflowignore``
keeps a plugins-folder scan of this checkout out of the package, provider.py declares no ``plugins``,
and the build writes no ``*.egg-info`` beside the package (a second distribution on sys.path).
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from mlops_pack import settings
from mlops_pack.links import (
    DataDocsLink,
    DriftReportLink,
    MlflowModelVersionLink,
    MlflowRunLink,
    QuarantineLink,
)


class _LazyApps:
    """Class attribute that imports and mounts the UI app on first read (the api-server's)."""

    def __get__(self, obj: Any, owner: Any = None) -> list[dict[str, Any]]:
        from mlops_pack.ui.app import app

        return [{"app": app, "url_prefix": settings.UI_PREFIX, "name": "MLOps pack"}]


class MlopsPackPlugin(AirflowPlugin):
    name = "mlops_pack"
    operator_extra_links = [MlflowRunLink(), MlflowModelVersionLink(), DriftReportLink(), DataDocsLink(),
                            QuarantineLink()]
    fastapi_apps = _LazyApps()  # type: ignore[assignment]
    external_views = [
        {"name": "Model health", "href": f"{settings.UI_PREFIX}/health", "destination": "nav",
         "url_route": "mlops_health", "category": "browse"},
        # On a DAG's page: the UI replaces {DAG_ID}; /health/<dag_id> redirects to its pipeline's page.
        {"name": "Model health", "href": f"{settings.UI_PREFIX}/health/dag/{{DAG_ID}}", "destination": "dag",
         "url_route": "mlops_dag_health"},
    ]
