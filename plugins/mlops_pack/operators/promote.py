"""MlflowPromoteOperator: challenger vs champion on the same holdout; move the aliases if it wins."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mlops_pack.links import MlflowModelVersionLink
from mlops_pack.operators.base import PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_pack.hooks.mlflow import MlflowHook


class MlflowPromoteOperator(PipelineOperator):
    """Decide whether model version ``challenger_version`` replaces the current ``champion``.

    Both are scored on the challenger's holdout (the newest data). The first model is judged on the
    policy's value thresholds alone. Every decision is recorded: ``decision``/``reason`` tags on the
    model version and one JSON record in ``<storage>/<pipeline>/promotions/``. On promotion
    ``champion`` moves to the challenger and the old champion becomes ``previous``. Returns the
    decision record (``promote`` true or false); rejection is not a task failure.

    :param challenger_version: registered model version to judge (templated).
    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    template_fields = (*PipelineOperator.template_fields, "challenger_version")
    ui_color = "#f3e8fd"
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(self, *, challenger_version: str, mlflow_conn_id: str = "mlflow_default", **kwargs: Any):
        super().__init__(**kwargs)
        self.challenger_version = challenger_version
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def mlflow(self) -> MlflowHook:
        from mlops_pack.hooks.mlflow import MlflowHook

        return MlflowHook(self.mlflow_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.promote import decide
        from mlops_pack.core.storage import read_partition, write_json
        from mlops_pack.core.train import evaluate

        name, version = self.spec.name, str(self.challenger_version)
        tags = self.mlflow.version_tags(name, version)
        if "holdout_uri" not in tags:
            raise ValueError(f"{name} version {version} has no holdout_uri tag: was it trained by this pack?")
        holdout = read_partition(self.storage.path(tags["holdout_uri"]).parent)
        champion = self.mlflow.alias_version(name, "champion")
        challenger_metrics = evaluate(self.mlflow.load_model(name, version), holdout, self.spec.model)
        champion_metrics = None
        if champion is not None and champion != version:
            champion_metrics = evaluate(self.mlflow.load_model(name, champion), holdout, self.spec.model)
        decision = decide(challenger_metrics, champion_metrics, self.spec.promotion)
        record = {
            **decision.as_dict(),
            "model": name, "version": version, "decided_at": dt.datetime.now(dt.UTC).isoformat(),
            "dag_id": context["dag"].dag_id, "run_id": context["run_id"],
            "champion_before": champion, "champion_after": version if decision.promote else champion,
            "holdout_rows": len(holdout), "challenger_metrics": _rounded(challenger_metrics),
            "champion_metrics": _rounded(champion_metrics), "approved_by": "policy",
        }
        self.mlflow.tag_version(name, version, {"decision": record["decision"], "reason": decision.reason,
                                                "evaluated_against": champion or "none"})
        if decision.promote:
            if champion is not None and champion != version:
                self.mlflow.set_alias(name, "previous", champion)
            self.mlflow.set_alias(name, "champion", version)
        stamp = record["decided_at"].replace(":", "").replace("+", "Z")
        write_json(self.storage.area("promotions") / f"{stamp}_v{version}.json", record)
        self.log.info("%s version %s %s: %s", name, version, record["decision"].upper(), decision.reason)
        return record


def _rounded(metrics: dict[str, float] | None) -> dict[str, float] | None:
    return None if metrics is None else {k: round(v, 6) for k, v in metrics.items()}
