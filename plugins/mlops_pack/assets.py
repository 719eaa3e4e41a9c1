"""The assets a pipeline publishes: ``mlops://<name>/{validated,champion,predictions,drift,labels,performance}``."""

from __future__ import annotations

from dataclasses import dataclass

from airflow.sdk import Asset


@dataclass(frozen=True)
class PipelineAssets:
    validated: Asset
    champion: Asset
    predictions: Asset
    drift: Asset
    labels: Asset  # new label partitions (spec ``labels``)
    performance: Asset  # decay of the champion's realized performance (retrains with ``performance``)

    @classmethod
    def of(cls, pipeline: str) -> PipelineAssets:
        def asset(kind: str) -> Asset:
            return Asset(name=f"{pipeline}.{kind}", uri=f"mlops://{pipeline}/{kind}", group="mlops")

        return cls(asset("validated"), asset("champion"), asset("predictions"), asset("drift"), asset("labels"),
                   asset("performance"))
