"""AirflowPlugin of the pack: registers its operator extra links."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mlops_pack.links import DriftReportLink, MlflowModelVersionLink, MlflowRunLink


class MlopsPackPlugin(AirflowPlugin):
    name = "mlops_pack"
    operator_extra_links = [MlflowRunLink(), MlflowModelVersionLink(), DriftReportLink()]
