"""A champion moved outside the pack is told from the pack's own moves by the promotion log."""

from __future__ import annotations

from mlops_pack.core.promotion.events import (
    BY_HAND,
    REMIND_SECONDS,
    alias_poll,
    hand_move,
    recorded_champion,
    redact_uri,
    should_log,
)


def test_the_newest_decision_says_the_recorded_champion():
    records = [{"decided_at": "2026-11-02T10:00:00+00:00", "champion_after": "2"},
               {"decided_at": "2026-11-01T10:00:00+00:00", "champion_after": "1"},
               {"decided_at": "2026-11-03T10:00:00+00:00", "champion_after": "2", "decision": "rejected"}]
    assert recorded_champion(records) == "2"
    assert recorded_champion([]) is None


def test_a_move_the_log_knows_is_not_recorded_again():
    assert hand_move("2", "2") is None
    assert hand_move(None, None) is None


def test_a_move_outside_the_pack_is_a_promotion_approved_by_the_registry():
    move = hand_move("2", "3")
    assert move["decision"] == "promoted" and move["approved_by"] == BY_HAND
    assert (move["champion_before"], move["champion_after"]) == ("2", "3") and "from 2 to 3" in move["reason"]
    assert hand_move(None, "1")["champion_before"] is None


# --- The alias watch: what one read of model@alias means (triggers/registry.py logs and yields it) ---

URI = "sqlite:////srv/airflow/mlflow.db"


def test_a_new_version_is_reported_once_then_only_moves_are():
    first = alias_poll("m", "champion", None, version="1", registry=URI)
    assert first.event == {"model": "m", "alias": "champion", "version": "1", "seen_before": None}
    assert first.seen == "1" and f"m@champion is version 1 in {URI} (last reported: none): reporting it" == first.status
    again = alias_poll("m", "champion", "1", version="1", registry=URI)
    assert again.event is None and again.seen == "1" and "as last reported" in again.status
    moved = alias_poll("m", "champion", "1", version="2")
    assert moved.event["version"] == "2" and moved.event["seen_before"] == "1" and moved.seen == "2"


def test_no_model_no_alias_or_a_failed_read_report_nothing_and_say_why():
    missing = alias_poll("m", "champion", None, registered=False, registry=URI)
    assert missing.event is None and not missing.problem
    assert missing.status.startswith(f"no registered model 'm' in {URI} yet")
    unset = alias_poll("m", "champion", None, version=None, registry=URI)
    assert unset.event is None and "m has no @champion" in unset.status
    down = alias_poll("m", "champion", "3", error="RegistryError: connection refused")
    assert down.event is None and down.problem and down.seen == "3"
    assert "connection refused" in down.status and "last reported: 3" in down.status
    # The registry back with the version reported before the outage: nothing new to report.
    assert alias_poll("m", "champion", down.seen, version="3").event is None


def test_a_status_is_logged_when_it_changes_and_as_a_reminder():
    assert should_log("a", None, 0.0, 1.0)
    assert not should_log("a", "a", 100.0, 100.0 + REMIND_SECONDS - 1)
    assert should_log("a", "a", 100.0, 100.0 + REMIND_SECONDS)
    assert should_log("b", "a", 100.0, 101.0)


def test_registry_passwords_stay_out_of_the_log():
    assert redact_uri("postgresql://mlflow:s3cret@db:5432/mlflow") == "postgresql://mlflow:***@db:5432/mlflow"
    assert redact_uri("http://mlflow:5000/x") == "http://mlflow:5000/x"
    assert "s3cret" not in alias_poll("m", "champion", None, version="1",
                                      registry="postgresql://u:s3cret@db/mlflow").status
    assert "s3cret" not in alias_poll("m", "champion", None, error="cannot read from http://u:s3cret@mlflow/").status
