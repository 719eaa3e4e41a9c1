"""Realized performance: predictions joined with the labels that arrive later, and the decay decision.

Pure logic, no Airflow, heavy imports inside functions. Public API:

- ``PredictionSource(partition, data, predicted_at=None)``: one prediction partition (key
  ``<validated>__v<version>``), its data as a Parquet path (str, Path or ObjectStoragePath) or an
  iterable of pyarrow RecordBatches written by core/score.py (the key column, ``prediction``,
  ``proba_<class>`` for a classifier, ``model_version``), and when it was scored (label lag).
- ``realized_performance(predictions, labels, *, key, task, metrics, label_column="label",
  label_time_column=None, min_labelled=100, bootstrap_samples=1000, confidence=0.95, seed=0,
  calibration_bins=10, work_dir=None, buckets=None) -> OutcomeReport``: the streaming join and the
  metrics per (prediction partition, model version). ``labels``: Parquet paths, pyarrow Tables or
  RecordBatches holding ``key`` and ``label_column`` (and ``label_time_column``), or a mapping
  key -> label (a dict or a pandas Series indexed by key), oldest first.
- ``OutcomeReport``: ``groups`` (one ``GroupOutcome`` each), ``label_rows`` (non-null labels read),
  ``labelled_keys``, ``duplicate_labels`` (rows beyond one per key), ``conflicts``
  (``LabelConflicts(keys, sample, rule)``); ``as_dict()`` is JSON-ready; ``group(partition, version)``.
- ``GroupOutcome``: ``status`` "ok" | "not_enough_labels" with ``reason``, ``predicted_rows``,
  ``labelled_rows``, ``coverage``, ``label_lag_seconds`` ({"median", "p90"} or None), ``metrics``
  (name -> ``Estimate(value, low, high, confidence)``, None where the rows cannot define it; the
  requested metrics of the task, plus ``brier_score`` and ``ece`` when the predictions carry class
  probabilities, requested or not; empty when not enough labels). ``metrics`` may name them too.
- ``holdout_baseline(tags, metric) -> float | None``: the promotion-time value (tag ``holdout_<metric>``).
- ``decide_decay(metric, outcome, *, baseline, min=None, max=None, min_drop=0.0, direction=None)
  -> DecayDecision(decay, metric, reason, realized, low, high, baseline, labelled_rows, evidence)``.
- ``metric_direction(metric)``: "higher" | "lower" for the promotion metrics and ``brier_score``, ``ece``.

The join (bounded memory, whatever the row count; core/outcome_join.py): both sides are
hash-partitioned by key into on-disk Arrow buckets under ``work_dir`` (a temporary folder by
default; about 50 bytes of disk per row), then joined bucket by bucket; only one bucket's rows and
each group's sufficient statistics (about 2 MB for a binary classifier) are in memory at once.

Labels: rows without a label are ignored; repeats of a key with the same label collapse; a key
whose labels contradict each other is counted and sampled in ``conflicts`` and resolved by one
rule, **the latest arrival wins**: the latest ``label_time_column`` value (a label without a time
counts as older than any with one), and among equal times, or without a time column, the label
read last (sources in the order given, rows in file order). A partition with no rows has no group.

Metrics and their intervals: core/outcome_metrics.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

CONFLICT_RULE = ("latest arrival wins (latest label time, a label without one being older; among equal times, "
                 "the label read last)")


@dataclass(frozen=True)
class PredictionSource:
    """One prediction partition: its key, its rows (Parquet path or record batches), when it was scored."""

    partition: str
    data: Any
    predicted_at: Any = None  # datetime, or epoch seconds; None: no label lag for this partition


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    confidence: float


@dataclass(frozen=True)
class LabelConflicts:
    keys: int
    sample: tuple[str, ...] = ()
    rule: str = CONFLICT_RULE


@dataclass(frozen=True)
class GroupOutcome:
    partition: str
    model_version: str
    status: Literal["ok", "not_enough_labels"]
    reason: str
    predicted_rows: int
    labelled_rows: int
    coverage: float
    label_lag_seconds: dict[str, float] | None = None
    metrics: dict[str, Estimate] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OutcomeReport:
    groups: tuple[GroupOutcome, ...]
    label_rows: int
    labelled_keys: int
    duplicate_labels: int
    conflicts: LabelConflicts

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def group(self, partition: str, model_version: str) -> GroupOutcome:
        for g in self.groups:
            if g.partition == partition and g.model_version == str(model_version):
                return g
        raise KeyError(f"no predictions of model version {model_version} in partition {partition!r}")


@dataclass(frozen=True)
class DecayDecision:
    decay: bool
    metric: str
    reason: str
    realized: float | None
    low: float | None
    high: float | None
    baseline: float | None
    labelled_rows: int
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def realized_performance(predictions: Iterable[PredictionSource], labels: Any, *, key: str, task: str,
                         metrics: Iterable[str], label_column: str = "label", label_time_column: str | None = None,
                         min_labelled: int = 100, bootstrap_samples: int = 1000, confidence: float = 0.95,
                         seed: int = 0, calibration_bins: int = 10, work_dir: Any = None,
                         buckets: int | None = None) -> OutcomeReport:
    """Realized metrics of each (prediction partition, model version) on the rows whose label is known."""
    import tempfile
    from pathlib import Path

    from mlops_pack.core.metrics import METRICS
    from mlops_pack.core.outcome_join import SAMPLE_KEYS, BucketJoin, bucket_count, label_sources
    from mlops_pack.core.outcome_metrics import CALIBRATION

    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in METRICS and m not in CALIBRATION]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted([*METRICS, *CALIBRATION])}")
    predictions, labels = list(predictions), label_sources(labels, key, label_column)
    count = buckets or bucket_count(predictions, labels)
    with tempfile.TemporaryDirectory(prefix="mlops-outcomes-", dir=work_dir) as tmp:
        join = BucketJoin(Path(tmp), key, task, count, calibration_bins)
        for source in predictions:
            join.add_predictions(source)
        for item in labels:
            join.add_labels(item, label_column, label_time_column)
        join.run()
    groups = tuple(_outcome(join, g, metrics, min_labelled, bootstrap_samples, confidence, seed)
                   for g in range(len(join.groups)))
    return OutcomeReport(groups, join.label_rows, join.label_keys, join.label_rows - join.label_keys,
                         LabelConflicts(join.conflicts, tuple(sorted(join.conflict_sample)[:SAMPLE_KEYS])))


def _outcome(join, g: int, metrics, min_labelled, samples, confidence, seed) -> GroupOutcome:
    partition, version, _, _ = join.groups[g]
    stats, predicted = join.stats[g], int(join.predicted[g])
    labelled = stats.labelled
    coverage = round(labelled / predicted, 6) if predicted else 0.0
    head = (partition, version)
    if labelled < max(min_labelled, 1):
        reason = (f"not enough labels: {labelled} labelled of {predicted} predicted rows, fewer than "
                  f"min_labelled={min_labelled}")
        return GroupOutcome(*head, "not_enough_labels", reason, predicted, labelled, coverage, stats.lag_summary())
    can, lacking = stats.available(metrics)
    estimates = stats.estimates(can, samples=samples, confidence=confidence, seed=seed)
    reason = f"{labelled} labelled of {predicted} predicted rows ({coverage:.1%})"
    if lacking:
        reason += f"; {lacking} need class probabilities (proba_<class> columns), which these predictions lack"
    shown = {m: Estimate(*(_finite(x) for x in v), confidence) for m, v in estimates.items()}
    return GroupOutcome(*head, "ok", reason, predicted, labelled, coverage, stats.lag_summary(), shown)


def _finite(x: float) -> float | None:
    return float(x) if x == x and abs(x) != float("inf") else None


def holdout_baseline(tags: Mapping[str, str], metric: str) -> float | None:
    """The promotion-time holdout value of ``metric`` a model version is tagged with, or None."""
    value = tags.get(f"holdout_{metric}")
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise ValueError(f"tag holdout_{metric}={value!r} is not a number") from exc


def metric_direction(metric: str) -> str:
    """Whether higher or lower values of ``metric`` are better."""
    from mlops_pack.core.metrics import METRICS
    from mlops_pack.core.outcome_metrics import CALIBRATION

    if metric in METRICS:
        return METRICS[metric].direction
    if metric in CALIBRATION:
        return CALIBRATION[metric]
    raise ValueError(f"unknown metric {metric!r}; known: {sorted([*METRICS, *CALIBRATION])}")


def decide_decay(metric: str, outcome: GroupOutcome, *, baseline: float | None, min: float | None = None,
                 max: float | None = None, min_drop: float = 0.0, direction: str | None = None) -> DecayDecision:
    """Has the model decayed on ``metric``? Yes when the realized value breaks a floor (below ``min`` or
    above ``max``), or when the whole CI lies on the worse side of ``baseline`` by more than ``min_drop``
    (the drop's CI excludes zero). The holdout baseline is taken as a fixed number."""
    higher = (direction or metric_direction(metric)) == "higher"
    est = outcome.metrics.get(metric)
    where = f"partition {outcome.partition} (model version {outcome.model_version})"
    if outcome.status != "ok" or est is None or est.value is None:
        why = outcome.reason if outcome.status != "ok" else f"no realized {metric} ({outcome.reason})"
        return DecayDecision(False, metric, f"no decay decision for {where}: {why}", None, None, None, baseline,
                             outcome.labelled_rows, {"partition": outcome.partition, "status": outcome.status})
    seen = (f"realized {metric} {est.value:.3g} [{est.low:.3g}, {est.high:.3g}] on {outcome.labelled_rows} labelled "
            f"rows of {where}")
    floors = [f"below the floor min {min:g}"] if min is not None and est.value < min else []
    floors += [f"above the ceiling max {max:g}"] if max is not None and est.value > max else []
    dropped = False
    if baseline is not None:
        seen += f" vs holdout {baseline:.3g}"
        if est.low is not None and est.high is not None:
            dropped = est.high < baseline - min_drop if higher else est.low > baseline + min_drop
    broken = floors + ([f"the whole {est.confidence:.0%} CI is {'below' if higher else 'above'} the holdout"
                        + (f" by more than {min_drop:g}" if min_drop else "")] if dropped else [])
    evidence = {"partition": outcome.partition, "model_version": outcome.model_version, "metric": metric,
                "realized": est.value, "low": est.low, "high": est.high, "confidence": est.confidence,
                "labelled_rows": outcome.labelled_rows, "coverage": outcome.coverage, "baseline": baseline,
                "min": min, "max": max, "min_drop": min_drop, "floor_broken": bool(floors), "dropped": dropped}
    reason = f"decay: {seen}: {'; '.join(broken)}" if broken else f"no decay: {seen}"
    return DecayDecision(bool(broken), metric, reason, est.value, est.low, est.high, baseline,
                         outcome.labelled_rows, evidence)

