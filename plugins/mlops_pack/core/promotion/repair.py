"""Crash repair: the intent a promotion writes before its first alias move, and what the next holder of
the promotion lock does with an intent (or a broken lock) an interrupted attempt left behind.

An *intent* (tag on the registered model, written before the first alias move and cleared after
the record) lets the next lock holder finish or undo a promotion interrupted between alias moves.
Plain functions, no MLflow or Airflow import (docs/promotion.md, "Alias moves and crash repair").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

INTENT_TAG = "mlops.promotion_intent"


@dataclass(frozen=True)
class Intent:
    kind: str  # "promote" or "rollback"
    version: str  # the new champion
    champion_before: str | None
    previous_before: str | None
    holder: str
    token: str
    attempt: str

    def to_tag(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_tag(cls, text: str) -> Intent:
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"unreadable promotion intent tag {INTENT_TAG}={text!r}: {exc}") from exc


def alias_moves(champion_before: str | None, target: str) -> list[tuple[str, str | None]]:
    """``previous`` first, then ``champion``: a crash between them leaves ``champion`` where it was, so
    scoring never sees a half-done move, and the intent says how to finish."""
    moves: list[tuple[str, str | None]] = []
    if champion_before is not None:
        moves.append(("previous", champion_before))
    moves.append(("champion", target))
    return moves


@dataclass(frozen=True)
class Repair:
    action: str  # completed | rolled_back | discarded
    moves: list[tuple[str, str | None]]  # alias -> version; None deletes the alias
    decision: str  # decision recorded for the interrupted attempt
    champion_after: str | None
    reason: str


def repair_plan(intent: Intent, champion: str | None, previous: str | None) -> Repair:
    """What the next lock holder does with an intent left by an interrupted attempt."""
    who = f"{intent.kind} of v{intent.version} by {intent.holder} (attempt {intent.attempt[:8]})"
    if champion == intent.version:
        # champion moved: the decision had been taken and was visible; finish it
        moves = [] if intent.champion_before in (None, previous) else [("previous", intent.champion_before)]
        decision = "promoted" if intent.kind == "promote" else "rolled_back"
        return Repair("completed", moves, decision, champion,
                      f"interrupted {who} after champion moved; completed by repair")
    if champion == intent.champion_before:
        # champion never moved: undo the previous move so nothing of the attempt remains visible
        moves = [] if previous == intent.previous_before else [("previous", intent.previous_before)]
        return Repair("rolled_back", moves, "abandoned", champion,
                      f"interrupted {who} before champion moved; previous restored to {intent.previous_before}")
    return Repair("discarded", [], "abandoned", champion,
                  f"interrupted {who}; champion is now {champion}, neither {intent.champion_before} nor "
                  f"{intent.version} (moved outside the lock?): aliases left as they are")




# ----- what the next holder records for an attempt it found interrupted -----

@dataclass(frozen=True)
class RecordPlan:
    """The decision fields (core/promotion/decision.py) of an interrupted attempt, and whether its record
    tags the version (a rollback that never happened keeps its target's ``decision=promoted``)."""

    version: str
    attempt: str
    fields: dict[str, Any]
    tag_version: bool


def broken_lock_record(dead: dict[str, str], champion: str | None, breaker: str) -> RecordPlan | None:
    """The record of a holder whose lock was broken before it wrote an intent (the lock's tags ``dead``), or
    None when there is nothing to record: it held no attempt's lock (a train's ``challenger`` move) or no
    version yet. The caller skips an attempt that recorded itself before it died."""
    if not dead.get("attempt") or not dead.get("version"):
        return None
    kind = dead.get("kind", "promote")
    return RecordPlan(dead["version"], dead["attempt"], {
        "promote": False, "decision": "abandoned", "approved_by": f"lock breaker {breaker}",
        "reason": f"{kind} by {dead.get('holder')} stopped renewing the promotion lock (killed or cut off) before "
                  "moving any alias; its lock was broken",
        "champion_before": champion, "champion_after": champion}, tag_version=kind == "promote")


def repair_record(intent: Intent, plan: Repair, repairer: str) -> RecordPlan:
    """The record of the attempt ``intent`` belongs to, as ``plan`` finished or undid it by ``repairer``."""
    return RecordPlan(intent.version, intent.attempt, {
        "promote": plan.decision in ("promoted", "rolled_back"), "decision": plan.decision, "reason": plan.reason,
        "repair": plan.action, "repaired_by": repairer, "approved_by": f"repair by {repairer} of {intent.holder}",
        "champion_before": intent.champion_before, "champion_after": plan.champion_after},
        tag_version=intent.kind == "promote" or plan.decision != "abandoned")
