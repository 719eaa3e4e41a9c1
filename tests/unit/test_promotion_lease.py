"""The promotion lock's pure decisions: staleness on our own clock, owner checks, the holder's margin,
breaking only the acquisition judged stale, alias-move order and the repair of an interrupted move."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest
from mlops_pack.core.promotion import lease as rl
from mlops_pack.core.promotion import repair
from mlops_pack.core.promotion.lease import LeaseTerms, StaleWatch
from mlops_pack.core.promotion.repair import Intent, alias_moves, repair_plan

TERMS = LeaseTerms(lease_seconds=30, heartbeat_seconds=5)
WALL = 1_800_000_000.0


def tags(token="a", now=WALL, **kw):
    return rl.lock_tags(token, "dag/run", TERMS, now=now, attempt="att", version="3", **kw)


def test_lease_terms_are_checked_and_derived():
    assert (TERMS.beat, TERMS.margin) == (5, 10)
    assert LeaseTerms(36).beat == 6
    with pytest.raises(ValueError, match="heartbeat_seconds"):
        LeaseTerms(30, heartbeat_seconds=20)
    with pytest.raises(ValueError, match="lease_seconds"):
        LeaseTerms(0)


def test_a_renewed_lock_is_never_stale_and_an_unrenewed_one_is_after_one_lease_of_our_clock():
    watch, t = StaleWatch(), tags()
    assert not watch.stale(t, mono=100, wall=WALL)
    assert not watch.stale(t, mono=129.9, wall=WALL)  # heartbeat value unchanged, but not a whole lease yet
    renewed = {**t, **rl.heartbeat_tag(TERMS, WALL + 25)}
    assert not watch.stale(renewed, mono=129.95, wall=WALL)  # a change restarts the observation
    assert not watch.stale(renewed, mono=159, wall=WALL)
    assert watch.stale(renewed, mono=160, wall=WALL)


def test_a_new_holder_restarts_the_observation():
    watch = StaleWatch()
    watch.stale(tags("a"), mono=0, wall=WALL)
    assert not watch.stale(tags("b"), mono=31, wall=WALL)


def test_a_lock_abandoned_long_ago_is_stale_at_once_but_clock_skew_within_a_lease_is_tolerated():
    assert StaleWatch().stale(tags(now=WALL - 61), mono=0, wall=WALL)  # lease_until + a whole lease passed
    assert not StaleWatch().stale(tags(now=WALL - 59), mono=0, wall=WALL)


def test_a_legacy_lock_without_lease_ages_out_after_fifteen_minutes():
    legacy = {"holder": "old", "acquired_at": "2027-01-15T08:00:00+00:00"}
    acquired = datetime.fromisoformat(legacy["acquired_at"]).timestamp()
    assert not StaleWatch().stale(legacy, mono=0, wall=acquired + 600)
    assert StaleWatch().stale(legacy, mono=0, wall=acquired + 901)


def test_only_the_exact_acquisition_judged_stale_may_be_broken():
    seen = tags("a")
    assert rl.may_break(seen, dict(seen))
    assert not rl.may_break(seen, {})  # released meanwhile
    assert not rl.may_break(seen, tags("b"))  # a new holder: never delete someone else's lock
    assert not rl.may_break(seen, {**seen, **rl.heartbeat_tag(TERMS, WALL + 5)})  # it came back to life


def test_owner_check_and_the_holders_margin_before_any_breaker():
    assert rl.owns(tags("a"), "a") and not rl.owns(tags("b"), "a") and not rl.owns({}, "a")
    assert rl.lease_valid(100, TERMS, 119.9)
    assert not rl.lease_valid(100, TERMS, 120)  # 10 s before a breaker (who waits 30 s) may act


def test_backoff_is_short_jittered_and_bounded():
    rng = random.Random(1)
    waits = [rl.backoff(n, rng) for n in range(30)]
    assert all(0.02 <= w <= 0.36 for w in waits) and len(set(waits)) == 30


def test_previous_moves_before_champion():
    assert alias_moves("4", "5") == [("previous", "4"), ("champion", "5")]
    assert alias_moves(None, "1") == [("champion", "1")]


INTENT = Intent("promote", version="5", champion_before="4", previous_before="3", holder="h", token="t",
                attempt="abcdef0123")


def test_intent_round_trips_and_garbage_is_named():
    assert Intent.from_tag(INTENT.to_tag()) == INTENT
    with pytest.raises(ValueError, match=repair.INTENT_TAG):
        Intent.from_tag("{not json")


@pytest.mark.parametrize(("champion", "previous", "action", "moves", "decision"), [
    ("4", "3", "rolled_back", [], "abandoned"),  # crashed right after writing the intent
    ("4", "4", "rolled_back", [("previous", "3")], "abandoned"),  # crashed between previous and champion
    ("5", "4", "completed", [], "promoted"),  # crashed after both moves, before clearing the intent
    ("5", "3", "completed", [("previous", "4")], "promoted"),  # champion moved, previous not (other order)
    ("7", "4", "discarded", [], "abandoned"),  # someone moved champion outside the lock: leave it
])
def test_repair_plan_for_every_crash_point(champion, previous, action, moves, decision):
    plan = repair_plan(INTENT, champion, previous)
    assert (plan.action, plan.moves, plan.decision) == (action, moves, decision)
    assert "v5" in plan.reason and "abcdef01" in plan.reason


def test_repair_of_a_first_promotion_deletes_nothing_it_did_not_set():
    first = Intent("promote", "1", None, None, "h", "t", "a")
    assert repair_plan(first, None, None).moves == []
    assert repair_plan(first, "1", None).action == "completed"
    rollback = Intent("rollback", "2", "4", None, "h", "t", "a")
    assert repair_plan(rollback, "4", "4").moves == [("previous", None)]  # None deletes the alias again
    assert repair_plan(rollback, "2", "4").decision == "rolled_back"


def test_fault_points_cost_nothing_unless_named(monkeypatch, tmp_path):
    monkeypatch.delenv(rl.FAULT_ENV, raising=False)
    rl.fault_point("alias.champion_moved")
    monkeypatch.setenv(rl.FAULT_ENV, "lock.acquired:sleep:0.01,alias.champion_moved:raise")
    rl.fault_point("lock.acquired")
    with pytest.raises(RuntimeError, match="injected fault at alias.champion_moved"):
        rl.fault_point("alias.champion_moved")
    monkeypatch.setenv(rl.TRACE_ENV, str(tmp_path / "trace"))
    rl.trace("enter", "tok", holder="h")
    assert json.loads((tmp_path / "trace").read_text())["event"] == "enter"
