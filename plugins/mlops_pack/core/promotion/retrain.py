"""Should this train run train? The retrain policy applied to what triggered the run. Pure logic.

A train run is triggered by new validated data, a drift event, a decay (performance) event, the
retrain cron, or by hand (the run's triggering asset events and run type say which). Its window is
the latest validated partitions, always including the partitions a drift event names (the data
that drifted).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_PREDICTION_KEY = re.compile(r"^(?P<partition>.+)__v\d+$")


EVIDENCE = {"manual": "manual run", "first": "no champion yet", "schedule": "schedule", "drift": "input drift",
            "performance": "decay", "new_data": "new data"}


@dataclass(frozen=True)
class RetrainDecision:
    train: bool
    reason: str
    drifted_partitions: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # what made this run train: input drift, decay, schedule, new data, ...


def drifted_partitions(prediction_keys: Iterable[str]) -> list[str]:
    """Validated partition keys behind drift events' prediction partition keys (``<partition>__v<version>``);
    a key of another shape is kept as it is."""
    out = []
    for key in prediction_keys:
        match = _PREDICTION_KEY.match(str(key))
        out.append(match["partition"] if match else str(key))
    return sorted(set(out))


def decayed_versions(performance_records: Iterable[dict]) -> list[str]:
    """Model versions whose newest realized-performance record with enough labels says decay, from the
    ``performance/`` manifests in partition-key order (newest data last)."""
    latest: dict[str, bool] = {}
    for record in performance_records:
        if record.get("status") == "ok" and record.get("model_version") is not None:
            latest[str(record["model_version"])] = bool(record.get("decayed"))
    return sorted((v for v, decayed in latest.items() if decayed), key=_as_int)


def decide(triggers: Iterable[str], on: Iterable[str], *, champion: str | None,
           champion_partitions: Iterable[str] | None, drifted: Iterable[str] = (),
           rejected_same_window: str | None = None, decayed_versions: Iterable[str] = (),
           require_decay_for_drift: bool = False) -> RetrainDecision:
    """Whether a train run triggered by ``triggers`` (``manual``, ``new_data``, ``drift``, ``schedule``,
    ``performance``) trains, under the policy ``on`` (retrain.triggers of the spec).

    ``champion_partitions`` are the validated partitions the champion was trained on (its
    ``data_partitions`` tag; None when unknown). Any trigger that asks for training wins, and the
    decision's ``evidence`` names every one that did: a manual run always trains, and so does new
    data while there is no champion yet. A drift event trains unless the champion's training
    window already holds every drifted partition: retraining on the same data would only make an
    identical challenger. For the same reason neither a drift nor a decay event retrains when
    ``rejected_same_window`` names a version trained on exactly the window this run would train on
    that the gate already rejected against the current champion.

    ``decayed_versions`` are the model versions with decay evidence (the performance events of this
    run, and the latest realized-performance verdict of the champion). A performance event trains
    only when it is the current champion that decayed (a decay of a replaced champion is old news).
    With ``require_decay_for_drift`` a drift event trains only when the champion has decayed: an
    input shift that costs nothing does not retrain.
    """
    triggers, on, drifted = set(triggers), set(on), sorted(set(drifted))
    decayed = {str(v) for v in decayed_versions}
    if not triggers:
        triggers = {"manual"}
    if "manual" in triggers:
        return RetrainDecision(True, "manual run: always trains", tuple(drifted), (EVIDENCE["manual"],))
    if champion is None:
        return RetrainDecision(True, "no champion yet: the first model is trained on the data at hand", tuple(drifted),
                               (EVIDENCE["first"],))
    verdicts: dict[str, RetrainDecision] = {}
    if "schedule" in triggers:
        verdicts["schedule"] = (RetrainDecision(True, "scheduled retrain (retrain.cron)") if "schedule" in on
                                else RetrainDecision(False, "schedule is not in retrain.triggers"))
    if "drift" in triggers:
        verdicts["drift"] = _drift_verdict(on, champion, champion_partitions, drifted, rejected_same_window,
                                           champion in decayed if require_decay_for_drift else None)
    if "performance" in triggers:
        verdicts["performance"] = _decay_verdict(on, champion, decayed, rejected_same_window)
    if "new_data" in triggers:
        verdicts["new_data"] = (
            RetrainDecision(True, "new validated data (retrain.triggers has new_data)") if "new_data" in on
            else RetrainDecision(False, "new_data is not in retrain.triggers"))
    trains = [kind for kind, verdict in verdicts.items() if verdict.train]
    if trains:
        return RetrainDecision(True, "; ".join(verdicts[k].reason for k in trains), tuple(drifted),
                               tuple(EVIDENCE[k] for k in trains))
    return RetrainDecision(False, "no retrain: " + "; ".join(v.reason for v in verdicts.values()), tuple(drifted))


def _drift_verdict(on: set[str], champion: str, champion_partitions: Iterable[str] | None,
                   drifted: list[str], rejected_same_window: str | None,
                   champion_decayed: bool | None) -> RetrainDecision:
    if "drift" not in on:
        return RetrainDecision(False, "drift is not in retrain.triggers")
    if champion_decayed is False:
        return RetrainDecision(False, f"input drift, but champion v{champion} shows no decay on labelled "
                               "predictions (retrain.require_decay_for_drift)")
    if rejected_same_window:
        return RetrainDecision(False, f"v{rejected_same_window} was trained on this very window (with the drifted "
                               f"partitions {drifted}) and rejected against champion v{champion}")
    known = set(champion_partitions) if champion_partitions is not None else None
    missing = [p for p in drifted if known is None or p not in known]
    if missing or not drifted:
        what = f"drifted partitions {missing}" if missing else "a drift event naming no partition"
        decay = " and has decayed" if champion_decayed else ""
        return RetrainDecision(True, f"drift: champion v{champion} was not trained on {what}{decay}")
    return RetrainDecision(False, f"champion v{champion} was already trained on the drifted partitions {drifted}")


def _decay_verdict(on: set[str], champion: str, decayed: set[str], rejected_same_window: str | None,
                   ) -> RetrainDecision:
    if "performance" not in on:
        return RetrainDecision(False, "performance is not in retrain.triggers")
    if champion not in decayed:
        named = ", ".join(f"v{v}" for v in sorted(decayed, key=_as_int)) or "no version"
        return RetrainDecision(False, f"the decay evidence names {named}, but the champion is v{champion} now")
    if rejected_same_window:
        return RetrainDecision(False, f"v{rejected_same_window} was trained on this very window and rejected "
                               f"against the decayed champion v{champion}")
    return RetrainDecision(True, f"decay: champion v{champion}'s realized performance on labelled predictions fell")


def _as_int(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (0, version)


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
