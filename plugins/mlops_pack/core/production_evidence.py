"""Production evidence for promotion: the challenger against the champion on the same labelled production rows.

Plain functions, no Airflow. With shadow scoring on (spec ``scoring.shadow``), every prediction
partition the champion scored while a challenger was ``@challenger`` holds both models' predictions
of the same rows (``prediction`` / ``shadow_prediction``, and ``proba_<class>`` /
``shadow_proba_<class>`` for a classifier, core/score.py). Once their labels have arrived (label
partitions, core/labels.py), those rows are a second, paired test set: production traffic, which no
model trained on when it was scored. :func:`paired_rows` collects them; :func:`judge_production`
decides, with the same paired bootstrap interval as the holdout gate (core/promotion/gate.py):

- fewer than ``min_rows`` labelled rows scored by both versions: refused, "not enough labelled
  production rows: N of M needed";
- an improvement interval that does not clear the metric's required change (its ``min_delta`` /
  ``min_relative_delta``, else zero: the CI includes zero or lies below): refused, with the CI;
- else: "beats the champion on N production rows: <metric> ... CI [lo, hi]".

A key predicted in several partitions counts once (its newest partition); a key with several labels
takes the latest arrival (``labelled_at``, then the order given), as the realized metrics do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

    from mlops_pack.core.holdout import CleanHoldout
    from mlops_pack.core.metrics import Predictions
    from mlops_pack.core.spec import PromotionSpec

PREDICTION, SHADOW = "prediction", "shadow_prediction"
PROBA, SHADOW_PROBA = "proba_", "shadow_proba_"


@dataclass(frozen=True)
class ProductionEvidence:
    passed: bool
    reason: str
    rows: int
    min_rows: int
    challenger_version: str
    champion_version: str
    partitions: tuple[str, ...] = ()
    cleaned: dict[str, Any] | None = None  # rows removed because a model trained on them (core/holdout.py)
    intervals: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "partitions": list(self.partitions)}


@dataclass(frozen=True)
class PairedRows:
    """Labelled production rows scored by both models: truth ``y``, each model's predictions, and where from."""

    y: Any
    champion: Predictions
    challenger: Predictions
    partitions: tuple[str, ...]
    clean: CleanHoldout | None = None  # which labelled rows left because a model trained on them

    def __len__(self) -> int:
        return len(self.y)


def latest_labels(frames: Iterable[pd.DataFrame], key: str, label: str = "label",
                  time: str | None = "labelled_at") -> pd.Series:
    """One label per key from label partitions given oldest first: the latest arrival wins (the latest
    ``time`` value, then the partition given last); rows without a label are left out."""
    import pandas as pd

    parts = [f[[c for c in (key, label, time) if c and c in f.columns]].assign(_order=i)
             for i, f in enumerate(frames)]
    if not parts:
        return pd.Series(dtype=object, name=label)
    table = pd.concat(parts, ignore_index=True).dropna(subset=[label])
    order = [c for c in (time, "_order") if c and c in table.columns]
    table = table.sort_values(order, kind="stable").drop_duplicates(subset=[key], keep="last")
    return pd.Series(table[label].to_numpy(), index=table[key].to_numpy(), name=label)


def paired_rows(partitions: Iterable[tuple[str, pd.DataFrame]], labels: pd.Series, key: str, task: str,
                needs_proba: bool = False, trained: tuple[dict, dict] | None = None) -> PairedRows:
    """The rows of the shadow-scored prediction partitions ``(name, frame)`` (oldest first) whose label
    ``labels`` (by key) knows, each key once (its newest partition), as paired predictions.

    ``trained``: (model label -> record keys it trained on, model label -> why they cannot be read), as
    for the holdout (core/holdout.py): rows either model trained on leave, and ``clean`` says how many."""
    import numpy as np
    import pandas as pd

    from mlops_pack.core.holdout import clean_holdout
    from mlops_pack.core.metrics import Predictions

    frames, names = [], []
    for name, frame in partitions:
        missing = [c for c in (key, PREDICTION, SHADOW) if c not in frame.columns]
        if missing:
            raise ValueError(f"prediction partition {name} lacks column(s) {missing}: was it shadow-scored?")
        frames.append(frame.assign(_order=len(frames)))
        names.append(name)
    if not frames:
        empty = Predictions(np.empty(0))
        return PairedRows(np.empty(0), empty, empty, (), None)
    rows = pd.concat(frames, ignore_index=True).drop_duplicates(subset=[key], keep="last")
    truth = labels.reindex(rows[key].to_numpy())
    known = truth.notna().to_numpy()
    rows, y = rows[known].reset_index(drop=True), truth.to_numpy()[known]
    clean = None
    if trained is not None:
        clean = clean_holdout(rows[key], key, *trained)
        rows, y = rows[clean.keep].reset_index(drop=True), y[clean.keep]
    used = tuple(n for i, n in enumerate(names) if (rows["_order"] == i).any())
    if task == "classification" and not pd.api.types.is_numeric_dtype(rows[PREDICTION]):
        y = y.astype(str)  # labels typed as the predictions: "1" vs 1 must not count as wrong
    return PairedRows(y, _predictions(rows, "", needs_proba), _predictions(rows, "shadow_", needs_proba), used,
                      clean)


def _predictions(rows: pd.DataFrame, prefix: str, needs_proba: bool) -> Predictions:
    import numpy as np

    from mlops_pack.core.metrics import Predictions

    labels = rows[f"{prefix}{PREDICTION}"].to_numpy()
    if not needs_proba:
        return Predictions(labels)
    columns = [c for c in rows.columns if c.startswith(f"{prefix}{PROBA}")]
    if not columns:
        raise ValueError(f"the gate needs class probabilities but the predictions have no {prefix}{PROBA}<class> "
                         "columns")
    classes = np.array([c.removeprefix(f"{prefix}{PROBA}") for c in columns])
    try:
        classes = classes.astype(labels.dtype) if labels.dtype.kind in "biuf" else classes
    except ValueError:
        pass
    return Predictions(labels, rows[columns].to_numpy(dtype=float), classes)


def judge_production(rows: PairedRows, policy: PromotionSpec, min_rows: int, *, challenger_version: str,
                     champion_version: str) -> ProductionEvidence:
    """Does the challenger beat the champion on the labelled production rows both scored? The gated metrics
    (those with a change threshold, else the primary one) each need a paired bootstrap CI of the
    improvement that clears the required change; fewer than ``min_rows`` rows refuse."""
    from mlops_pack.core.promotion.gate import bootstrap_interval

    cleaned = rows.clean.as_dict() if rows.clean is not None else None
    head = (min_rows, str(challenger_version), str(champion_version), rows.partitions, cleaned)
    n = len(rows)
    if rows.clean is not None and rows.clean.unknown:
        why = "; ".join(f"{model}: {reason}" for model, reason in rows.clean.unknown.items())
        return ProductionEvidence(False, f"cannot show the production rows are unseen by both models ({why})", n,
                                  *head)
    if n < min_rows:
        where = f" (from {', '.join(rows.partitions)})" if rows.partitions else ""
        removed = f"; {rows.clean.describe()}" if rows.clean is not None and rows.clean.rows_removed else ""
        return ProductionEvidence(False, f"not enough labelled production rows: {n} scored by both champion "
                                  f"v{champion_version} and challenger v{challenger_version}{where}, {min_rows} "
                                  f"needed{removed}; it stays @challenger and shadow scoring gathers more (judge "
                                  "it again with the train DAG's judge_challenger Param)", n, *head)
    gated = [m for m, rule in policy.metrics.items() if rule.has_change_threshold] or [policy.primary]
    intervals = [bootstrap_interval(m, rows.y, rows.challenger, rows.champion, policy) for m in gated]
    text = "; ".join(_describe(i) for i in intervals)
    if all(i["cleared"] for i in intervals):
        return ProductionEvidence(True, f"beats the champion on {n} production rows: {text}", n, *head,
                                  intervals=intervals)
    failing = [i for i in intervals if not i["cleared"]]
    why = "; ".join(_why(i) for i in failing)
    return ProductionEvidence(False, f"does not beat the champion on {n} production rows ({why}): {text}", n,
                              *head, intervals=intervals)


def _why(i: dict[str, Any]) -> str:
    if i["high"] < 0:
        return f"{i['metric']}: worse, the whole CI is below zero"
    if i["low"] <= 0 <= i["high"]:
        return f"{i['metric']}: the CI includes zero"
    return f"{i['metric']}: the CI's lower bound {i['low']:.4g} does not clear the required {i['required']:.4g}"


def _describe(i: dict[str, Any]) -> str:
    return (f"{i['metric']} {i['challenger']:.4g} vs champion {i['champion']:.4g}, improvement "
            f"{i['improvement']:.4g}, {i['confidence']:.0%} CI [{i['low']:.4g}, {i['high']:.4g}]")


def with_evidence(verdict: dict[str, Any], evidence: ProductionEvidence | None) -> dict[str, Any]:
    """The gate's ``verdict`` with the production evidence added: a challenger the holdout passes is
    promoted only when the evidence passes too; the reason names both. None: no champion to compare."""
    if evidence is None:
        return verdict
    out = {**verdict, "production_evidence": evidence.as_dict()}
    if verdict["promote"] and not evidence.passed:
        out.update(promote=False, decision="rejected",
                   reason=f"production evidence: {evidence.reason}; holdout: {verdict['reason']}")
    else:
        out["reason"] = f"{verdict['reason']}; production evidence: {evidence.reason}"
    return out
