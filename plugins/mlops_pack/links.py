"""Operator extra links: the MLflow run and model version, the drift report, Data Docs and quarantine.

Links are stored when a task finishes, so they name no host or port: each is a same-origin path on
the api-server (under ``[api] base_url``'s path), which Airflow's UI opens as it is. Files in the
pipeline's storage (drift reports, Data Docs, quarantined partitions) are served by the pack's plugin
app (``/mlops/files/<pipeline>/<path>``); MLflow links go to the app's ``/mlops/mlflow/...`` routes,
which redirect to the MLflow UI configured at the time of the click (``[mlops] mlflow_ui_url`` or the
``mlflow`` connection's UI), so a move of Airflow or MLflow breaks no link (docs/ui.md).
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


def files_path(relative: str) -> str:
    """Same-origin path of ``<storage_root>/<relative>`` served by the plugin app (``<pipeline>/...``)."""
    return f"{settings.ui_base_path()}{settings.UI_PREFIX}/files/{quote(relative.lstrip('/'))}"


def files_url(relative: str) -> str:
    """Absolute URL of the same file, for messages read outside the UI (alerts)."""
    return f"{settings.ui_base_url()}{settings.UI_PREFIX}/files/{quote(relative.lstrip('/'))}"


def _under_root(uri: str, operator: Any = None) -> str | None:
    """``uri`` relative to the task's storage root, or None if it is not under it."""
    roots = [getattr(operator, "storage_root", None), settings.storage_root()]
    for root in filter(None, roots):
        prefix = str(root).rstrip("/") + "/"
        if str(uri).startswith(prefix):
            return str(uri)[len(prefix):]
    return None


def storage_path(uri: str, operator: Any = None) -> str:
    """The plugin-app path of a storage URI under the task's storage root; empty if it is not under it."""
    relative = _under_root(uri, operator)
    return files_path(relative) if relative is not None else ""


def storage_url(uri: str, operator: Any = None) -> str:
    """Like :func:`storage_path`, as an absolute URL (alerts)."""
    relative = _under_root(uri, operator)
    return files_url(relative) if relative is not None else ""


def mlflow_run_path(experiment_id: Any, run_id: Any) -> str:
    return f"{settings.ui_base_path()}{settings.UI_PREFIX}/mlflow/runs/{quote(str(experiment_id))}/{quote(str(run_id))}"


def mlflow_model_path(model: Any, version: Any) -> str:
    return f"{settings.ui_base_path()}{settings.UI_PREFIX}/mlflow/models/{quote(str(model))}/versions/{quote(str(version))}"


class PackLink(BaseOperatorLink):
    """The base of the pack's links: a subclass says how its URL follows from the finished task
    (:meth:`url`); the base makes sure a link never fails the task that stores it (Airflow 3's worker
    computes every link when the task ends): a missing value is no link, not an error."""

    def url(self, operator: BaseOperator, ti_key: TaskInstanceKey) -> str:
        raise NotImplementedError

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        try:
            return self.url(operator, ti_key)
        except Exception:  # noqa: BLE001 - a link must never fail the task
            return ""


class MlflowRunLink(PackLink):
    """The MLflow run that trained the task's model."""

    name = "MLflow run"

    def url(self, operator: BaseOperator, ti_key: TaskInstanceKey) -> str:
        value = _return_value(ti_key)
        return mlflow_run_path(value["experiment_id"], value["run_id"])


class MlflowModelVersionLink(PackLink):
    """The registered model version the task trained, judged or scored with."""

    name = "MLflow model version"

    def url(self, operator: BaseOperator, ti_key: TaskInstanceKey) -> str:
        value = _return_value(ti_key)
        return mlflow_model_path(value.get("model_name") or value["model"], value.get("version") or value["model_version"])


class DriftReportLink(PackLink):
    """The Evidently HTML report the task wrote, served by the plugin app."""

    name = "Drift report"

    def url(self, operator: BaseOperator, ti_key: TaskInstanceKey) -> str:
        return storage_path(str(_return_value(ti_key)["report_uri"]), operator)


def _validation_uri(ti_key: TaskInstanceKey, field: str) -> str:
    results = _xcom(ti_key, "validation")
    if not isinstance(results, dict):
        return ""
    for result in results.values():
        if isinstance(result, dict) and result.get(field):
            return str(result[field])
    return ""


class _ValidationFileLink(PackLink):
    """A file named by a field of the task's ``validation`` XCom, served by the plugin app."""

    field = ""

    def url(self, operator: BaseOperator, ti_key: TaskInstanceKey) -> str:
        uri = _validation_uri(ti_key, self.field)
        return storage_path(uri, operator) if uri else ""


class DataDocsLink(_ValidationFileLink):
    """The Great Expectations Data Docs of the task's validation, served by the plugin app."""

    name = "Data Docs"
    field = "docs_uri"


class QuarantineLink(_ValidationFileLink):
    """The ``validation.json`` of a partition the task quarantined, served by the plugin app."""

    name = "Quarantine"
    field = "quarantine_uri"
