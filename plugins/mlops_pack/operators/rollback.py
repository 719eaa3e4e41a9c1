"""MlflowRollbackOperator: move ``champion`` back to ``previous`` or to a named version, recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_pack.core.errors import MlopsError
from mlops_pack.links import MlflowModelVersionLink
from mlops_pack.operators.base import RegistryOperator, refuse_abandoned

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_pack.promotion_service import PromotionService


class RollbackRefused(MlopsError, ValueError):
    """The rollback target is not a version that may be champion."""


class MlflowRollbackOperator(RegistryOperator):
    """Under the registry lock, point ``champion`` at ``target_version`` (default: ``previous``).

    Only a version that once passed the gate (tag ``decision=promoted``) may become champion again.
    The old champion becomes ``previous``; the move is recorded like a promotion (tags and one
    record in ``promotions/``, decision ``rolled_back``) and emitted on the task's outlets. It uses
    the promotion protocol (lease, fenced writes, intent; docs/promotion.md); a refused or failed
    rollback is recorded too (``abandoned`` / ``error``) without touching the target's tags.

    :param target_version: version to restore (templated); empty means the ``previous`` alias.
    :param reason: why, for the record (templated).
    :param lock_wait_seconds: how long to wait for the promotion lock.
    :param lock_lease_seconds: lease of the lock while held (renewed by a heartbeat).
    """

    template_fields = (*RegistryOperator.template_fields, "target_version", "reason")
    ui_color = "#fdf6e8"
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(self, *, target_version: str | int | None = None, reason: str = "manual rollback", **kwargs: Any):
        super().__init__(**kwargs)
        self.target_version, self.reason = target_version, reason

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.promotion.lease import new_token
        from mlops_pack.hooks.mlflow_lock import LockLost, LockTimeout

        attempt, service = new_token(), self.promotion(context)
        self._progress = {"target": str(self.target_version or "").strip() or "previous", "champion": None,
                          "done": False}
        try:
            record = self._roll_back(context, service, attempt)
        except BaseException as exc:
            if not (self._progress["done"] or isinstance(exc, LockLost)):
                service.record_failure(attempt, self._progress["target"], self._progress["champion"], exc,
                                       abandoned=isinstance(exc, LockTimeout), tag_version=False)
            raise
        for version in (record["version"], record["champion_before"]):  # both cards show the move
            self.refresh_model_card(version)
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = {"model": record["model"], "version": record["version"],
                                                      "champion_before": record["champion_before"],
                                                      "reason": record["reason"]}
        return record

    def _roll_back(self, context: Context, service: PromotionService, attempt: str) -> dict[str, Any]:
        from mlops_pack.core.promotion.decision import rollback
        from mlops_pack.core.promotion.repair import Intent, alias_moves

        # Airflow records who triggered the run (the logged-in user of the UI's Trigger button or of POST
        # .../dagRuns; "Anonymous" without logins, "dag_test" under dag.test()): that person decided the rollback.
        who = getattr(context["dag_run"], "triggering_user_name", None) or "unknown user"
        with service.lock(attempt, self._progress["target"], "rollback") as lease:
            state = service.repaired_state(lease)
            champion = self._progress["champion"] = state.champion
            target = self._target(state)
            self._progress["target"] = target
            intent = Intent("rollback", target, champion, state.previous, lease.holder, lease.token, attempt)
            self._progress["done"] = True  # an open intent is recorded by the next holder, not by us
            service.begin(lease, intent, alias_moves(champion, target))
            record = service.record(service.decision(target, attempt, rollback(champion, target, self.reason, who)))
            service.finish(lease)
        return record

    def _target(self, state: Any) -> str:
        from mlops_pack.core.promotion.decision import rollback_refusal

        name = self.spec.name
        target = str(self.target_version or "").strip() or state.previous
        tags = self.mlflow.version_tags(name, target) if target not in (None, "", "None") else {}
        refuse_abandoned(name, target, tags)
        refusal = rollback_refusal(name, target, state.champion, tags.get("decision"))
        if refusal:
            raise RollbackRefused(refusal)
        return target
