"""The record of a decision: its name, the version tags it implies, and tags that wait for the registry."""

from __future__ import annotations

import json

from mlops_pack.core.promotion.record import (
    decision_tags,
    is_attempt_record,
    pending_entry,
    record_file_name,
    retag_wanted,
)

RECORD = {"model": "listings", "version": "3", "attempt": "9f0c", "decision": "error", "promote": False,
          "reason": "RegistryError: cannot read alias listings@champion from http://127.0.0.1:5000: refused",
          "approved_by": "policy", "champion_before": None, "champion_after": None,
          "decided_at": "2026-12-03T20:01:02.5+00:00"}


def test_a_record_is_named_by_time_version_and_attempt():
    name = record_file_name(RECORD)
    assert name == "2026-12-03T200102.5Z0000_v3_9f0c.json"
    assert is_attempt_record(name, "9f0c") and not is_attempt_record(name, "0c")
    assert record_file_name({**RECORD, "attempt": None}) == "2026-12-03T200102.5Z0000_v3.json"


def test_tags_carry_the_decision_the_attempt_and_the_gate_holdout():
    tags = decision_tags({**RECORD, "reason": "x" * 5000, "holdout": {"rows_used": 80, "rows_removed": 20,
                                                                       "summary": "20 of 100 rows removed"}})
    assert tags["decision"] == "error" and tags["decision_attempt"] == "9f0c" and len(tags["reason"]) == 4000
    assert tags["evaluated_against"] == "none" and tags["decided_by"] == "policy"
    assert (tags["gate_holdout_rows"], tags["gate_holdout_removed"]) == ("80", "20")
    assert "gate_holdout_rows" not in decision_tags(RECORD)


def test_a_pending_entry_names_its_record_and_the_error_that_stopped_the_tags():
    entry = pending_entry("r.json", RECORD, decision_tags(RECORD), ConnectionError("http://mlflow:5000 refused"),
                          "2026-12-03T20:01:05+00:00")
    assert entry["record"] == "r.json" and entry["version"] == "3" and entry["attempt"] == "9f0c"
    assert entry["error"] == "ConnectionError: http://mlflow:5000 refused"
    assert json.loads(json.dumps(entry)) == entry


def test_waiting_tags_never_overwrite_a_later_decision():
    waiting = {"tags": decision_tags(RECORD)}
    assert retag_wanted({}, waiting)  # never tagged
    assert retag_wanted({"decided_at": "2026-12-02T00:00:00+00:00"}, waiting)  # an older decision
    assert not retag_wanted({"decided_at": "2026-12-04T00:00:00+00:00"}, waiting)  # judged again since
