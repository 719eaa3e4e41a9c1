"""Which partitions a score or monitor run works on: the first task of those DAGs, returning a list
of partition keys to expand over (dynamic task mapping)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from mlops_pack.operators.base import PipelineOperator
from mlops_pack.tasks import event_partition_keys

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context


class PartitionsToScoreOperator(PipelineOperator):
    """Validated partition keys to score: Params ``partitions``, else those named by the triggering
    ``validated`` events, else (a champion change, a plain manual run) the newest validated partition
    plus every one never scored. Skips when there is nothing validated yet.

    :param asset: the pipeline's validated asset (whose events name partitions).
    """

    def __init__(self, *, asset: Asset, **kwargs: Any):
        super().__init__(**kwargs)
        self.asset = asset

    def execute(self, context: Context) -> list[str]:
        from mlops_pack.core.partitions import partitions_to_score
        from mlops_pack.core.storage import list_partitions

        validated = [m["partition"] for m in list_partitions(self.storage.area("validated"))]
        if not validated:
            raise AirflowSkipException(f"no validated partitions of {self.spec.name} yet")
        scored = {m.get("source_partition") for m in list_partitions(self.storage.area("predictions"))}
        keys = partitions_to_score(requested=list(context["params"].get("partitions") or []),
                                   event_keys=event_partition_keys(context, self.asset), validated=validated,
                                   scored_sources=scored)
        self.log.info("Scoring %s", keys)
        return keys


class PredictionsToCheckOperator(PipelineOperator):
    """Prediction partition keys to check for drift: Params ``prediction_partitions``, else those named
    by the triggering ``predictions`` events, else the newest prediction partition.

    :param asset: the pipeline's predictions asset (whose events name partitions).
    """

    def __init__(self, *, asset: Asset, **kwargs: Any):
        super().__init__(**kwargs)
        self.asset = asset

    def execute(self, context: Context) -> list[str]:
        from mlops_pack.core.storage import list_partitions

        keys = list(context["params"].get("prediction_partitions") or []) or event_partition_keys(context, self.asset)
        if not keys:
            keys = [m["partition"] for m in list_partitions(self.storage.area("predictions"))[-1:]]
        if not keys:
            raise AirflowSkipException(f"no predictions of {self.spec.name} yet")
        self.log.info("Checking %s", keys)
        return list(dict.fromkeys(keys))
