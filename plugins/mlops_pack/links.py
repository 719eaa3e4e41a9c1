"""Operator extra links: the MLflow run, the model version and the drift report of a task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.execution_time.xcom import XCom  # noqa: F401
    from airflow.sdk.types import TaskInstanceKey


def _return_value(ti_key: TaskInstanceKey) -> dict:
    from airflow.sdk.execution_time.xcom import XCom

    value = XCom.get_value(ti_key=ti_key, key="return_value")
    return value if isinstance(value, dict) else {}


def _mlflow_ui() -> str:
    from mlops_pack.hooks.mlflow import MlflowHook

    return MlflowHook()._ui_base()


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
            return f"{_mlflow_ui()}/#/models/{name}/versions/{version}"
        except Exception:  # noqa: BLE001 - a link must never fail the task
            return ""


class DriftReportLink(BaseOperatorLink):
    """The Evidently HTML report the task wrote."""

    name = "Drift report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        try:
            return str(_return_value(ti_key)["report_uri"])
        except Exception:  # noqa: BLE001 - a link must never fail the task
            return ""
