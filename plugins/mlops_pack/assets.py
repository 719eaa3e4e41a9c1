"""The assets a pipeline publishes: ``mlops://<name>/{validated,champion,predictions,drift}``."""

from __future__ import annotations

from dataclasses import dataclass

from airflow.sdk import Asset


@dataclass(frozen=True)
class PipelineAssets:
    validated: Asset
    champion: Asset
    predictions: Asset
    drift: Asset

    @classmethod
    def of(cls, pipeline: str) -> PipelineAssets:
        def asset(kind: str) -> Asset:
            return Asset(name=f"{pipeline}.{kind}", uri=f"mlops://{pipeline}/{kind}", group="mlops")

        return cls(asset("validated"), asset("champion"), asset("predictions"), asset("drift"))
