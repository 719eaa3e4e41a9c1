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
- ``OutcomeReport``: ``groups`` (one ``GroupOutcome`` each), label counts, ``conflicts``
  (``LabelConflicts``); ``as_dict()`` is JSON-ready; ``group(partition, model_version)``.
- ``GroupOutcome``: ``status`` "ok" | "not_enough_labels" with ``reason``, ``predicted_rows``,
  ``labelled_rows``, ``coverage``, ``label_lag_seconds`` ({"median", "p90"} or None), ``metrics``
  (name -> ``Estimate(value, low, high, confidence)``; empty when not enough labels).
- ``holdout_baseline(tags, metric) -> float | None``: the promotion-time value (tag ``holdout_<metric>``).
- ``decide_decay(metric, outcome, *, baseline, min=None, max=None, min_drop=0.0, direction=None)
  -> DecayDecision(decay, metric, reason, realized, low, high, baseline, labelled_rows, evidence)``.
- ``metric_direction(metric)``: "higher" | "lower" for the promotion metrics and ``brier_score``, ``ece``.

The join (bounded memory, whatever the row count): both sides are hash-partitioned by key into
on-disk Arrow buckets under ``work_dir`` (a temporary folder by default), then joined bucket by
bucket; only one bucket's rows and each group's sufficient statistics are in memory at once.

Labels: rows without a label are ignored; repeats of a key with the same label collapse; a key
whose labels contradict each other is counted and sampled in ``conflicts`` and resolved by one
rule, **the latest arrival wins**: the latest ``label_time_column`` value, and among equal or
missing times the label read last (sources in the order given, rows in file order).

Metrics and their intervals: core/outcome_metrics.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

CONFLICT_RULE = "latest arrival wins (latest label time; among equal or missing times, the label read last)"


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
    raise NotImplementedError


def holdout_baseline(tags: Mapping[str, str], metric: str) -> float | None:
    """The promotion-time holdout value of ``metric`` a model version is tagged with, or None."""
    raise NotImplementedError


def metric_direction(metric: str) -> str:
    """Whether higher or lower values of ``metric`` are better."""
    raise NotImplementedError


def decide_decay(metric: str, outcome: GroupOutcome, *, baseline: float | None, min: float | None = None,  # noqa: A002
                 max: float | None = None, min_drop: float = 0.0, direction: str | None = None) -> DecayDecision:  # noqa: A002
    """Has the model decayed on ``metric``? A floor broken, or a drop from ``baseline`` beyond ``min_drop``
    whose whole CI lies on the worse side."""
    raise NotImplementedError
