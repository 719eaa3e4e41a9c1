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
        decision = self.decision
        self._alert(context, decision)
        if not decision["promote"]:
            raise AirflowSkipException(f"champion unchanged: {decision['reason']}")
        extra = {k: decision[k] for k in ("model", "version", "champion_before", "reason")}
        self.emit(context, extra)
        return extra

    def _alert(self, context: Context, decision: dict) -> None:
        from mlops_pack.notifications import send_alert

        event = "promoted" if decision["promote"] else "rejected"
        version, before = decision.get("version"), decision.get("champion_before") or "none"
        subject = f"[{self.spec.name}] model version {version} {event}"
        body = (f"Pipeline {self.spec.name}: challenger version {version} was {event} "
                f"(champion before: {before}).\nReason: {decision.get('reason')}\nRun: {context['run_id']}")
        send_alert(self.spec.alerts, event, subject, body,
                   {"pipeline": self.spec.name, "version": version, "champion_before": before,
                    "reason": decision.get("reason"), "run_id": context["run_id"]})


class SignalDriftOperator(PipelineOperator):
    """Emit the drift asset event (which retrains) unless there is no drift or the cooldown holds.

    The cooldown is the spec's ``drift.cooldown_minutes``; its marker is ``state/drift_signal.json``.

    :param summary: the drift report's summary, or the summaries of mapped reports (templated / XComArg);
        the strongest drift decides and is the one signalled.
    :param asset: the pipeline's drift asset (also this task's outlet).
    """

    template_fields = (*PipelineOperator.template_fields, "summary")

    def __init__(self, *, summary: Any, asset: Asset, **kwargs: Any):
        super().__init__(outlets=[asset], **kwargs)
        self.summary = summary

    def execute(self, context: Context) -> dict:
        from mlops_pack.core.cooldown import claim
        from mlops_pack.core.drift import strongest_drift

        cooldown = self.spec.drift.cooldown_minutes
        if isinstance(self.summary, dict):
            summaries = [self.summary]
        else:  # mapped reports: index by length, since iterating the lazy sequence reads one past its end,
            # which Airflow logs as an "XCom not found" error in a task that succeeded
            summaries = [self.summary[i] for i in range(len(self.summary))]
        summary = strongest_drift(summaries)
        if not summary["drift"]:
            raise AirflowSkipException(f"no drift: share {summary['share']} < {summary['threshold']}")
        marker = self.storage.state("drift_signal.json")
        claimed = claim(marker, cooldown)
        self._record_lineage(summary, marker if claimed else None)
        self._alert(context, summary, claimed)
        if not claimed:
            raise AirflowSkipException(f"drift within the {cooldown} min cooldown: no retrain")
        extra = {k: summary[k] for k in ("share", "drifted_columns", "model_version", "report_uri", "partition")}
        if summary.get("shadow"):  # champion vs challenger on the same rows (spec scoring.shadow)
            extra["shadow"] = summary["shadow"]
        self.emit(context, extra)
        self.log.warning("Drift in %s: share %.2f, columns %s: retrain signalled", self.spec.name, summary["share"],
                         summary["drifted_columns"])
        return extra

    def _record_lineage(self, summary: dict, marker: Any) -> None:
        """The drift report it judged and the cooldown marker it wrote. A task that records nothing gets the
        OpenLineage provider's hook-level lineage instead, which named the marker's temporary file."""
        from mlops_pack.core.lineage import storage_dataset

        if summary.get("partition"):
            self.lineage.read(storage_dataset(str(self.storage.partition("reports/drift", summary["partition"]))))
        if marker is not None:
            self.lineage.wrote(storage_dataset(str(marker)))

    def _alert(self, context: Context, summary: dict, retrain: bool) -> None:
        from mlops_pack.links import storage_url
        from mlops_pack.notifications import send_alert

        report = storage_url(str(summary.get("report_uri", "")), self) or summary.get("report_uri")
        subject = f"[{self.spec.name}] drift: share {summary['share']:.2f} on {summary.get('partition')}"
        body = (f"Pipeline {self.spec.name}: drift share {summary['share']:.2f} >= {summary['threshold']} in "
                f"{summary.get('partition')} (model version {summary.get('model_version')}).\n"
                f"Drifted columns: {', '.join(map(str, summary.get('drifted_columns') or []))}\n"
                f"{'Retrain signalled.' if retrain else 'Within the cooldown: no retrain.'}\nReport: {report}")
        send_alert(self.spec.alerts, "drift", subject, body,
                   {"pipeline": self.spec.name, "share": summary["share"], "partition": summary.get("partition"),
                    "drifted_columns": summary.get("drifted_columns"), "report": report, "retrain": retrain})
