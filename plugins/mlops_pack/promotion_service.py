"""PromotionService: the registry side of every promotion, rollback and champion sync, for one task run.

It takes the promotion lock (hooks/mlflow_lock.py), repairs what an interrupted holder left (the
planning is core/promotion/repair.py), moves aliases through the lease's fenced writes, and records each
attempt exactly once: the JSON object in ``promotions/`` first, the version's registry tags after, and
tags that cannot be written wait in ``promotions/untagged/`` for the next holder of the lock
(core/promotion/record.py). The operators judge and decide; this applies and records.
docs/promotion.md describes the protocol.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_pack.core.promotion.decision import Decision
    from mlops_pack.core.promotion.repair import Intent
    from mlops_pack.hooks.mlflow import MlflowHook, RegistryState
    from mlops_pack.hooks.mlflow_lock import RegistryLease


class PromotionService:
    """Promotion for pipeline ``model`` as dag run ``dag_id``/``run_id``.

    :param mlflow: the MLflow hook (client and registry reads).
    :param promotions: the pipeline's ``promotions/`` storage area (an ObjectStoragePath).
    :param facets: where the recorded decision is reported for lineage (the task's run facets).
    :param wait_seconds: how long to wait for the promotion lock.
    :param lease_seconds: the lock's lease while held.
    """

    def __init__(self, mlflow: MlflowHook, promotions: Any, model: str, *, dag_id: str, run_id: str,
                 log: logging.Logger | Any, facets: dict[str, Any] | None = None, wait_seconds: float = 300,
                 lease_seconds: float = 36):
        self.mlflow, self.promotions, self.model = mlflow, promotions, model
        self.dag_id, self.run_id, self.log = dag_id, run_id, log
        self.facets = facets if facets is not None else {}
        self.wait_seconds, self.lease_seconds = wait_seconds, lease_seconds

    @property
    def holder(self) -> str:
        return f"{self.dag_id}/{self.run_id}"

    def decision(self, version: str, attempt: str, fields: dict[str, Any]) -> Decision:
        """The typed decision of ``attempt`` on ``version``, decided now by this dag run."""
        from mlops_pack.core.promotion.decision import Decision

        return Decision.of(fields, model=self.model, version=str(version), attempt=attempt,
                           decided_at=dt.datetime.now(dt.UTC).isoformat(), dag_id=self.dag_id, run_id=self.run_id)

    # ----- the lock, and what the previous holder left -----

    @contextmanager
    def lock(self, attempt: str, version: str, kind: str) -> Iterator[RegistryLease]:
        """Hold the promotion lock for ``attempt`` (a ``kind`` of move to ``version``)."""
        from mlops_pack.hooks.mlflow_lock import promotion_lock

        with promotion_lock(self.mlflow, self.model, self.holder, wait_seconds=self.wait_seconds,
                            lease_seconds=self.lease_seconds, attempt=attempt, version=str(version),
                            kind=kind) as lease:
            yield lease

    def repaired_state(self, lease: RegistryLease) -> RegistryState:
        """The registry state under a fresh lock, after applying tags that waited for the registry, recording
        the attempts of holders whose lock was broken, and finishing or undoing an interrupted alias move
        (each attempt recorded once)."""
        from mlops_pack.core.promotion.repair import Intent, broken_lock_record

        self.retag_pending()
        state = self.mlflow.registry_state(self.model)
        intent = Intent.from_tag(state.intent) if state.intent else None
        for dead in lease.broken:
            plan = broken_lock_record(dead, state.champion, self.holder)
            if plan and not self.recorded(plan.attempt) and (intent is None or intent.attempt != plan.attempt):
                self.record(self.decision(plan.version, plan.attempt, plan.fields), tag_version=plan.tag_version)
        if intent is None:
            return state
        self._repair(lease, intent, state)
        return self.mlflow.registry_state(self.model)

    def _repair(self, lease: RegistryLease, intent: Intent, state: RegistryState) -> None:
        from mlops_pack.core.promotion.repair import repair_plan, repair_record

        plan = repair_plan(intent, state.champion, state.previous)
        self.log.warning("Repairing an interrupted %s of %s v%s: %s", intent.kind, self.model, intent.version,
                         plan.reason)
        lease.move_aliases(plan.moves)
        if not self.recorded(intent.attempt):
            found = repair_record(intent, plan, self.holder)
            self.record(self.decision(found.version, found.attempt, found.fields), tag_version=found.tag_version)
        lease.clear_intent()

    # ----- alias moves -----

    def begin(self, lease: RegistryLease, intent: Intent, moves: list[tuple[str, str | None]]) -> None:
        """Write the intent, then move the aliases (``previous`` first): from the intent on, a crash leaves a
        state the next holder completes or undoes."""
        lease.write_intent(intent)
        lease.move_aliases(moves)

    def finish(self, lease: RegistryLease) -> None:
        """Clear the intent once the attempt is recorded."""
        lease.clear_intent()

    # ----- the record -----

    def record(self, decision: Decision, *, tag_version: bool = True) -> dict[str, Any]:
        """Append the decision to ``promotions/`` (one object per attempt), then tag the version; returns the
        record.

        The object is written first: it is the one that must survive a registry that is down (docs/
        promotion.md promises one record per attempt). Tags that could not be written wait in
        ``promotions/untagged/<record name>`` with the error that stopped them, for the next holder of the
        lock (:meth:`retag_pending`); the tagging error is raised after the record is safe.
        ``tag_version=False`` keeps the version's tags as they are (a failed rollback must not strip its
        target's ``decision=promoted``).
        """
        from mlops_pack.core.promotion.record import (
            PENDING_AREA,
            decision_tags,
            pending_entry,
            record_file_name,
        )
        from mlops_pack.core.storage import write_json

        record = decision.record()
        file_name = record_file_name(record)
        write_json(self.promotions / file_name, record)
        self.facets["promotionDecision"] = {k: record.get(k) for k in (
            "model", "version", "decision", "promote", "reason", "approved_by", "champion_before", "champion_after",
            "attempt", "decided_at")}
        self.log.info("%s version %s %s: %s", self.model, record["version"], record["decision"].upper(),
                      record["reason"])
        if not tag_version:
            return record
        tags = decision_tags(record)
        try:
            self.mlflow.tag_version(self.model, record["version"], tags)
        except Exception as exc:
            write_json(self.promotions / PENDING_AREA / file_name,
                       pending_entry(file_name, record, tags, exc, dt.datetime.now(dt.UTC).isoformat()))
            self.log.warning("%s v%s: decision recorded in storage (%s); its registry tags wait in "
                             "promotions/%s/ for the next promotion, rollback or champion sync: %s",
                             self.model, record["version"], file_name, PENDING_AREA, exc)
            raise
        return record

    def record_failure(self, attempt: str, version: str, champion: str | None, exc: BaseException, *,
                       abandoned: bool, tag_version: bool = True) -> None:
        """One record for an attempt that failed; cleanup errors are logged, never raised over ``exc``."""
        from mlops_pack.core.promotion.decision import failure

        decision = self.decision(version, attempt, failure(exc, champion, abandoned=abandoned))
        try:
            self.record(decision, tag_version=tag_version)
        except Exception as cleanup:  # noqa: BLE001 - the original error is what the task must fail with
            self.log.error("Could not record the %s of %s v%s (%s); the task fails with: %s", decision.decision,
                           self.model, version, cleanup, exc)

    def retag_pending(self) -> None:
        """Apply registry tags of decisions recorded while the registry could not be tagged, oldest first;
        a version already tagged with a later decision keeps that one, a version deleted since is let go."""
        from mlops_pack.core.promotion.record import PENDING_AREA, retag_wanted
        from mlops_pack.core.storage import read_json

        pending = self.promotions / PENDING_AREA
        if not pending.exists():
            return
        for entry in sorted(pending.iterdir(), key=lambda p: p.name):
            waiting = read_json(entry)
            if not self.mlflow.version_exists(self.model, waiting["version"]):
                self.log.warning("%s v%s no longer exists: dropping the registry tags %s waited to apply",
                                 self.model, waiting["version"], entry.name)
            elif retag_wanted(self.mlflow.version_tags(self.model, waiting["version"]), waiting):
                self.mlflow.tag_version(self.model, waiting["version"], waiting["tags"])
                self.log.info("%s v%s: applied the registry tags of %s, recorded while they could not be "
                              "written (%s)", self.model, waiting["version"], entry.name, waiting.get("error"))
            entry.unlink()

    def recorded(self, attempt: str) -> bool:
        """Does ``promotions/`` hold a record of ``attempt``?"""
        from mlops_pack.core.promotion.record import is_attempt_record

        return self.promotions.exists() and any(is_attempt_record(p.name, attempt) for p in self.promotions.iterdir())

    def log_records(self) -> list[dict[str, Any]]:
        """Every decision recorded in ``promotions/`` (tags waiting in ``untagged/`` are not decisions)."""
        from mlops_pack.core.storage import read_json

        if not self.promotions.exists():
            return []
        return [read_json(p) for p in self.promotions.iterdir() if p.name.endswith(".json")]
