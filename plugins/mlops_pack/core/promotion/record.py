"""A decision's record: its name in ``promotions/``, the registry tags it puts on the version, and the
tags that wait in ``promotions/untagged/`` while the registry cannot be tagged.

The record object is written first and never rewritten (the log is append-only on any storage); the
registry tags follow. When they cannot be written, an entry named like the record in
``promotions/untagged/`` says so: the tags, the error that stopped them, and since when. The next
holder of the promotion lock applies them (:func:`retag_wanted` decides) and removes the entry.
"""

from __future__ import annotations

from typing import Any

PENDING_AREA = "untagged"  # under promotions/


def record_file_name(record: dict[str, Any]) -> str:
    """``<time>_v<version>[_<attempt>].json``: sorted by time, and named by the attempt, so whoever finishes
    an interrupted attempt can tell whether it was recorded."""
    stamp = record["decided_at"].replace(":", "").replace("+", "Z")
    suffix = f"_{record['attempt']}" if record.get("attempt") else ""
    return f"{stamp}_v{record['version']}{suffix}.json"


def is_attempt_record(file_name: str, attempt: str) -> bool:
    return file_name.endswith(f"_{attempt}.json")


def decision_tags(record: dict[str, Any]) -> dict[str, str]:
    """The registry tags a decision puts on its version (values at most 4000 characters, MLflow's limit)."""
    tags = {"decision": record["decision"], "reason": record["reason"][:4000], "decided_at": record["decided_at"],
            "decided_by": record["approved_by"], "evaluated_against": record["champion_before"] or "none"}
    if record.get("attempt"):
        tags["decision_attempt"] = record["attempt"]
    if record.get("holdout"):  # the rows the gate judged on: used, removed and why
        tags.update({"gate_holdout_rows": str(record["holdout"]["rows_used"]),
                     "gate_holdout_removed": str(record["holdout"]["rows_removed"]),
                     "gate_holdout_summary": record["holdout"]["summary"][:4000]})
    return tags


def pending_entry(file_name: str, record: dict[str, Any], tags: dict[str, str], error: BaseException,
                  now: str) -> dict[str, Any]:
    """What ``promotions/untagged/<file_name>`` holds while ``record``'s tags wait for the registry."""
    return {"record": file_name, "model": record["model"], "version": record["version"],
            "attempt": record.get("attempt"), "tags": tags, "pending_since": now,
            "error": f"{type(error).__name__}: {error}"[:4000]}


def retag_wanted(current: dict[str, str], waiting: dict[str, Any]) -> bool:
    """Apply a waiting entry's tags over the version's ``current`` ones? Not when a later decision has
    tagged the version since: the newest decision is the one its tags show."""
    return current.get("decided_at", "") <= waiting["tags"]["decided_at"]
