"""cli/task_logs.py: the error lines `mlops-pack run`/`ingest` print for a failed task."""

from __future__ import annotations

import json

from mlops_pack.cli.task_logs import error_lines, task_errors


def line(level: str, event: str, **extra) -> str:
    return json.dumps({"timestamp": "2026-12-03T10:00:00Z", "level": level, "event": event, "logger": "task", **extra})


FAILED = "\n".join([
    line("info", "Filling up the DagBag"),
    line("warning", "GitWildMatchPattern is deprecated"),
    line("error", "Task failed with exception", error_detail=[
        {"exc_type": "FileSourceError", "exc_value": "date column 'visit' of in.csv: '03/12/2026' needs date_formats",
         "frames": []}]),
    "not json at all",
    line("error", "Task failed with exception", error_detail=[
        {"exc_type": "FileSourceError", "exc_value": "date column 'visit' of in.csv: '03/12/2026' needs date_formats",
         "frames": []}]),
    line("error", "Server indicated the task shouldn't be running anymore"),
])


def test_exceptions_and_error_events_are_named_once_in_order():
    assert error_lines(FAILED) == [
        "FileSourceError: date column 'visit' of in.csv: '03/12/2026' needs date_formats",
        "Server indicated the task shouldn't be running anymore"]


def test_a_log_without_errors_has_none():
    assert error_lines(line("info", "Scored 2000 rows") + "\n" + line("warning", "slow")) == []


def test_the_last_attempt_of_each_map_index_is_read(tmp_path):
    task = tmp_path / "dag_id=p__score" / "run_id=r1" / "task_id=score"
    for index, attempt, message in ((0, 1, "first try"), (0, 2, "second try"), (1, 1, "other partition")):
        folder = task / f"map_index={index}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"attempt={attempt}.log").write_text(line("error", message))
    assert task_errors(tmp_path, "p__score", "r1", "score") == ["second try", "other partition"]
    assert task_errors(tmp_path, "p__score", "r1", "no_such_task") == []
