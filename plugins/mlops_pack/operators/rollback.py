"""MlflowRollbackOperator: move ``champion`` back to ``previous`` or to a named version, recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_pack.links import MlflowModelVersionLink
from mlops_pack.operators.promote import RegistryOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class RollbackRefused(ValueError):
    """The rollback target is not a version that may be champion."""


class MlflowRollbackOperator(RegistryOperator):
    """Under the registry lock, point ``champion`` at ``target_version`` (default: ``previous``).

    Only a version that once passed the gate (tag ``decision=promoted``) may become champion again.
    The old champion becomes ``previous``; the move is recorded like a promotion (tags and one
    record in ``promotions/``, decision ``rolled_back``) and emitted on the task's outlets.

    :param target_version: version to restore (templated); empty means the ``previous`` alias.
    :param reason: why, for the record (templated).
    """

    template_fields = (*RegistryOperator.template_fields, "target_version", "reason")
    ui_color = "#fdf6e8"
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(self, *, target_version: str | int | None = None, reason: str = "manual rollback", **kwargs: Any):
        super().__init__(**kwargs)
        self.target_version, self.reason = target_version, reason

    def execute(self, context: Context) -> dict[str, Any]:
        name = self.spec.name
        who = getattr(context["dag_run"], "triggering_user_name", None) or "unknown user"
        with self.mlflow.promotion_lock(name, f"{context['dag'].dag_id}/{context['run_id']}"):
            champion = self.mlflow.alias_version(name, "champion")
            target = str(self.target_version or "").strip() or self.mlflow.alias_version(name, "previous")
            if target in (None, "None"):
                raise RollbackRefused(f"{name} has no previous champion to roll back to; name a target_version")
            if target == champion:
                raise RollbackRefused(f"{name} version {target} is already champion")
            decision = self.mlflow.version_tags(name, target).get("decision")
            if decision not in ("promoted", "rolled_back"):
                raise RollbackRefused(f"{name} version {target} never passed the promotion gate (decision="
                                      f"{decision!r}); only a former champion can be restored")
            self.mlflow.set_alias(name, "champion", target)
            if champion is not None:
                self.mlflow.set_alias(name, "previous", champion)
            record = {**self.base_record(context, name, target), "promote": True, "decision": "rolled_back",
                      "reason": f"rollback from {champion} to {target}: {self.reason}", "champion_before": champion,
                      "champion_after": target, "approved_by": who}
            self.record(context, record)
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = {"model": name, "version": target, "champion_before": champion,
                                                      "reason": record["reason"]}
        return record
