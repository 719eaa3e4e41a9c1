"""Operator extra links: the MLflow run and model version, the drift report, Data Docs and quarantine.

Airflow's UI shows only http(s) links, so files in the pipeline's storage (drift reports, Data Docs,
quarantined partitions) are linked through the pack's plugin app on the api-server
(``<ui_base_url>/mlops/files/<pipeline>/<path>``, see docs/ui.md), which checks the caller's Airflow
login. MLflow links go to ``[mlops] mlflow_ui_url`` (or the ``mlflow`` connection's UI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from mlops_pack import settings

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


def _xcom(ti_key: TaskInstanceKey, key: str = "return_value") -> Any:
    from airflow.sdk.execution_time.xcom import XCom

    return XCom.get_value(ti_key=ti_key, key=key)


def _return_value(ti_key: TaskInstanceKey) -> dict:
    value = _xcom(ti_key)
    return value if isinstance(value, dict) else {}


def _mlflow_ui() -> str:
    from mlops_pack.hooks.mlflow import MlflowHook

    return MlflowHook()._ui_base()


def files_url(relative: str) -> str:
    """URL of ``<storage_root>/<relative>`` served by the plugin app (``relative`` = ``<pipeline>/...``)."""
    return f"{settings.ui_base_url()}{settings.UI_PREFIX}/files/{quote(relative.lstrip('/'))}"


def storage_url(uri: str, operator: Any = None) -> str:
    """The plugin-app URL of a storage URI under the task's storage root; empty if it is not under it."""
    roots = [getattr(operator, "storage_root", None), settings.storage_root()]
    for root in filter(None, roots):
        prefix = str(root).rstrip("/") + "/"
        if str(uri).startswith(prefix):
            return files_url(str(uri)[len(prefix):])
    return ""


class MlflowRunLink(BaseOperatorLink):
    """The MLflow run that trained the task's model."""

    name = "MLflow run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        try:
            value = _return_value(ti_key)
            return f"{_mlflow_ui()}/#/experiments/{value['experiment_id']}/runs/{value['run_id']}"
        except Exception:  # noqa: BLE001 - a link must never fail the task
            return ""


class MlflowModelVersionLink(BaseOperatorLink):
    """The registered model version the task trained, judged or scored with."""

    name = "MLflow model version"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        try:
            value = _return_value(ti_key)
            name = value.get("model_name") or value["model"]
            version = value.get("version") or value["model_version"]
            return f"{_mlflow_ui()}/#/models/{quote(str(name))}/versions/{quote(str(version))}"
        except Exception:  # noqa: BLE001 - a link must never fail the task
            return ""


class DriftReportLink(BaseOperatorLink):
    """The Evidently HTML report the task wrote, served by the plugin app."""

    name = "Drift report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        try:
            return storage_url(str(_return_value(ti_key)["report_uri"]), operator)
        except Exception:  # noqa: BLE001 - a link must never fail the task
            return ""


def _validation_uri(ti_key: TaskInstanceKey, field: str) -> str:
    results = _xcom(ti_key, "validation")
    if not isinstance(results, dict):
        return ""
    for result in results.values():
        if isinstance(result, dict) and result.get(field):
            return str(result[field])
    return ""


class _ValidationFileLink(BaseOperatorLink):
    """A file named by a field of the task's ``validation`` XCom, served by the plugin app."""

    field = ""

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        try:
            uri = _validation_uri(ti_key, self.field)
            return storage_url(uri, operator) if uri else ""
        except Exception:  # noqa: BLE001 - a link must never fail the task
            return ""


class DataDocsLink(_ValidationFileLink):
    """The Great Expectations Data Docs of the task's validation, served by the plugin app."""

    name = "Data Docs"
    field = "docs_uri"


class QuarantineLink(_ValidationFileLink):
    """The ``validation.json`` of a partition the task quarantined, served by the plugin app."""

    name = "Quarantine"
    field = "quarantine_uri"
