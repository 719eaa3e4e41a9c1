"""`mlops-pack check`: a spec loaded and explained (DAGs, assets, schedules, every setting and its default)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mlops_pack.core.spec import PipelineSpec


def settings(model: BaseModel, prefix: str = "") -> list[tuple[str, Any, bool]]:
    """(dotted field, value, set in the YAML) for every leaf setting of ``model``, in declaration order."""
    from pydantic import BaseModel

    rows = []
    for name, field in type(model).model_fields.items():
        if field.exclude:
            continue
        value, path = getattr(model, name), f"{prefix}{name}"
        explicit = name in model.model_fields_set
        if isinstance(value, BaseModel):
            rows.extend((p, v, explicit and e) for p, v, e in settings(value, f"{path}."))
        elif isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
            for key, sub in value.items():
                rows.extend((p, v, explicit) for p, v, _ in settings(sub, f"{path}.{key}."))
        else:
            rows.append((path, _plain(value), explicit))
    return rows


def _plain(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def explain(path: str | Path) -> str:
    """The text `mlops-pack check` prints for the spec at ``path`` (SpecError if it is invalid)."""
    from mlops_pack.core.spec import load_spec
    from mlops_pack.settings import allowed_model_modules

    spec = load_spec(path, allowed_model_modules())
    lines = [f"{spec.name}: valid pipeline spec ({Path(path).resolve()})"]
    if spec.description:
        lines.append(f"  {spec.description}")
    lines += ["", "DAGs (schedule; tasks):", *_dags(spec), "", "Assets (data-aware triggers between the DAGs):"]
    from mlops_pack.assets import PipelineAssets

    assets = PipelineAssets.of(spec.name)
    produced = {"validated": "ingest", "champion": "train (and rollback)", "predictions": "score", "drift": "monitor"}
    if spec.labels is not None:
        produced |= {"labels": "labels", "performance": "outcomes"}
    for kind, producer in produced.items():
        asset = getattr(assets, kind)
        lines.append(f"  {asset.uri:<32} name {asset.name:<24} emitted by {spec.name}__{producer}")
    model, gate = spec.model, spec.promotion
    lines += ["", "Model:",
              f"  {model.task} of {model.target!r} from {len(model.features.all)} features with {model.code}",
              *_user_code_lines(spec, path),
              f"  holdout: {model.holdout_fraction:.0%} "
              + ("stratified by class (seeded)" if model.stratify else
                 f"newest rows by {model.order_by!r}" if model.order_by else "last rows in scraped order"),
              f"  gate metrics: {', '.join(f'{m} ({gate.direction(m)} is better)' for m in gate.metrics)}; "
              f"primary {gate.primary}",
              f"  retrain on: {', '.join(spec.retrain.triggers) or 'manual runs only'}"
              + (f" (cron {spec.retrain.cron})" if spec.retrain.cron else "")
              + ("; drift only with decay evidence" if spec.retrain.require_decay_for_drift else ""),
              *_labels_lines(spec),
              "", "Every setting (* = default, not in the YAML):"]
    for name, value, explicit in settings(spec):
        lines.append(f"  {' ' if explicit else '*'} {name} = {value!r}")
    return "\n".join(lines)


def _labels_lines(spec: PipelineSpec) -> list[str]:
    """Where the truth comes from and what counts as decay (docs/monitoring.md)."""
    labels = spec.labels
    if labels is None:
        return ["  labels: none (no realized performance, no decay trigger)"]
    where = {"files": lambda: f"files {labels.url}{labels.pattern}",
             "sql": lambda: f"a query on {labels.conn_id}, partitioned by {labels.partition_column}",
             "events": lambda: f"events of {spec.name}.label_inbox (REST; {len(labels.queues)} queue(s))"}.get(
        labels.kind, lambda: "later validated partitions (their target)")()
    rules = [f"{m} worse than {v:g}" for m, v in labels.decay.floors.items()]
    if labels.decay.max_relative_drop is not None:
        rules.append(f"CI worse than the holdout by more than {labels.decay.max_relative_drop:.0%}")
    return [f"  labels: {where}; realized {', '.join(spec.outcome_metrics)} with at least {labels.min_labelled} "
            f"labelled rows; decay: {' or '.join(rules) or 'never (no rule)'}"]


def _dags(spec: PipelineSpec) -> list[str]:
    """Each DAG the factory builds from the spec, with its schedule as Airflow describes it."""
    from mlops_pack.dag_factory import build_dags

    rows = []
    for dag_id, dag in build_dags(spec.spec_path, spec).items():  # the spec as read: one read per file
        schedule = schedule_text(dag.timetable)
        rows.append(f"  {dag_id:<28} {schedule}; tasks: {', '.join(t.task_id for t in dag.tasks)}")
    return rows


def schedule_text(timetable: Any) -> str:
    """A DAG's schedule in words: a cron, asset conditions (``a | b``), both, or manual only."""
    condition = getattr(timetable, "asset_condition", None)
    text = _condition_text(condition) if condition is not None else ""
    inner = getattr(timetable, "timetable", None)  # AssetOrTimeSchedule: assets or a time table
    clock = inner if inner is not None else (timetable if condition is None else None)
    expression = getattr(clock, "expression", None) if clock is not None else None
    if expression:
        cron = f"cron {expression!r} ({getattr(clock, 'timezone', 'UTC')})"
        text = f"{cron} or on {text}" if text else cron
    elif text:
        text = f"on {text}"
    return text or "manual only (UI, REST API, CLI)"


def _condition_text(condition: Any) -> str:
    parts = getattr(condition, "objects", None)
    if parts is None:
        return getattr(condition, "name", str(condition))
    joiner = " & " if type(condition).__name__ == "AssetAll" else " | "
    return "(" + joiner.join(_condition_text(p) for p in parts) + ")" if len(parts) > 1 else _condition_text(parts[0])


def _user_code_lines(spec: PipelineSpec, path: str | Path) -> list[str]:
    """``model.pipeline`` imported and called as a train task would: SpecError naming it and the reason
    when it cannot be, or returns something that is not an estimator for the task."""
    if not spec.model.pipeline:
        return []
    from mlops_pack.core.spec import SpecError
    from mlops_pack.core.train import build_pipeline
    from mlops_pack.core.user_code import UserCodeError, identity

    try:
        built = build_pipeline(spec.model, spec.code_dirs)
        if spec.model.search is not None:  # the space must name parameters the model has
            from mlops_pack.core.search import SearchFailed, estimator_params

            try:
                estimator_params(list(spec.model.search.space), list(built.get_params(deep=True)))
            except SearchFailed as exc:
                raise UserCodeError(f"model.pipeline {spec.model.pipeline!r}: {exc}") from exc
    except UserCodeError as exc:
        raise SpecError(f"{path}: invalid pipeline spec:\n  {exc}") from None
    code = identity(spec.model.pipeline)
    lines = [f"  model code: {spec.model.pipeline} returns a {type(built).__name__}",
             f"    file {code.get('code.file', '?')} sha256 {code.get('code.sha256', '?')[:12]}"
             + (f", {code['code.package']}" if "code.package" in code else "")
             + (f", git {code['code.git_commit'][:10]}" if "code.git_commit" in code else "")]
    return lines
