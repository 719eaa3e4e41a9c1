"""Pipeline spec: the YAML a user writes under include/pipelines/, parsed and strictly validated.

One model in rooms by what they describe: ``sources`` (where data comes from), ``model`` (validation,
features, estimator or own pipeline, search), ``policies`` (gate, scoring, drift, partitions, schedules,
retraining, alerts), ``labels`` (where later truth comes from) and ``pipeline`` (the whole spec and
``load_spec``). Everything a caller uses is named here. Parsing must stay cheap (it runs at every DAG
parse): pydantic and yaml only; dotted paths are checked by locating module source, never importing it.
"""

from mlops_pack.core.spec.base import NAME_PATTERN, SpecError
from mlops_pack.core.spec.labels import (
    LABEL_KINDS,
    EventLabels,
    FileLabels,
    LaterPartitionLabels,
    SqlLabels,
)
from mlops_pack.core.spec.model import (
    ExpectationSpec,
    FeaturesSpec,
    ModelSpec,
    RangeSpec,
    SearchSpec,
    ValidationSpec,
    estimator_path_problem,
    pipeline_ref_problem,
)
from mlops_pack.core.spec.pipeline import PipelineSpec, load_spec
from mlops_pack.core.spec.policies import (
    DEFAULT_GATE,
    METRIC_DIRECTIONS,
    METRIC_TASKS,
    RETRAIN_TRIGGERS,
    AlertsSpec,
    DeadlineSpec,
    DecaySpec,
    DriftSpec,
    MetricPolicy,
    PartitionSpec,
    ProductionEvidenceSpec,
    PromotionSpec,
    RetrainSpec,
    ScheduleSpec,
    ScoringSpec,
)
from mlops_pack.core.spec.sources import (
    SOURCE_KINDS,
    ColumnSpec,
    EventsSpec,
    FieldSpec,
    FileSourceSpec,
    QueueSpec,
    SourceSpec,
    SqlSourceSpec,
    UpstreamAssetSpec,
)

__all__ = [
    "DEFAULT_GATE", "LABEL_KINDS", "METRIC_DIRECTIONS", "METRIC_TASKS", "NAME_PATTERN", "RETRAIN_TRIGGERS",
    "SOURCE_KINDS", "AlertsSpec", "ColumnSpec", "DeadlineSpec", "DecaySpec", "DriftSpec", "EventLabels", "EventsSpec",
    "ExpectationSpec", "FeaturesSpec", "FieldSpec", "FileLabels", "FileSourceSpec", "LaterPartitionLabels",
    "MetricPolicy", "ModelSpec", "PartitionSpec", "PipelineSpec", "ProductionEvidenceSpec", "PromotionSpec",
    "QueueSpec", "RangeSpec", "RetrainSpec", "ScheduleSpec", "ScoringSpec", "SearchSpec", "SourceSpec",
    "SpecError", "SqlLabels", "SqlSourceSpec", "UpstreamAssetSpec", "ValidationSpec", "estimator_path_problem",
    "load_spec", "pipeline_ref_problem",
]
