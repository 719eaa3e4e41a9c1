"""Should this train run train? The retrain policy applied to what triggered the run. Pure logic.

A train run is triggered by new validated data, a drift event, the retrain cron, or by hand (the
run's triggering asset events and run type say which). Its window is the latest validated
partitions, always including the partitions a drift event names (the data that drifted).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_PREDICTION_KEY = re.compile(r"^(?P<partition>.+)__v\d+$")


@dataclass(frozen=True)
class RetrainDecision:
    train: bool
    reason: str
    drifted_partitions: tuple[str, ...] = ()


def drifted_partitions(prediction_keys: Iterable[str]) -> list[str]:
    """Validated partition keys behind drift events' prediction partition keys (``<partition>__v<version>``);
    a key of another shape is kept as it is."""
    out = []
    for key in prediction_keys:
        match = _PREDICTION_KEY.match(str(key))
        out.append(match["partition"] if match else str(key))
    return sorted(set(out))


def decide(triggers: Iterable[str], on: Iterable[str], *, champion: str | None,
           champion_partitions: Iterable[str] | None, drifted: Iterable[str] = (),
           rejected_same_window: str | None = None) -> RetrainDecision:
    """Whether a train run triggered by ``triggers`` (``manual``, ``new_data``, ``drift``, ``schedule``)
    trains, under the policy ``on`` (retrain.triggers of the spec).

    ``champion_partitions`` are the validated partitions the champion was trained on (its
    ``data_partitions`` tag; None when unknown). Any trigger that asks for training wins: a manual
    run always trains, and so does new data while there is no champion yet. A drift event trains
    unless the champion's training window already holds every drifted partition: retraining on the
    same data would only make an identical challenger. For the same reason a drift event does not
    retrain when ``rejected_same_window`` names a version trained on exactly the window this run
    would train on that the gate already rejected against the current champion.
    """
    triggers, on, drifted = set(triggers), set(on), sorted(set(drifted))
    if not triggers:
        triggers = {"manual"}
    if "manual" in triggers:
        return RetrainDecision(True, "manual run: always trains", tuple(drifted))
    if champion is None:
        return RetrainDecision(True, "no champion yet: the first model is trained on the data at hand", tuple(drifted))
    reasons = []
    if "schedule" in triggers:
        if "schedule" in on:
            return RetrainDecision(True, "scheduled retrain (retrain.cron)", tuple(drifted))
        reasons.append("schedule is not in retrain.triggers")
    if "drift" in triggers:
        verdict = _drift_verdict(on, champion, champion_partitions, drifted, rejected_same_window)
        if verdict.train:
            return verdict
        reasons.append(verdict.reason)
    if "new_data" in triggers:
        if "new_data" in on:
            return RetrainDecision(True, "new validated data (retrain.triggers has new_data)", tuple(drifted))
        reasons.append("new_data is not in retrain.triggers")
    return RetrainDecision(False, "no retrain: " + "; ".join(reasons), tuple(drifted))


def _drift_verdict(on: set[str], champion: str, champion_partitions: Iterable[str] | None,
                   drifted: list[str], rejected_same_window: str | None) -> RetrainDecision:
    if "drift" not in on:
        return RetrainDecision(False, "drift is not in retrain.triggers")
    if rejected_same_window:
        return RetrainDecision(False, f"v{rejected_same_window} was trained on this very window (with the drifted "
                               f"partitions {drifted}) and rejected against champion v{champion}")
    known = set(champion_partitions) if champion_partitions is not None else None
    missing = [p for p in drifted if known is None or p not in known]
    if missing or not drifted:
        what = f"drifted partitions {missing}" if missing else "a drift event naming no partition"
        return RetrainDecision(True, f"drift: champion v{champion} was not trained on {what}", tuple(drifted))
    return RetrainDecision(False, f"champion v{champion} was already trained on the drifted partitions {drifted}")


def training_window(available: list[str], size: int, required: Iterable[str] = ()) -> list[str]:
    """The partitions to train on: the latest ``size`` of ``available`` (sorted keys), plus any of
    ``required`` (the drifted ones) that fall outside it, in key order. A required key that is not
    available is an error naming it."""
    if size < 1:
        raise ValueError(f"window size must be >= 1, got {size}")
    missing = sorted(set(required) - set(available))
    if missing:
        raise ValueError(f"drifted partitions {missing} are not among the validated partitions {available[-10:]}")
    window = set(available[-size:]) | set(required)
    return [key for key in available if key in window]
