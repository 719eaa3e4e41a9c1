"""What a failed task said: its error lines, read from the task logs of an embedded Airflow home, so
`mlops-pack run` and `ingest` print the reason where the person is looking instead of a path to dig in.

Airflow 3 writes one JSON object per line to ``logs/dag_id=<dag>/run_id=<run>/task_id=<task>/
[map_index=<i>/]attempt=<n>.log``; an exception is an ``error`` line with ``error_detail`` (type, value).
"""

from __future__ import annotations

import json
from pathlib import Path

MAX_LINES = 8


def error_lines(log_text: str, limit: int = MAX_LINES) -> list[str]:
    """The errors a task log holds, oldest first, each once: ``Type: message`` for an exception, else
    the error event itself."""
    found: list[str] = []
    for line in log_text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("level") not in ("error", "critical"):
            continue
        details = [d for d in record.get("error_detail") or [] if isinstance(d, dict) and d.get("exc_type")]
        texts = [f"{d['exc_type']}: {d.get('exc_value', '')}".strip() for d in details] or [str(record.get("event"))]
        found.extend(t for t in texts if t not in found)
    return found[-limit:]


def last_attempt_logs(logs: Path, dag_id: str, run_id: str, task_id: str) -> list[Path]:
    """The last attempt's log of the task (of each map index, for a mapped task)."""
    folder = logs / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    by_index: dict[str, Path] = {}
    for path in sorted(folder.glob("**/attempt=*.log"), key=lambda p: (str(p.parent), _attempt(p))):
        by_index[str(path.parent)] = path
    return list(by_index.values())


def task_errors(logs: Path, dag_id: str, run_id: str, task_id: str) -> list[str]:
    lines: list[str] = []
    for path in last_attempt_logs(logs, dag_id, run_id, task_id):
        lines.extend(line for line in error_lines(path.read_text(errors="replace")) if line not in lines)
    return lines[:MAX_LINES]


def _attempt(path: Path) -> int:
    try:
        return int(path.stem.split("=", 1)[1])
    except (IndexError, ValueError):
        return 0
