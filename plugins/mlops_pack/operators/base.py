"""What every pipeline operator shares: its spec, its storage and its run's partition key."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_pack.core.spec import PipelineSpec
    from mlops_pack.hooks.mlflow import MlflowHook
    from mlops_pack.hooks.storage import PipelineStorageHook


class PipelineOperator(BaseOperator):
    """Base of the pack's operators: each works on one pipeline spec.

    :param spec_path: path of the pipeline spec YAML (templated).
    :param storage_root: override of ``[mlops] storage_root`` (templated).
    """

    template_fields = ("spec_path", "storage_root")

    def __init__(self, *, spec_path: str, storage_root: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not str(spec_path).endswith((".yaml", ".yml")) and "{{" not in str(spec_path):
            raise ValueError(f"spec_path must be a pipeline spec .yaml file, got {spec_path!r}")
        self.spec_path = str(spec_path)
        self.storage_root = storage_root

    @cached_property
    def spec(self) -> PipelineSpec:
        from mlops_pack.core.spec import load_spec

        return load_spec(Path(self.spec_path))

    @cached_property
    def storage(self) -> PipelineStorageHook:
        from mlops_pack.hooks.storage import PipelineStorageHook

        return PipelineStorageHook(self.spec.name, storage_root=self.storage_root)

    @staticmethod
    def run_key(context: Context) -> str:
        """Partition key of this run: its run id, which REST- and asset-triggered runs have too."""
        from mlops_pack.core.storage import partition_key

        return partition_key(context["run_id"])


class MlflowOperator(PipelineOperator):
    """A pipeline operator that talks to MLflow (tracking or registry).

    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    def __init__(self, *, mlflow_conn_id: str = "mlflow_default", **kwargs: Any):
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def mlflow(self) -> MlflowHook:
        from mlops_pack.hooks.mlflow import MlflowHook

        return MlflowHook(self.mlflow_conn_id)
