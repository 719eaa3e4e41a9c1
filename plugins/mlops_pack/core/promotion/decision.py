"""The typed decision of one promotion attempt, and the fields each kind of attempt decides.

A :class:`Decision` is what an attempt ends with and what its record in ``promotions/`` says (one per
attempt, docs/promotion.md "The record"): promoted, rejected, rolled_back, abandoned or error, with the
champion before and after, who decided, and the evidence (the gate's numbers, a repair, a trigger).
Plain functions, no Airflow or MLflow import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DECISIONS = ("promoted", "rejected", "rolled_back", "abandoned", "error")
_CORE = ("decision", "promote", "reason", "champion_before", "champion_after", "approved_by")


@dataclass(frozen=True)
class Decision:
    """One attempt's outcome. ``evidence`` holds the rest of the record (gate metrics and intervals, the
    clean holdout, ``repair``/``repaired_by``, ``trigger``, ...), flattened into it by :meth:`record`."""

    model: str
    version: str
    attempt: str
    decision: str
    promote: bool
    reason: str
    champion_before: str | None
    champion_after: str | None
    approved_by: str
    decided_at: str
    dag_id: str
    run_id: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {self.decision!r}")
        if self.promote != (self.decision in ("promoted", "rolled_back")):
            raise ValueError(f"promote={self.promote} contradicts decision={self.decision!r}")

    @classmethod
    def of(cls, fields: dict[str, Any], *, model: str, version: str, attempt: str, decided_at: str, dag_id: str,
           run_id: str) -> Decision:
        """The decision whose core ``fields`` (decision, promote, reason, champion before/after, approved_by)
        come from one of the functions below; any other field is evidence."""
        core = {k: fields[k] for k in _CORE}
        return cls(model=model, version=str(version), attempt=attempt, decided_at=decided_at, dag_id=dag_id,
                   run_id=run_id, **core, evidence={k: v for k, v in fields.items() if k not in _CORE})

    def record(self) -> dict[str, Any]:
        """The JSON object written to ``promotions/``."""
        return {"model": self.model, "version": self.version, "decided_at": self.decided_at, "dag_id": self.dag_id,
                "run_id": self.run_id, "attempt": self.attempt, "decision": self.decision, "promote": self.promote,
                "reason": self.reason, "champion_before": self.champion_before,
                "champion_after": self.champion_after, "approved_by": self.approved_by, **self.evidence}


def decision_record(verdict: dict[str, Any], *, version: str, champion: str | None, approved: bool,
                    approver: str) -> dict[str, Any]:
    """What a promote attempt decides, from the gate's ``verdict`` and the approval: the fields of its
    record (promote, decision, reason, champion before/after, who, and the gate's evidence).

    The challenger becomes champion only when the gate says so, the approver (or the policy) agrees
    and it is not champion already; the reason says which of these decided.
    """
    promote = bool(verdict["promote"]) and approved and champion != version
    reason = verdict["reason"]
    if verdict["promote"] and not approved:
        reason = f"rejected by {approver} in the approval step; gate said: {reason}"
    elif champion == version:
        reason = f"already champion; {reason}"
    return {"promote": promote, "decision": "promoted" if promote else "rejected", "reason": reason,
            "champion_before": champion, "champion_after": version if promote else champion,
            "approved_by": approver, "holdout_rows": verdict["holdout_rows"],
            "challenger_metrics": verdict["challenger_metrics"], "champion_metrics": verdict["champion_metrics"],
            "intervals": verdict["intervals"], "slices_failed": verdict["slices_failed"],
            "holdout": verdict.get("holdout"), "production_evidence": verdict.get("production_evidence")}


def rollback_refusal(name: str, target: str | None, champion: str | None, target_decision: str | None) -> str | None:
    """Why ``target`` may not become ``name``'s champion again, or None when it may.

    Only a former champion (a version whose recorded decision is ``promoted`` or ``rolled_back``)
    can be restored: a rollback must never put a gate-rejected model in front of users.
    """
    if target in (None, "", "None"):
        return f"{name} has no previous champion to roll back to; name a target_version"
    if target == champion:
        return f"{name} version {target} is already champion"
    if target_decision not in ("promoted", "rolled_back"):
        return (f"{name} version {target} never passed the promotion gate (decision={target_decision!r}); only a "
                "former champion can be restored")
    return None


def failure(error: BaseException, champion: str | None, *, abandoned: bool) -> dict[str, Any]:
    """An attempt that failed before it decided: ``abandoned`` (the champion kept moving, the lock wait timed
    out) or ``error`` (the gate or the registry failed), the exception as the reason; nothing moved."""
    return {"promote": False, "decision": "abandoned" if abandoned else "error",
            "reason": f"{type(error).__name__}: {error}", "approved_by": "policy",
            "champion_before": champion, "champion_after": champion}


def rollback(champion: str | None, target: str, why: str, who: str) -> dict[str, Any]:
    """A rollback of ``champion`` to ``target`` (checked by :func:`rollback_refusal`)."""
    return {"promote": True, "decision": "rolled_back", "reason": f"rollback from {champion} to {target}: {why}",
            "champion_before": champion, "champion_after": target, "approved_by": who}
