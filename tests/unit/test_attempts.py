"""Which leftovers of earlier train attempts a new attempt marks abandoned, and the promotion guard."""

from __future__ import annotations

from mlops_pack.core.attempts import (
    ABANDONED,
    REASON_TAG,
    STATUS_TAG,
    SUPERSEDED_BY_TAG,
    Attempt,
    Item,
    promotion_refusal,
    stale_items,
)

RETRY = Attempt("p__train", "manual__1", "train", 2)


def made_by(try_number: int, **changes) -> dict[str, str]:
    fields = {"dag_id": "p__train", "run_id": "manual__1", "task_id": "train", "try_number": try_number,
              "map_index": -1, **changes}
    return Attempt(**fields).tags()


def marked(items, protected=frozenset()) -> dict[tuple[str, str], bool]:
    return {(s.item.kind, s.item.key): s.kill_run for s in stale_items(RETRY, items, protected_versions=set(protected))}


def test_a_killed_tries_version_and_open_run_are_abandoned_and_the_run_killed():
    items = [Item("version", "2", made_by(1), run_key="r1"), Item("run", "r1", made_by(1), status="RUNNING"),
             Item("version", "3", made_by(2), run_key="r2"), Item("run", "r2", made_by(2), status="RUNNING")]
    assert marked(items) == {("version", "2"): False, ("run", "r1"): True}


def test_the_marks_name_the_reason_and_the_superseding_attempt():
    [stale] = stale_items(RETRY, [Item("version", "2", made_by(1))], protected_versions=set())
    assert stale.tags[STATUS_TAG] == ABANDONED
    assert stale.tags[SUPERSEDED_BY_TAG] == "p__train/manual__1/train try 2"
    assert "try 1 of train stopped before finishing" in stale.tags[REASON_TAG]


def test_a_run_that_ended_is_tagged_but_keeps_its_status():
    assert marked([Item("run", "r1", made_by(1), status="FINISHED")]) == {("run", "r1"): False}


def test_a_run_killed_before_registering_is_abandoned_too():
    assert marked([Item("run", "r1", made_by(1), status="RUNNING")]) == {("run", "r1"): True}


def test_an_earlier_try_that_handed_its_version_on_is_kept_with_its_run():
    # A cleared task runs again: its first try's version was judged (or is champion) and is not debris.
    judged = [Item("version", "2", {**made_by(1), "decision": "rejected"}, run_key="r1"),
              Item("run", "r1", made_by(1), status="FINISHED")]
    assert marked(judged) == {}
    champion = [Item("version", "2", made_by(1), run_key="r1"), Item("run", "r1", made_by(1), status="FINISHED")]
    assert marked(champion, protected={"2"}) == {}


def test_other_runs_tasks_map_indexes_later_tries_and_untagged_items_are_never_touched():
    items = [Item("version", "1", made_by(1, run_id="manual__0")),
             Item("version", "4", made_by(1, task_id="trial")),
             Item("version", "5", made_by(1, map_index=3)),
             Item("version", "6", made_by(1, dag_id="q__train")),
             Item("version", "7", made_by(3)),
             Item("version", "8", {"airflow.run_id": "manual__1"}),
             Item("run", "r9", {}, status="RUNNING")]
    assert marked(items) == {}


def test_what_is_already_abandoned_is_not_marked_again():
    assert marked([Item("version", "2", {**made_by(1), STATUS_TAG: ABANDONED})]) == {}


def test_mapped_tries_are_matched_by_their_own_map_index():
    retry = Attempt("p__train", "manual__1", "trial", 2, map_index=3)
    items = [Item("run", "a", made_by(1, task_id="trial", map_index=3), status="RUNNING"),
             Item("run", "b", made_by(1, task_id="trial", map_index=4), status="RUNNING")]
    assert [s.item.key for s in stale_items(retry, items, protected_versions=set())] == ["a"]


def test_attempt_tags_round_trip_and_bad_tags_name_no_attempt():
    assert Attempt.from_tags(RETRY.tags()) == RETRY
    assert Attempt.from_tags({**RETRY.tags(), "airflow.try_number": "x"}) is None
    assert Attempt.from_tags({}) is None


def test_promotion_refuses_an_abandoned_version_naming_it_and_its_successor():
    [stale] = stale_items(RETRY, [Item("version", "2", made_by(1))], protected_versions=set())
    refusal = promotion_refusal("p", "2", stale.tags)
    assert refusal.startswith("p version 2 is tagged attempt_status=abandoned")
    assert "superseded by p__train/manual__1/train try 2" in refusal
    assert promotion_refusal("p", "3", made_by(2)) is None


def test_an_orphaned_try_that_finds_a_later_try_marks_its_own_leftovers():
    from mlops_pack.core.attempts import superseded_items, superseding_attempt

    orphan = Attempt("p__train", "manual__1", "train", 1)
    items = [Item("version", "2", made_by(1), run_key="r1"), Item("run", "r1", made_by(1), status="FINISHED"),
             Item("run", "r2", made_by(2), status="RUNNING"), Item("run", "r3", made_by(3), status="RUNNING"),
             Item("version", "1", made_by(1, run_id="manual__0"))]
    later = superseding_attempt(orphan, items)
    assert later == Attempt("p__train", "manual__1", "train", 3)
    marks = superseded_items(orphan, later, items, protected_versions=set())
    assert [(s.item.kind, s.item.key, s.kill_run) for s in marks] == [("version", "2", False), ("run", "r1", False)]
    assert marks[0].tags[SUPERSEDED_BY_TAG] == "p__train/manual__1/train try 3"
    assert "went on after its task was retried" in marks[0].tags[REASON_TAG]


def test_the_live_try_has_no_successor():
    from mlops_pack.core.attempts import superseding_attempt

    items = [Item("run", "r1", made_by(1)), Item("run", "r2", made_by(2)), Item("run", "x", made_by(5, run_id="o"))]
    assert superseding_attempt(RETRY, items) is None
