"""The promotion gate: should the challenger replace the champion? Pure logic on predictions.

Both models are scored on the same holdout. A point estimate is not enough: the improvement of each
metric with a change threshold comes with a paired bootstrap confidence interval (the same
resampled rows for both models), and "better" means the interval's lower bound clears the required
change. The first model (no champion) is judged on value thresholds alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlops_pack.core.holdout import CleanHoldout
    from mlops_pack.core.metrics import Predictions
    from mlops_pack.core.spec import PromotionSpec


@dataclass(frozen=True)
class GateResult:
    promote: bool
    reason: str
    holdout_rows: int
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None = None
    intervals: list[dict[str, Any]] = field(default_factory=list)
    slices_failed: list[dict[str, Any]] = field(default_factory=list)
    holdout: dict[str, Any] | None = None  # the clean holdout: rows used, removed and why (core/holdout.py)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "decision": "promoted" if self.promote else "rejected"}


def metric_samples(metric: str, y: np.ndarray, pred: Predictions | np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``metric`` on each row of index matrix ``idx`` (shape resamples x n); one value per resample.
    Each metric gets what it needs from ``pred`` (labels, values or class probabilities; core/metrics.py)."""
    from mlops_pack.core.metrics import samples

    return samples(metric, y, pred, idx)


def point(metric: str, y: np.ndarray, pred: Predictions | np.ndarray) -> float:
    from mlops_pack.core.metrics import compute

    return compute(metric, y, pred)


def value_failures(metrics: dict[str, float], policy: PromotionSpec) -> list[str]:
    failures = []
    for name, rule in policy.metrics.items():
        value = metrics[name]
        if rule.min is not None and value < rule.min:
            failures.append(f"{name}={value:.4g} < min {rule.min:g}")
        if rule.max is not None and value > rule.max:
            failures.append(f"{name}={value:.4g} > max {rule.max:g}")
    return failures


def bootstrap_interval(metric: str, y, challenger, champion, policy: PromotionSpec) -> dict[str, Any]:
    """Paired bootstrap CI of the challenger's improvement on ``metric`` (positive = better)."""
    import numpy as np

    sign = 1.0 if policy.direction(metric) == "higher" else -1.0
    rng = np.random.default_rng(policy.seed)
    n, news, olds = len(y), [], []
    for start in range(0, policy.bootstrap_samples, 250):  # bounded memory: 250 resamples at a time
        idx = rng.integers(0, n, size=(min(250, policy.bootstrap_samples - start), n))
        news.append(metric_samples(metric, y, challenger, idx))
        olds.append(metric_samples(metric, y, champion, idx))
    new_s, old_s = np.concatenate(news), np.concatenate(olds)
    alpha = (1 - policy.confidence) / 2
    low, high = np.nanquantile(sign * (new_s - old_s), [alpha, 1 - alpha])
    old, new = point(metric, y, champion), point(metric, y, challenger)
    rule = policy.metrics[metric]
    required = max(rule.min_delta or 0.0, (rule.min_relative_delta or 0.0) * abs(old))
    # Each model's own value on the same resamples too: what the health page draws side by side.
    (old_low, old_high), (new_low, new_high) = (np.nanquantile(s, [alpha, 1 - alpha]) for s in (old_s, new_s))
    return {"metric": metric, "champion": old, "challenger": new, "improvement": sign * (new - old),
            "low": float(low), "high": float(high), "confidence": policy.confidence, "required": required,
            "cleared": bool(low > required), "rows": n,
            "champion_ci": [float(old_low), float(old_high)], "challenger_ci": [float(new_low), float(new_high)]}


def slice_regressions(slices: pd.DataFrame | None, y, challenger, champion, policy: PromotionSpec) -> list[dict]:
    """Slices (column=value with enough rows) where the challenger is worse beyond the tolerance."""
    import numpy as np

    if slices is None or not policy.slices:
        return []
    metric, failed = policy.primary, []
    sign = 1.0 if policy.direction(metric) == "higher" else -1.0
    for column in policy.slices:
        values = slices[column].to_numpy()
        for value in sorted({v for v in values if v is not None and v == v}, key=str):
            rows = np.flatnonzero(values == value)
            if len(rows) < policy.min_slice_rows:
                continue
            old, new = point(metric, y[rows], champion.take(rows)), point(metric, y[rows], challenger.take(rows))
            if sign * (new - old) < -policy.slice_tolerance * abs(old):
                failed.append({"slice": f"{column}={value}", "rows": int(len(rows)), "metric": metric,
                               "champion": old, "challenger": new})
    return failed


def judge(y, challenger, champion, policy: PromotionSpec, slices: pd.DataFrame | None = None,
          holdout: CleanHoldout | None = None) -> GateResult:
    """The gate's decision for predictions ``challenger`` vs ``champion`` (None: first model) on ``y``.

    Predictions are arrays of values or labels, or ``Predictions`` carrying class probabilities too
    (needed by ``roc_auc`` and ``log_loss``). ``holdout`` says how ``y`` was cleaned of rows either model
    trained on (core/holdout.py): a too-small or unprovable clean holdout refuses, saying so, and the
    result carries it for the record."""
    import numpy as np

    from mlops_pack.core.holdout import refusal

    y, challenger = np.asarray(y), _as_predictions(challenger)
    n, kept = len(y), holdout.as_dict() if holdout is not None else None
    new_metrics = {m: point(m, y, challenger) for m in policy.metrics} if n else {}
    refused = refusal(holdout, n, policy.min_holdout_rows)
    if refused:
        return GateResult(False, refused, n, new_metrics, holdout=kept)
    failures = value_failures(new_metrics, policy)
    if failures:
        return GateResult(False, "fails value thresholds: " + "; ".join(failures), n, new_metrics, holdout=kept)
    if champion is None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in new_metrics.items())
        return GateResult(True, f"first model: passes value thresholds ({shown})", n, new_metrics, holdout=kept)
    champion = _as_predictions(champion)
    old_metrics = {m: point(m, y, champion) for m in policy.metrics}
    gated = [m for m, rule in policy.metrics.items() if rule.has_change_threshold] or [policy.primary]
    intervals = [bootstrap_interval(m, y, challenger, champion, policy) for m in gated]
    slices_failed = slice_regressions(slices, y, challenger, champion, policy)
    text = "; ".join(_describe(i) for i in intervals)
    if not all(i["cleared"] for i in intervals):
        return GateResult(False, f"not better: {text}", n, new_metrics, old_metrics, intervals, slices_failed, kept)
    if slices_failed:
        worst = ", ".join(f"{s['slice']} {s['metric']} {s['challenger']:.4g} vs {s['champion']:.4g}"
                          for s in slices_failed[:3])
        return GateResult(False, f"slice regression beyond {policy.slice_tolerance:.0%}: {worst}", n, new_metrics,
                          old_metrics, intervals, slices_failed, kept)
    return GateResult(True, f"better: {text}", n, new_metrics, old_metrics, intervals, holdout=kept)


def _as_predictions(pred: Any) -> Predictions:
    import numpy as np

    from mlops_pack.core.metrics import Predictions

    return pred if isinstance(pred, Predictions) else Predictions(np.asarray(pred))


def _describe(i: dict[str, Any]) -> str:
    verdict = "clears" if i["cleared"] else "does not clear"
    return (f"{i['metric']} {i['challenger']:.4g} vs champion {i['champion']:.4g}, improvement {i['improvement']:.4g} "
            f"[{i['confidence']:.0%} CI {i['low']:.4g}, {i['high']:.4g}] {verdict} the required {i['required']:.4g}")
