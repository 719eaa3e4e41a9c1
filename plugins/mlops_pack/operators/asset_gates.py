"""Asset gates: tasks that emit a pipeline's champion and drift events only when the decision says so."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from mlops_pack.operators.base import PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context


class PublishChampionOperator(PipelineOperator):
    """Emit the champion-changed asset event only when ``decision`` says the challenger was promoted.

    :param decision: the promote task's decision record (templated / XComArg).
    :param asset: the pipeline's champion asset (also this task's outlet).
    """

    template_fields = (*PipelineOperator.template_fields, "decision")

    def __init__(self, *, decision: Any, asset: Asset, **kwargs: Any):
        super().__init__(outlets=[asset], **kwargs)
        self.decision = decision

    def execute(self, context: Context) -> dict:
        if not self.decision["promote"]:
            raise AirflowSkipException(f"champion unchanged: {self.decision['reason']}")
        extra = {k: self.decision[k] for k in ("model", "version", "champion_before", "reason")}
        self.emit(context, extra)
        return extra


class SignalDriftOperator(PipelineOperator):
    """Emit the drift asset event (which retrains) unless there is no drift or the cooldown holds.

    The cooldown is the spec's ``drift.cooldown_minutes``; its marker is ``state/drift_signal.json``.

    :param summary: the drift report's summary (templated / XComArg).
    :param asset: the pipeline's drift asset (also this task's outlet).
    """

    template_fields = (*PipelineOperator.template_fields, "summary")

    def __init__(self, *, summary: Any, asset: Asset, **kwargs: Any):
        super().__init__(outlets=[asset], **kwargs)
        self.summary = summary

    def execute(self, context: Context) -> dict:
        from mlops_pack.core.cooldown import claim

        summary, cooldown = self.summary, self.spec.drift.cooldown_minutes
        if not summary["drift"]:
            raise AirflowSkipException(f"no drift: share {summary['share']} < {summary['threshold']}")
        if not claim(self.storage.state("drift_signal.json"), cooldown):
            raise AirflowSkipException(f"drift within the {cooldown} min cooldown: no retrain")
        extra = {k: summary[k] for k in ("share", "drifted_columns", "model_version", "report_uri", "partition")}
        self.emit(context, extra)
        self.log.warning("Drift in %s: share %.2f, columns %s: retrain signalled", self.spec.name, summary["share"],
                         summary["drifted_columns"])
        return extra
