"""PromotionApprovalOperator: a human approves or rejects a promotion the gate allowed, in the Airflow UI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator

from mlops_pack.operators.promote import APPROVE

if TYPE_CHECKING:
    from airflow.sdk import Context

REJECT = "Reject"


class PromotionApprovalOperator(HITLOperator):
    """Airflow's human-in-the-loop step for a promotion: the task waits for Approve or Reject.

    Asks nobody when the gate already rejected the challenger. Returns ``{"asked": bool,
    "chosen_options": [...], "responded_by_user": {"id", "name"}, "responded_at"}`` for
    MlflowPromoteOperator, which records the approver with the decision: ``responded_by_user`` is what
    Airflow's HITL records of the user who answered (``PATCH .../hitlDetails`` or the UI's Required
    Actions: the auth manager's ``get_id()`` and ``get_name()`` of the logged-in user; ``Anonymous``
    when Airflow runs without logins).

    :param gate: verdict of the upstream MlflowEvaluateOperator (templated).
    :param approvers: Airflow user ids who may answer (HITL ``assigned_users``: anyone else gets 403);
        empty: anyone allowed to act on the DAG.
    """

    template_fields = (*HITLOperator.template_fields, "gate")

    def __init__(self, *, gate: Any, approvers: list[str] | None = None, **kwargs: Any):
        approvers = list(approvers or [])
        if any(not isinstance(a, str) or not a.strip() for a in approvers):
            raise ValueError(f"approvers must be Airflow user ids (non-empty strings), got {approvers!r}")
        assigned = [{"id": a, "name": a} for a in approvers] or None
        super().__init__(subject="Promote the challenger?", options=[APPROVE, REJECT], assigned_users=assigned,
                         **kwargs)
        self.gate = gate

    def execute(self, context: Context) -> Any:
        gate = self.gate
        if not gate["promote"]:
            self.log.info("Gate rejected %s v%s: no approval needed (%s)", gate["model"], gate["version"],
                          gate["reason"])
            return {"asked": False, "chosen_options": [], "responded_by_user": None}
        self.subject = (f"Promote {gate['model']} v{gate['version']} to champion "
                        f"(now {gate['champion_evaluated'] or 'none'})?")
        self.body = self.describe(gate)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        result = super().execute_complete(context=context, event=event)
        return {"asked": True, "chosen_options": list(result["chosen_options"]),
                "responded_by_user": result.get("responded_by_user"),
                "responded_at": str(result.get("responded_at"))}

    @staticmethod
    def describe(gate: dict[str, Any]) -> str:
        cleaned = f" ({gate['holdout']['summary']})" if gate.get("holdout") else ""
        lines = [f"**Gate:** {gate['reason']}", "", f"Holdout rows: {gate['holdout_rows']}{cleaned}", "",
                 "| metric | challenger | champion |", "|---|---|---|"]
        for metric, value in gate["challenger_metrics"].items():
            old = (gate.get("champion_metrics") or {}).get(metric)
            lines.append(f"| {metric} | {value:.4g} | {'-' if old is None else f'{old:.4g}'} |")
        for i in gate.get("intervals", []):
            lines.append(f"\n{i['metric']} improvement {i['improvement']:.4g}, {i['confidence']:.0%} CI "
                         f"[{i['low']:.4g}, {i['high']:.4g}], required {i['required']:.4g}")
        return "\n".join(lines)
