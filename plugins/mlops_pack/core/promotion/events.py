"""Registry events: a ``@champion`` moved outside the pack (MLflow UI or API), told from the pack's own moves.

Plain functions, no Airflow import. The promotion log (``promotions/``, one record per decision) says
which version the pack last made champion; a registry champion that differs was moved by someone
else, and gets a record of its own so the log stays the whole history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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


# --- The alias watch (triggers/registry.py ChampionAliasTrigger): what one read of model@alias means ---

REMIND_SECONDS = 600.0  # a status that stays the same is logged again this often: the log's tail says it


@dataclass(frozen=True)
class AliasPoll:
    """What one read of ``model@alias`` gives the watcher.

    ``event``: the payload to yield (None: nothing to report); ``status``: one line saying why (logged
    when it changes); ``seen``: the version reported last, carried to the next read; ``problem``: the
    read failed (logged as a warning).
    """

    event: dict[str, Any] | None
    status: str
    seen: str | None
    problem: bool = False


def alias_poll(model: str, alias: str, seen: str | None, *, version: str | None = None, registered: bool = True,
               error: str | None = None, registry: str = "") -> AliasPoll:
    """Decide what a read of ``model@alias`` (``version``, or ``registered=False``, or a read ``error``) means
    after ``seen`` was reported. Only a version other than ``seen`` is reported: a model not registered yet,
    an alias not set and a registry that does not answer keep ``seen`` and say so, so the watcher outlives
    them and a later read of the same version reports nothing twice."""
    where = f" in {redact_uri(registry)}" if registry else ""
    if error is not None:
        return AliasPoll(None, f"cannot read {model}@{alias}{where}: {redact_uri(error)}; trying again at the next poll "
                               f"(last reported: {seen or 'none'})", seen, problem=True)
    if not registered:
        return AliasPoll(None, f"no registered model {model!r}{where} yet: nothing to report until it is "
                               "registered and its alias set", seen)
    if version is None:
        return AliasPoll(None, f"{model} has no @{alias}{where}: nothing to report until one is set", seen)
    if version == seen:
        return AliasPoll(None, f"{model}@{alias} is version {version}{where}, as last reported", seen)
    return AliasPoll({"model": model, "alias": alias, "version": version, "seen_before": seen},
                     f"{model}@{alias} is version {version}{where} (last reported: {seen or 'none'}): reporting it",
                     version)


def should_log(status: str, last_status: str | None, last_logged: float, now: float,
               every: float = REMIND_SECONDS) -> bool:
    """Log a watcher status when it changes, and the same one again every ``every`` seconds."""
    return status != last_status or now - last_logged >= every


def redact_uri(uri: str) -> str:
    """``uri`` without the password of its user info (a registry URI may be ``postgresql://user:pw@host/db``)."""
    return re.sub(r"(//[^/:@]*):[^/@]*@", r"\1:***@", uri)
