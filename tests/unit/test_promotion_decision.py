"""The typed decision of a promotion attempt, and what the next lock holder records for an attempt it
found interrupted (a broken lock, an open intent)."""

from __future__ import annotations

import json

import pytest
from mlops_pack.core.promotion.decision import Decision, failure, rollback
from mlops_pack.core.promotion.repair import Intent, broken_lock_record, repair_plan, repair_record

WHERE = {"model": "listings", "decided_at": "2026-12-03T20:00:00+00:00", "dag_id": "listings__train",
         "run_id": "manual__1"}


def test_a_decision_flattens_its_evidence_into_one_json_record():
    fields = {"promote": True, "decision": "promoted", "reason": "better", "champion_before": "1",
              "champion_after": "2", "approved_by": "policy", "holdout_rows": 800, "intervals": []}
    decision = Decision.of(fields, version=2, attempt="9f0c", **WHERE)
    record = decision.record()
    assert record["version"] == "2" and record["attempt"] == "9f0c" and record["holdout_rows"] == 800
    assert decision.evidence == {"holdout_rows": 800, "intervals": []}
    assert json.loads(json.dumps(record)) == record


def test_a_decision_that_contradicts_itself_is_refused():
    with pytest.raises(ValueError, match="decision must be one of"):
        Decision.of({**failure(RuntimeError("x"), "1", abandoned=False), "decision": "maybe"}, version="2",
                    attempt="a", **WHERE)
    with pytest.raises(ValueError, match="promote=True contradicts decision='rejected'"):
        Decision.of({**failure(RuntimeError("x"), "1", abandoned=False), "decision": "rejected", "promote": True},
                    version="2", attempt="a", **WHERE)


def test_a_failed_attempt_names_its_error_and_moves_nothing():
    error = failure(ConnectionError("http://mlflow:5000 refused"), "1", abandoned=False)
    assert error["decision"] == "error" and error["reason"] == "ConnectionError: http://mlflow:5000 refused"
    assert error["champion_before"] == error["champion_after"] == "1" and not error["promote"]
    assert failure(TimeoutError("lock"), None, abandoned=True)["decision"] == "abandoned"


def test_a_rollback_says_from_where_to_where_and_who():
    fields = rollback("4", "3", "bad predictions", "ana")
    assert fields["decision"] == "rolled_back" and fields["approved_by"] == "ana"
    assert fields["reason"] == "rollback from 4 to 3: bad predictions"


def test_a_broken_lock_is_recorded_abandoned_for_its_attempt_only():
    dead = {"attempt": "a1", "version": "5", "kind": "promote", "holder": "listings__train/run_7"}
    plan = broken_lock_record(dead, "4", "listings__train/run_8")
    assert (plan.version, plan.attempt, plan.tag_version) == ("5", "a1", True)
    assert plan.fields["decision"] == "abandoned" and "run_7" in plan.fields["reason"]
    assert broken_lock_record({**dead, "kind": "rollback"}, "4", "x").tag_version is False  # target keeps its tags
    assert broken_lock_record({**dead, "attempt": ""}, "4", "x") is None  # a train's challenger move
    assert broken_lock_record({**dead, "version": ""}, "4", "x") is None


def test_a_repaired_attempt_is_recorded_as_the_repair_finished_it():
    intent = Intent("promote", "5", "4", "3", "listings__train/run_7", "tok", "a1")
    done = repair_record(intent, repair_plan(intent, "5", "4"), "listings__train/run_8")
    assert done.fields["decision"] == "promoted" and done.fields["promote"] and done.fields["repair"] == "completed"
    assert done.fields["repaired_by"] == "listings__train/run_8" and done.tag_version
    undone = Intent("rollback", "2", "4", "3", "h", "tok", "a2")
    plan = repair_record(undone, repair_plan(undone, "4", "3"), "r")
    assert plan.fields["decision"] == "abandoned" and not plan.tag_version  # the target keeps decision=promoted
    Decision.of(plan.fields, version=plan.version, attempt=plan.attempt, **WHERE)  # a valid decision
