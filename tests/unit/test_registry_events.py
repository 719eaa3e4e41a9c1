"""A champion moved outside the pack is told from the pack's own moves by the promotion log."""

from __future__ import annotations

from mlops_pack.core.registry_events import BY_HAND, hand_move, recorded_champion


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
