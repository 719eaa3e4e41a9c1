"""Registry events: a ``@champion`` moved outside the pack (MLflow UI or API), told from the pack's own moves.

Plain functions, no Airflow import. The promotion log (``promotions/``, one record per decision) says
which version the pack last made champion; a registry champion that differs was moved by someone
else, and gets a record of its own so the log stays the whole history.
"""

from __future__ import annotations

from typing import Any

BY_HAND = "MLflow registry (moved outside the pack)"


def recorded_champion(records: list[dict[str, Any]]) -> str | None:
    """The champion after the newest decision in ``records`` (any order), or None when none is recorded."""
    decided = [r for r in records if r.get("decided_at") and "champion_after" in r]
    if not decided:
        return None
    newest = max(decided, key=lambda r: r["decided_at"])
    return str(newest["champion_after"]) if newest["champion_after"] is not None else None


def hand_move(recorded: str | None, current: str | None) -> dict[str, Any] | None:
    """The decision fields recording a move of ``@champion`` from ``recorded`` to ``current`` made outside
    the pack, or None when the registry agrees with the log (nothing to record, nothing to re-score)."""
    if current is None or current == recorded:
        return None
    return {"promote": True, "decision": "promoted", "approved_by": BY_HAND, "trigger": "registry_event",
            "reason": f"@champion was moved outside the pack (MLflow UI or API) from {recorded or 'none'} to "
                      f"{current}; recorded by the registry watch, predictions re-scored",
            "champion_before": recorded, "champion_after": current}
