"""Evaluate a challenger against the champion and move the registry aliases under a lock."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_pack.links import MlflowModelVersionLink
from mlops_pack.operators.base import (
    AbandonedVersion,
    ChampionMoved,
    PipelineOperator,
    RegistryOperator,
    refuse_abandoned,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_pack.hooks.mlflow_lock import RegistryLease
    from mlops_pack.promotion_service import PromotionService


APPROVE = "Approve"


class MlflowEvaluateOperator(RegistryOperator):
    """Judge ``challenger_version`` against the current champion with the spec's promotion policy.

    Returns the gate's verdict (promote, reason, metrics, bootstrap intervals, failed slices, the
    champion evaluated). Moves nothing: MlflowPromoteOperator applies it, after an approval if any.

    :param challenger_version: registered model version to judge (templated).
    """

    template_fields = (*PipelineOperator.template_fields, "challenger_version")
    ui_color = "#f3e8fd"
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(self, *, challenger_version: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.challenger_version = challenger_version

    def execute(self, context: Context) -> dict[str, Any]:
        champion = self.mlflow.alias_version(self.spec.name, "champion")
        result = self.evaluate(str(self.challenger_version), champion)
        self.log.info("Gate for %s v%s vs champion %s: %s", self.spec.name, self.challenger_version, champion,
                      result["reason"])
        return result


class MlflowPromoteOperator(RegistryOperator):
    """Decide and apply: ``champion`` moves to the challenger only if the gate (and the approver) say so.

    Under the registry lock it checks that the champion is still the one evaluated (compare and
    set); if not, it re-evaluates against the new champion (or fails, when a human approved the
    old comparison). Both models are judged on the challenger's holdout without the rows either
    trained on (core/holdout.py). Every decision is recorded: tags ``decision``, ``reason``,
    ``decided_by`` and ``gate_holdout_*`` (rows used, removed and why) on the version and one JSON
    record in ``<storage>/<pipeline>/promotions/``. On promotion the old
    champion becomes ``previous``. Returns the record; rejection is not a task failure.

    :param challenger_version: registered model version to judge (templated).
    :param gate: verdict of an upstream MlflowEvaluateOperator (templated; evaluated here if None).
    :param approval: result of the upstream approval task (templated), when the spec requires one.
    """

    template_fields = (*PipelineOperator.template_fields, "challenger_version", "gate", "approval")
    ui_color = "#f3e8fd"
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(self, *, challenger_version: str, gate: dict | None = None, approval: dict | None = None,
                 max_reevaluations: int = 2, **kwargs: Any):
        super().__init__(**kwargs)
        if max_reevaluations < 0:
            raise ValueError(f"max_reevaluations must be >= 0, got {max_reevaluations}")
        self.challenger_version, self.gate, self.approval = challenger_version, gate, approval
        self.max_reevaluations = max_reevaluations

    def execute(self, context: Context) -> dict[str, Any]:
        """Judge (unless given a gate), then decide and apply under the lock; one record per attempt, even
        when it fails: ``abandoned`` (champion kept moving, lock wait timed out) or ``error``."""
        from mlops_pack.core.promotion.lease import fault_point, new_token
        from mlops_pack.hooks.mlflow_lock import LockLost, LockTimeout

        name, version, attempt = self.spec.name, str(self.challenger_version), new_token()
        service = self.promotion(context)
        self._progress = {"champion": None, "recorded": False, "intent_open": False}
        try:
            fault_point("judge.before")
            self._progress["champion"] = self.mlflow.alias_version(name, "champion")
            verdict = self.gate or self.evaluate(version, self._progress["champion"])
            fault_point("judge.after")
            record = self._decide(service, attempt, verdict)
        except BaseException as exc:
            # A lost lease or an open intent means the next lock holder records this attempt.
            if not (self._progress["recorded"] or self._progress["intent_open"] or isinstance(exc, LockLost)):
                # An abandoned version keeps its tags: its record says why it was refused.
                service.record_failure(attempt, version, self._progress["champion"], exc,
                                       abandoned=isinstance(exc, ChampionMoved | LockTimeout),
                                       tag_version=not isinstance(exc, AbandonedVersion))
            raise
        # The card of the version judged, and of the champion it replaced (now ``previous``): after the lock.
        self.refresh_model_card(version)
        if record["promote"] and record["champion_before"]:
            self.refresh_model_card(record["champion_before"])
        return record

    def _decide(self, service: PromotionService, attempt: str, verdict: dict[str, Any]) -> dict[str, Any]:
        """Compare and set under the lock; judge again (outside it) while the champion keeps moving."""
        from mlops_pack.hooks.mlflow_lock import LockLost

        name, version = self.spec.name, str(self.challenger_version)
        for _ in range(self.max_reevaluations + 1):
            with service.lock(attempt, version, "promote") as lease:
                state = service.repaired_state(lease)
                current = self._progress["champion"] = state.champion
                if current == verdict["champion_evaluated"] or current == version:
                    return self._apply(service, lease, attempt, verdict, current, state.previous)
            if lease.lost:  # whoever broke our lock records this attempt: stop here
                raise LockLost(f"lost the promotion lock of {name} while holding it ({lease.lost}); the next "
                               "holder records this attempt")
            if self.approval:
                raise ChampionMoved(f"{name} champion moved from {verdict['champion_evaluated']} to {current} "
                                    f"after v{version} was judged and approved; re-run to judge it against {current}")
            self.log.warning("Champion of %s moved from %s to %s while judging v%s: judging again", name,
                             verdict["champion_evaluated"], current, version)
            verdict = self.evaluate(version, current)
        raise ChampionMoved(f"{name} champion kept moving while judging v{version}; gave up after "
                            f"{self.max_reevaluations} re-evaluations")

    def _apply(self, service: PromotionService, lease: RegistryLease, attempt: str, verdict: dict[str, Any],
               champion: str | None, previous: str | None) -> dict[str, Any]:
        from mlops_pack.core.promotion.decision import decision_record
        from mlops_pack.core.promotion.lease import fault_point
        from mlops_pack.core.promotion.repair import Intent, alias_moves

        name, version = self.spec.name, str(self.challenger_version)
        approved, approver = self._approver(verdict)
        fields = decision_record(verdict, version=version, champion=champion, approved=approved, approver=approver)
        if fields["promote"]:
            # Checked again under the lock: a retried train marks its predecessors' versions at any time.
            refuse_abandoned(name, version, self.mlflow.version_tags(name, version))
            # Intent first: a crash from here on leaves a state the next holder completes or undoes.
            self._progress["intent_open"] = True
            service.begin(lease, Intent("promote", version, champion, previous, lease.holder, lease.token, attempt),
                          alias_moves(champion, version))
        decision = service.decision(version, attempt, {**fields, "retrain_evidence": verdict.get("retrain_evidence"),
                                                       "search": verdict.get("search")})
        lease.fence("record the decision")  # a lost lease's attempt is recorded by whoever broke it
        self._progress["recorded"] = True  # from here a failure must not add a second record
        record = service.record(decision)
        fault_point("alias.recorded")
        if fields["promote"]:
            service.finish(lease)
        return record

    def _approver(self, verdict: dict[str, Any]) -> tuple[bool, str]:
        """(approved, by whom): the policy alone, or the human who answered the approval task."""
        from mlops_pack.core.access import decider

        if not self.approval or not self.approval.get("asked"):
            return True, "policy"
        return self.approval.get("chosen_options") == [APPROVE], decider(self.approval.get("responded_by_user"))
