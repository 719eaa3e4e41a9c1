"""What every task of the pack shares, operator or sensor: its pipeline spec, its storage (honouring
``storage_root``), its run's data key and asset-event emission. operators/base.py builds the operator
family on ``PipelineTaskMixin``; sensors mix it into Airflow's sensor base.

When the spec is read: the DAG factory reads it at parse time for the DAGs' shape (tasks,
schedules, Params defaults); each task reads it again, once, when it executes (``self.spec``), for
every value it uses. An edited spec therefore reshapes the DAGs at the next parse and changes
behaviour from the next task that starts.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_pack.core.lineage import TaskLineage
    from mlops_pack.core.spec import PipelineSpec
    from mlops_pack.hooks.storage import PipelineStorageHook


def check_spec_path(spec_path: str) -> str:
    """``spec_path`` as a string; a ValueError names it unless it is a .yaml file or a template."""
    if not str(spec_path).endswith((".yaml", ".yml")) and "{{" not in str(spec_path):
        raise ValueError(f"spec_path must be a pipeline spec .yaml file, got {spec_path!r}")
    return str(spec_path)


class PipelineTaskMixin:
    """Spec, storage, data key and asset events for a task working on one pipeline.

    The class using it sets ``spec_path`` and ``storage_root`` in ``__init__``.
    """

    spec_path: str
    storage_root: str | None
    outlets: list

    @cached_property
    def spec(self) -> PipelineSpec:
        """The pipeline spec; an invalid one fails the task without retries (a retry reads the same file)."""
        from mlops_pack import settings
        from mlops_pack.core.spec import SpecError, load_spec

        try:
            return load_spec(Path(self.spec_path), settings.allowed_model_modules())
        except SpecError as exc:
            raise AirflowFailException(str(exc)) from exc

    @cached_property
    def storage(self) -> PipelineStorageHook:
        from mlops_pack.hooks.storage import PipelineStorageHook

        return PipelineStorageHook(self.spec.name, storage_root=self.storage_root)

    def data_key(self, context: Context) -> str | None:
        """The run's data key (docs/storage.md): conf ``partition``, the run's ``partition_key``, the
        triggering events' ``partition``, else the logical date; None when the run has none."""
        from mlops_pack.core.partitions import run_data_key

        dag_run = context.get("dag_run")
        requested = (context.get("params") or {}).get("partition") or (getattr(dag_run, "conf", None) or {}).get(
            "partition")
        return run_data_key(requested=requested, run_partition_key=getattr(dag_run, "partition_key", None),
                            event_keys=event_partition_keys(context), logical_date=context.get("logical_date"),
                            date_format=self.spec.partition.date_format)

    @cached_property
    def lineage(self) -> TaskLineage:
        """What this task run read and wrote (core/lineage.py): execute() records it, OpenLineage gets it."""
        from mlops_pack.core.lineage import TaskLineage

        return TaskLineage()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The run's inputs, outputs and run facets for Airflow's OpenLineage provider (an optional extra:
        ``airflow-mlops-pack[lineage]``), which calls this when the task ends; imported here only."""
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import InputDataset, OutputDataset
        from openlineage.client.facet_v2 import DatasetFacet, RunFacet, column_lineage_dataset

        def facets(dataset: Any) -> dict[str, Any]:
            made = {"mlopsPack": DatasetFacet().with_additional_properties(kind=dataset.kind)}
            if self.lineage.derived.get(dataset):
                made["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(fields={}, dataset=[
                    column_lineage_dataset.InputField(namespace=d.namespace, name=d.name, field="", transformations=[
                        column_lineage_dataset.Transformation(type="INDIRECT", subtype="TRAINING")])
                    for d in self.lineage.derived[dataset]])
            return made

        return OperatorLineage(
            inputs=[InputDataset(namespace=d.namespace, name=d.name, facets=facets(d)) for d in self.lineage.inputs],
            outputs=[OutputDataset(namespace=d.namespace, name=d.name, facets=facets(d)) for d in self.lineage.outputs],
            run_facets={name: RunFacet().with_additional_properties(**value)
                        for name, value in self.lineage.facets.items()})

    def emit(self, context: Context, extra: dict[str, Any]) -> None:
        """Put ``extra`` (small JSON) on the asset event of each of this task's outlets."""
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra


def event_partition_keys(context: Context, asset: Any = None) -> list[str]:
    """Partition keys named by the run's triggering asset events (of ``asset``, or of any asset)."""
    from mlops_pack.core.inbox import MessageError, partitions_named, queue_messages

    events = context.get("triggering_asset_events") or {}
    groups = [events.get(asset, [])] if asset is not None else list(events.values())
    keys: list[str] = []
    for group in groups:
        for event in group:
            extra = event.extra or {}
            named = [p["key"] for p in extra.get("partitions", []) if isinstance(p, dict) and "key" in p]
            # Queue messages (AssetWatcher) land in extra["payload"] in the provider trigger's shape, and a
            # malformed one fails the run naming it (core/inbox.py), without retries: the message won't change.
            try:
                messages = partitions_named(extra) if queue_messages(extra) is not None else []
            except MessageError as exc:
                raise AirflowFailException(str(exc)) from exc
            payload = extra.get("payload") if isinstance(extra.get("payload"), dict) else {}
            keys.extend(named or messages or [str(k) for k in (extra.get("partition"), payload.get("partition"),
                                                                getattr(event, "partition_key", None)) if k])
    return list(dict.fromkeys(keys))
