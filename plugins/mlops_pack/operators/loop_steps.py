"""Small steps that wire the loop's DAGs: which partitions to score or check, and the asset gates.

Plain operators rather than ``@task`` functions: the decorator machinery costs more DAG-parse time
than everything else in a pipeline's DAG file together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context


def _event_folders(context: Context, asset: Asset) -> list[str]:
    events = context.get("triggering_asset_events") or {}
    return [e.extra["folder"] for e in events.get(asset, []) if "folder" in (e.extra or {})]


class PartitionsFromEventsOperator(BaseOperator):
    """Partition folders to work on: the Params list, else the folders named by triggering events of
    ``asset``, else the latest complete partition of ``area``. Returns a list (to expand over).

    :param pipeline: pipeline name.
    :param asset: asset whose events name the folders.
    :param area: storage area to fall back to (``validated``, ``predictions``).
    :param param_name: Params key holding an explicit list of folders.
    """

    def __init__(self, *, pipeline: str, asset: Asset, area: str, param_name: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.pipeline, self.asset, self.area, self.param_name = pipeline, asset, area, param_name

    def execute(self, context: Context) -> list[str]:
        from mlops_pack.core.storage import complete_partitions
        from mlops_pack.hooks.storage import PipelineStorageHook

        folders = list(context["params"].get(self.param_name) or []) + _event_folders(context, self.asset)
        if not folders:
            latest = complete_partitions(PipelineStorageHook(self.pipeline).area(self.area))[-1:]
            folders = [m["folder"] for m in latest]
        if not folders:
            raise AirflowSkipException(f"no {self.area} partitions of {self.pipeline} yet")
        self.log.info("Working on %s", folders)
        return list(dict.fromkeys(folders))


class PublishChampionOperator(BaseOperator):
    """Emit the champion-changed asset event only when ``decision`` says the challenger was promoted.

    :param decision: the promote task's decision record (templated / XComArg).
    :param asset: the pipeline's champion asset (also this task's outlet).
    """

    template_fields = ("decision",)

    def __init__(self, *, decision: Any, asset: Asset, **kwargs: Any):
        super().__init__(outlets=[asset], **kwargs)
        self.decision, self.asset = decision, asset

    def execute(self, context: Context) -> dict:
        if not self.decision["promote"]:
            raise AirflowSkipException(f"champion unchanged: {self.decision['reason']}")
        extra = {k: self.decision[k] for k in ("model", "version", "champion_before", "reason")}
        context["outlet_events"][self.asset].extra = extra
        return extra


class SignalDriftOperator(BaseOperator):
    """Emit the drift asset event (which retrains) unless there is no drift or the cooldown holds.

    :param summary: the drift report's summary (templated / XComArg).
    :param asset: the pipeline's drift asset (also this task's outlet).
    :param pipeline: pipeline name (for the cooldown marker in its storage).
    :param cooldown_minutes: no second signal within this time of the last one.
    """

    template_fields = ("summary",)

    def __init__(self, *, summary: Any, asset: Asset, pipeline: str, cooldown_minutes: float, **kwargs: Any):
        super().__init__(outlets=[asset], **kwargs)
        self.summary, self.asset, self.pipeline, self.cooldown_minutes = summary, asset, pipeline, cooldown_minutes

    def execute(self, context: Context) -> dict:
        from mlops_pack.core.cooldown import claim
        from mlops_pack.hooks.storage import PipelineStorageHook

        summary = self.summary
        if not summary["drift"]:
            raise AirflowSkipException(f"no drift: share {summary['share']} < {summary['threshold']}")
        marker = PipelineStorageHook(self.pipeline).area("reports") / "drift" / "last_signal.json"
        if not claim(marker, self.cooldown_minutes):
            raise AirflowSkipException(f"drift within the {self.cooldown_minutes} min cooldown: no retrain")
        extra = {k: summary[k] for k in ("share", "drifted_columns", "model_version", "report_uri")}
        context["outlet_events"][self.asset].extra = extra
        self.log.warning("Drift in %s: share %.2f, columns %s: retrain signalled", self.pipeline, summary["share"],
                         summary["drifted_columns"])
        return extra
