"""The whole pipeline spec, its cross-field checks, and ``load_spec`` (the YAML read with bounds, then
validated; every failure a SpecError naming the file and field)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    Field,
    ValidationError,
    model_validator,
)

from mlops_pack.core.outcome_metrics import CALIBRATION
from mlops_pack.core.spec.base import NAME_PATTERN, SpecError, _Strict
from mlops_pack.core.spec.labels import LABEL_KINDS, AnyLabels
from mlops_pack.core.spec.model import ModelSpec, ValidationSpec
from mlops_pack.core.spec.policies import (
    DEFAULT_GATE,
    METRIC_DIRECTIONS,
    METRIC_TASKS,
    AlertsSpec,
    DriftSpec,
    PartitionSpec,
    PromotionSpec,
    RetrainSpec,
    ScheduleSpec,
    ScoringSpec,
)
from mlops_pack.core.spec.sources import SOURCE_KINDS, AnySource, EventsSpec
from mlops_pack.core.spec_yaml import SpecYamlError, read_yaml


class PipelineSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    owner: str = "mlops"
    source: AnySource
    validation: ValidationSpec
    model: ModelSpec
    retrain: RetrainSpec = RetrainSpec()
    promotion: PromotionSpec = PromotionSpec()
    scoring: ScoringSpec = ScoringSpec()
    drift: DriftSpec = DriftSpec()
    alerts: AlertsSpec = AlertsSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    partition: PartitionSpec = PartitionSpec()
    events: EventsSpec = EventsSpec()
    labels: AnyLabels | None = Field(default=None, description="where the truth for scored records comes from "
                                     "(docs/monitoring.md); none: no realized performance, no decay trigger")
    spec_path: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _columns_are_scraped(self) -> PipelineSpec:
        scraped = set(self.source.fields)
        if self.model.target not in scraped:
            raise ValueError(f"model.target: {self.model.target!r} is not a scraped column {sorted(scraped)}")
        missing = [c for c in self.model.features.all if c not in scraped]
        if missing:
            raise ValueError(f"model.features: {missing} are not scraped columns {sorted(scraped)}")
        if self.model.order_by and self.model.order_by not in scraped:
            raise ValueError(f"model.order_by: {self.model.order_by!r} is not a scraped column")
        if self.partition.column and self.partition.column not in scraped:
            raise ValueError(f"partition.column: {self.partition.column!r} is not a scraped column {sorted(scraped)}")
        if not self.promotion.metrics:
            raise ValueError("promotion.metrics: name at least one metric")
        for metric in self.promotion.metrics:
            if metric not in METRIC_DIRECTIONS:
                raise ValueError(f"promotion.metrics: unknown metric {metric!r}, use one of {sorted(METRIC_DIRECTIONS)}")
        missing = [c for c in self.promotion.slices if c not in scraped]
        if missing:
            raise ValueError(f"promotion.slices: {missing} are not scraped columns")
        return self

    @model_validator(mode="before")
    @classmethod
    def _default_gate_fits_the_task(cls, data: Any) -> Any:
        """Without promotion.metrics a classifier is gated on accuracy, not on the regression default rmse."""
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            return data
        promotion = data.get("promotion")
        if data["model"].get("task") == "classification" and (promotion is None or (
                isinstance(promotion, dict) and "metrics" not in promotion)):
            data = {**data, "promotion": {**(promotion or {}), "metrics": DEFAULT_GATE["classification"]}}
        return data

    @model_validator(mode="after")
    def _metrics_fit_the_task(self) -> PipelineSpec:
        task = self.model.task
        for metric in self.promotion.metrics:
            if METRIC_TASKS.get(metric, task) != task:
                fitting = sorted(m for m, t in METRIC_TASKS.items() if t == task)
                raise ValueError(f"promotion.metrics.{metric}: {metric!r} measures a {METRIC_TASKS[metric]} model "
                                 f"but model.task is {task!r}; use one of {fitting}")
        return self

    @model_validator(mode="after")
    def _labels_fit_the_model(self) -> PipelineSpec:
        retrain, labels = self.retrain, self.labels
        if labels is None:
            if "performance" in retrain.triggers:
                raise ValueError("retrain.triggers: 'performance' needs a labels section (where the truth comes from)")
            if retrain.require_decay_for_drift:
                raise ValueError("retrain.require_decay_for_drift needs a labels section: decay is measured on labels")
            return self
        realized = {**METRIC_TASKS, **dict.fromkeys(CALIBRATION, "classification")}
        for metric in labels.metrics:
            if realized.get(metric) != self.model.task:
                fitting = sorted(m for m, t in realized.items() if t == self.model.task)
                raise ValueError(f"labels.metrics: {metric!r} is not a {self.model.task} metric; use one of {fitting}")
        for metric in labels.decay.floors:
            if metric not in self.outcome_metrics:
                raise ValueError(f"labels.decay.floors: {metric!r} is not a realized metric {self.outcome_metrics}")
        if retrain.require_decay_for_drift and "drift" not in retrain.triggers:
            raise ValueError("retrain.require_decay_for_drift is set but retrain.triggers does not include 'drift'")
        return self

    @model_validator(mode="after")
    def _production_evidence_has_shadow_and_labels(self) -> PipelineSpec:
        if self.promotion.production_evidence is None:
            return self
        if not self.scoring.shadow:
            raise ValueError("promotion.production_evidence needs scoring.shadow: true (the challenger must score "
                             "the champion's rows)")
        if self.labels is None:
            raise ValueError("promotion.production_evidence needs a labels section (the truth of production rows)")
        return self

    @model_validator(mode="after")
    def _change_sensor_needs_pages(self) -> PipelineSpec:
        if self.schedule.wait_for_change and self.source.kind != "scrape":
            raise ValueError(f"schedule.wait_for_change watches web pages; source.kind is {self.source.kind!r} "
                             "(files and SQL sources read only what is new at each run)")
        return self

    @model_validator(mode="after")
    def _deadline_names_dags_and_alerts(self) -> PipelineSpec:
        deadline = self.schedule.deadline
        if deadline is None:
            return self
        absent = [d for d in deadline.dags if (d in ("labels", "outcomes") and self.labels is None)
                  or (d == "champion_watch" and not self.events.champion_poll_seconds)]
        if absent:
            raise ValueError(f"schedule.deadline.dags: this pipeline has no {absent} DAG (labels and outcomes need "
                             "a labels section, champion_watch events.champion_poll_seconds)")
        if not self.alerts.enabled or "deadline_missed" not in self.alerts.events:
            raise ValueError("schedule.deadline tells the spec's alerts, but alerts has no smtp_conn_id or "
                             "webhook_conn_id or its events leave out deadline_missed")
        return self

    @model_validator(mode="after")
    def _search_metric_fits_the_task(self) -> PipelineSpec:
        search = self.model.search
        if search is not None and search.metric and METRIC_TASKS[search.metric] != self.model.task:
            raise ValueError(f"model.search.metric: {search.metric!r} measures a {METRIC_TASKS[search.metric]} "
                             f"model but model.task is {self.model.task!r}")
        return self

    @property
    def search_metric(self) -> str:
        """The metric search trials are ranked on: ``model.search.metric``, else the gate's primary one."""
        search = self.model.search
        return (search.metric if search and search.metric else None) or self.promotion.primary

    @property
    def outcome_metrics(self) -> list[str]:
        """The realized metrics: labels.metrics, else the promotion metrics."""
        return list((self.labels.metrics if self.labels else None) or self.promotion.metrics)

    @property
    def drift_columns(self) -> list[str]:
        return list(self.drift.columns or self.model.features.all)

    @property
    def code_dirs(self) -> list[Path]:
        """Where ``model.pipeline`` modules are looked for besides sys.path: the spec's folder and its parent."""
        return code_dirs(self.spec_path)

    def resolve(self, relative: str) -> Path:
        """A path written in the spec, resolved against the spec file's folder."""
        return (Path(self.spec_path).parent / relative).resolve()


def code_dirs(spec_path: str | Path) -> list[Path]:
    """The folders of a project's own model code: the spec's folder and its parent (include/)."""
    folder = Path(spec_path).resolve().parent
    return [folder, folder.parent]


def load_spec(path: str | Path, model_modules: Iterable[str] = ()) -> PipelineSpec:
    """The validated spec in ``path``; raises SpecError naming the file and each bad field.

    ``model_modules``: module prefixes allowed for ``model.estimator`` and ``model.pipeline`` besides
    scikit-learn and the project's own modules (``settings.allowed_model_modules()``)."""
    path = Path(path)
    try:
        raw = read_yaml(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, SpecYamlError) as exc:
        raise SpecError(f"{path}: cannot read pipeline spec: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a pipeline spec must be a mapping, got {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    try:
        spec = PipelineSpec.model_validate({**raw, "spec_path": str(path)},
                                           context={"model_modules": tuple(model_modules),
                                                    "code_dirs": code_dirs(path)})
    except ValidationError as exc:
        raise SpecError(f"{path}: invalid pipeline spec:\n{_describe(exc)}") from None
    if spec.name != path.stem:
        raise SpecError(f"{path}: name: {spec.name!r} must equal the file name {path.stem!r}")
    return spec


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        tags = {"source": SOURCE_KINDS, "labels": LABEL_KINDS}.get(str(loc[0]) if loc else "", ())
        if len(loc) > 1 and loc[1] in tags:
            del loc[1]  # the union's tag: the user wrote source.<field>, not source.<kind>.<field>
        where = ".".join(str(p) for p in loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        # Cross-field checks run on the whole spec and name their field at the start of the message.
        lines.append(f"  {where}: {message}" if where else f"  {message}")
    return "\n".join(lines)
