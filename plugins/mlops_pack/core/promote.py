"""The promotion gate: should the challenger replace the champion? Pure logic on metric dicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_pack.core.spec import METRIC_DIRECTIONS

if TYPE_CHECKING:
    from mlops_pack.core.spec import PromotionSpec


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str

    def as_dict(self) -> dict:
        return {"promote": self.promote, "decision": "promoted" if self.promote else "rejected",
                "reason": self.reason}


def threshold_failures(metrics: dict[str, float], policy: PromotionSpec) -> list[str]:
    failures = []
    for name, bound in policy.thresholds.items():
        value = metrics.get(name)
        if value is None:
            failures.append(f"{name} was not measured")
        elif bound.min is not None and value < bound.min:
            failures.append(f"{name}={value:.4g} < min {bound.min:g}")
        elif bound.max is not None and value > bound.max:
            failures.append(f"{name}={value:.4g} > max {bound.max:g}")
    return failures


def decide(challenger: dict[str, float], champion: dict[str, float] | None, policy: PromotionSpec) -> Decision:
    """Promote when value thresholds pass and (if there is a champion) the challenger beats it on the
    same holdout by at least ``min_relative_improvement`` of the policy metric."""
    failures = threshold_failures(challenger, policy)
    if failures:
        return Decision(False, "fails value thresholds: " + "; ".join(failures))
    metric = policy.metric
    if champion is None:
        return Decision(True, f"first model: passes value thresholds ({metric}={challenger[metric]:.4g})")
    new, old = challenger[metric], champion[metric]
    sign = 1 if METRIC_DIRECTIONS[metric] == "higher" else -1
    gain = sign * (new - old) / abs(old) if old else sign * (new - old)
    summary = f"{metric} {new:.4g} vs champion {old:.4g} on the same holdout ({gain:+.2%})"
    if gain > policy.min_relative_improvement:
        return Decision(True, f"better: {summary}")
    return Decision(False, f"not better by more than {policy.min_relative_improvement:.2%}: {summary}")
