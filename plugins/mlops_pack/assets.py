"""The assets a pipeline publishes: ``x-mlops://<name>/{validated,champion,predictions,drift,labels,performance}``.

The scheme starts with ``x-``: Airflow keeps those for schemes of its users and looks up no provider's
URI normaliser for them. Any other scheme makes the first Asset of a DAG file load every installed
provider's asset handlers (the Amazon provider imports boto3: seconds at each parse, docs/benchmarks.md).
DAGs outside the pack should refer to these assets by name (``Asset.ref(name="<name>.champion")``).
"""

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
            return Asset(name=f"{pipeline}.{kind}", uri=asset_uri(pipeline, kind), group="mlops")

        return cls(asset("validated"), asset("champion"), asset("predictions"), asset("drift"), asset("labels"),
                   asset("performance"))


def asset_uri(pipeline: str, kind: str) -> str:
    """The URI of one of the pipeline's assets (the name is ``<pipeline>.<kind>``)."""
    return f"x-mlops://{pipeline}/{kind}"
