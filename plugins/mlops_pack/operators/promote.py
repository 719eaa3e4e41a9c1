"""Evaluate a challenger against the champion and move the registry aliases under a lock."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from mlops_pack.links import MlflowModelVersionLink
from mlops_pack.operators.base import MlflowOperator, PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


APPROVE = "Approve"


class ChampionMoved(AirflowFailException):
    """The champion changed after the decision was taken (and approved); judging must start again."""


class RegistryOperator(MlflowOperator):
    """An MLflow operator that judges versions and records decisions in the registry and storage."""

    def evaluate(self, version: str, champion: str | None) -> dict[str, Any]:
        """The gate's verdict on ``version`` vs ``champion`` on ``version``'s holdout."""
        import numpy as np

        from mlops_pack.core.promote import judge
        from mlops_pack.core.storage import read_partition

        name, model = self.spec.name, self.spec.model
        tags = self.mlflow.version_tags(name, version)
        if "holdout_uri" not in tags:
            raise ValueError(f"{name} version {version} has no holdout_uri tag: was it trained by this pack?")
        holdout = read_partition(self.storage.path(tags["holdout_uri"]).parent)
        x, y = holdout[model.features.all], holdout[model.target].to_numpy()
        challenger = self.mlflow.load_model(name, version).predict(x)
        previous = None
        if champion is not None and champion != version:
            previous = self.mlflow.load_model(name, champion).predict(x)
        result = judge(y, np.asarray(challenger), previous, self.spec.promotion,
                       slices=holdout[self.spec.promotion.slices] if self.spec.promotion.slices else None)
        return {**result.as_dict(), "model": name, "version": version, "champion_evaluated": champion}

    def record(self, context: Context, record: dict[str, Any]) -> None:
        """Tag the version and append the decision to ``promotions/`` (one object per decision)."""
        from mlops_pack.core.storage import write_json

        tags = {"decision": record["decision"], "reason": record["reason"][:4000],
                "decided_by": record["approved_by"], "evaluated_against": record["champion_before"] or "none"}
        self.mlflow.tag_version(self.spec.name, record["version"], tags)
        stamp = record["decided_at"].replace(":", "").replace("+", "Z")
        write_json(self.storage.area("promotions") / f"{stamp}_v{record['version']}.json", record)
        self.log.info("%s version %s %s: %s", self.spec.name, record["version"], record["decision"].upper(),
                      record["reason"])

    @staticmethod
    def base_record(context: Context, name: str, version: str) -> dict[str, Any]:
        return {"model": name, "version": str(version), "decided_at": dt.datetime.now(dt.UTC).isoformat(),
                "dag_id": context["dag"].dag_id, "run_id": context["run_id"]}


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
    old comparison). Every decision is recorded: tags ``decision``, ``reason``, ``decided_by`` on
    the version and one JSON record in ``<storage>/<pipeline>/promotions/``. On promotion the old
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
        self.challenger_version, self.gate, self.approval = challenger_version, gate, approval
        self.max_reevaluations = max_reevaluations

    def execute(self, context: Context) -> dict[str, Any]:
        name, version = self.spec.name, str(self.challenger_version)
        holder = f"{context['dag'].dag_id}/{context['run_id']}"
        verdict = self.gate or self.evaluate(version, self.mlflow.alias_version(name, "champion"))
        for _ in range(self.max_reevaluations + 1):
            with self.mlflow.promotion_lock(name, holder):
                current = self.mlflow.alias_version(name, "champion")
                if current == verdict["champion_evaluated"] or current == version:
                    return self._apply(context, verdict, current)
            if self.approval:
                raise ChampionMoved(f"{name} champion moved from {verdict['champion_evaluated']} to {current} "
                                    f"after v{version} was judged and approved; re-run to judge it against {current}")
            self.log.warning("Champion of %s moved from %s to %s while judging v%s: judging again", name,
                             verdict["champion_evaluated"], current, version)
            verdict = self.evaluate(version, current)
        raise ChampionMoved(f"{name} champion kept moving while judging v{version}; gave up after "
                            f"{self.max_reevaluations} re-evaluations")

    def _apply(self, context: Context, verdict: dict[str, Any], champion: str | None) -> dict[str, Any]:
        name, version = self.spec.name, str(self.challenger_version)
        approved, approver = self._approver(verdict)
        promote = bool(verdict["promote"]) and approved and champion != version
        reason = verdict["reason"]
        if verdict["promote"] and not approved:
            reason = f"rejected by {approver} in the approval step; gate said: {reason}"
        elif champion == version:
            reason = f"already champion; {reason}"
        if promote:
            if champion is not None:
                self.mlflow.set_alias(name, "previous", champion)
            self.mlflow.set_alias(name, "champion", version)
        record = {
            **self.base_record(context, name, version), "promote": promote,
            "decision": "promoted" if promote else "rejected", "reason": reason,
            "champion_before": champion, "champion_after": version if promote else champion,
            "approved_by": approver, "holdout_rows": verdict["holdout_rows"],
            "challenger_metrics": verdict["challenger_metrics"], "champion_metrics": verdict["champion_metrics"],
            "intervals": verdict["intervals"], "slices_failed": verdict["slices_failed"],
        }
        self.record(context, record)
        return record

    def _approver(self, verdict: dict[str, Any]) -> tuple[bool, str]:
        """(approved, by whom): the policy alone, or the human who answered the approval task."""
        if not self.approval or not self.approval.get("asked"):
            return True, "policy"
        user = self.approval.get("responded_by_user") or {}
        who = user.get("name") or user.get("id") or "unknown user"
        return self.approval.get("chosen_options") == [APPROVE], who
