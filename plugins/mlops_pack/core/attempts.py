"""Which task attempt made a model version or an MLflow run, and which of them a new attempt supersedes.

A train task that dies after registering its model (a killed worker, an orphaned task process) leaves
a version and an MLflow run behind; its retry registers another. Every version and run therefore
carries the attempt that made them, as tags set when they are created (``attempt_tags``). When an
attempt starts, and again before it hands its version on, ``stale_items`` names the earlier
attempts' leftovers of the same dag run and task; the train operator marks them abandoned (run
KILLED, tags ``attempt_status=abandoned``, the reason and the superseding attempt) and deletes
nothing. An orphaned try (its worker lost, its process still going) that finds a later try's run or
version marks its own leftovers the same way and stops (``superseding_attempt``). Promotion refuses an
abandoned version (``promotion_refusal``).
"""

from __future__ import annotations

from dataclasses import dataclass

# Tag keys; airflow.dag_id / airflow.run_id are the lineage tags runs carried before attempts did.
DAG_ID, RUN_ID, TASK_ID, TRY_NUMBER, MAP_INDEX = ("airflow.dag_id", "airflow.run_id", "airflow.task_id",
                                                  "airflow.try_number", "airflow.map_index")
STATUS_TAG = "attempt_status"
ABANDONED = "abandoned"
REASON_TAG = "abandoned_reason"
SUPERSEDED_BY_TAG = "superseded_by"
LIVE_RUN_STATUSES = ("RUNNING", "SCHEDULED")  # a run in one of these was never ended by its attempt


@dataclass(frozen=True)
class Attempt:
    """One try of one task instance (``map_index`` -1 for an unmapped task)."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    map_index: int = -1

    def tags(self) -> dict[str, str]:
        """The tags that name this attempt on everything it creates."""
        return {DAG_ID: self.dag_id, RUN_ID: self.run_id, TASK_ID: self.task_id,
                TRY_NUMBER: str(self.try_number), MAP_INDEX: str(self.map_index)}

    def label(self) -> str:
        mapped = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{mapped} try {self.try_number}"

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Attempt | None:
        """The attempt named by ``tags``; None when they name none (made before attempts were tagged)."""
        try:
            return cls(tags[DAG_ID], tags[RUN_ID], tags[TASK_ID], int(tags[TRY_NUMBER]), int(tags.get(MAP_INDEX, -1)))
        except (KeyError, ValueError):
            return None

    def same_task(self, other: Attempt) -> bool:
        """Is ``other`` a try of the same task instance (dag run, task, map index)?"""
        return (self.dag_id, self.run_id, self.task_id, self.map_index) == (
            other.dag_id, other.run_id, other.task_id, other.map_index)


@dataclass(frozen=True)
class Item:
    """A model version (``kind`` "version", ``key`` its number) or an MLflow run (``kind`` "run", ``key``
    its id), with its tags; ``status`` is a run's status; ``run_key`` a version's source run."""

    kind: str
    key: str
    tags: dict[str, str]
    status: str = ""
    run_key: str = ""


@dataclass(frozen=True)
class Stale:
    """An item to mark abandoned: the tags to add and whether to end its run as KILLED."""

    item: Item
    tags: dict[str, str]
    kill_run: bool


def stale_items(current: Attempt, items: list[Item], *, protected_versions: set[str]) -> list[Stale]:
    """The earlier attempts' leftovers among ``items`` that ``current`` supersedes, and how to mark them.

    An item is stale when its tags name an earlier try of the same task instance, it is not already
    marked abandoned, and its attempt never handed a version on: a version that was judged (tag
    ``decision``) or sits behind an alias in ``protected_versions`` (champion, previous) is the result
    of an attempt that succeeded (a task cleared and run again), and so is its run; both stay as they are.
    Items of other tasks, other dag runs, later tries or with no attempt tags are never touched.
    """
    stale = []
    for item in _unfinished(items, protected_versions):
        made_by = Attempt.from_tags(item.tags)
        if made_by is None or not current.same_task(made_by) or made_by.try_number >= current.try_number:
            continue
        what = "its model version was never judged" if item.kind == "version" else "its run never handed a version on"
        stale.append(_mark(item, current, f"try {made_by.try_number} of {made_by.task_id} stopped before finishing "
                                          f"(killed or lost); {what}; superseded by try {current.try_number}"))
    return stale


def superseding_attempt(current: Attempt, items: list[Item]) -> Attempt | None:
    """The latest later try of ``current``'s task instance that made any of ``items``, or None.

    Airflow runs one try of a task instance at a time, so a try that finds a later one's run or version
    is an orphan: its worker was lost and the task retried while its process went on.
    """
    later = [a for a in map(Attempt.from_tags, (i.tags for i in items))
             if a is not None and current.same_task(a) and a.try_number > current.try_number]
    return max(later, key=lambda a: a.try_number, default=None)


def superseded_items(current: Attempt, later: Attempt, items: list[Item], *,
                     protected_versions: set[str]) -> list[Stale]:
    """``current``'s own leftovers to mark abandoned because ``later`` superseded it (``current`` is an orphan)."""
    return [_mark(item, later, f"try {current.try_number} of {current.task_id} went on after its task was retried "
                               f"(orphaned: its worker was lost); superseded by try {later.try_number}")
            for item in _unfinished(items, protected_versions) if Attempt.from_tags(item.tags) == current]


def _unfinished(items: list[Item], protected_versions: set[str]) -> list[Item]:
    """Items not yet marked abandoned whose attempt never handed a version on: a version that was judged (tag
    ``decision``) or is champion/previous, and that version's run, are the result of an attempt that succeeded."""
    handed_on = [i for i in items if i.kind == "version" and ("decision" in i.tags or i.key in protected_versions)]
    done = {("version", i.key) for i in handed_on} | {("run", i.run_key) for i in handed_on}
    return [i for i in items if (i.kind, i.key) not in done and i.tags.get(STATUS_TAG) != ABANDONED]


def _mark(item: Item, by: Attempt, reason: str) -> Stale:
    tags = {STATUS_TAG: ABANDONED, REASON_TAG: reason, SUPERSEDED_BY_TAG: by.label()}
    return Stale(item, tags, kill_run=item.kind == "run" and item.status in LIVE_RUN_STATUSES)


def promotion_refusal(model: str, version: str, tags: dict[str, str]) -> str | None:
    """Why ``model`` ``version`` must not be judged or promoted, or None: an abandoned attempt's version."""
    if tags.get(STATUS_TAG) != ABANDONED:
        return None
    return (f"{model} version {version} is tagged {STATUS_TAG}={ABANDONED} ({tags.get(REASON_TAG, 'no reason')}; "
            f"superseded by {tags.get(SUPERSEDED_BY_TAG, 'a later attempt')}): only the version of the train "
            "attempt that succeeded may be judged or promoted")
