"""ChampionSyncOperator: record a ``@champion`` moved by hand and announce it, so predictions are re-scored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from mlops_pack.operators.base import RegistryOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ChampionSyncOperator(RegistryOperator):
    """Under the promotion lock, compare the registry's ``@champion`` with the promotion log.

    When they differ (someone moved the alias in the MLflow UI or API), the move is recorded like a
    promotion (version tags and one record in ``promotions/``, ``approved_by`` naming the registry),
    the former champion becomes ``@previous`` (so a rollback can undo the move), and the champion
    asset event is emitted on the task's outlets: the score DAG re-scores with the new champion.
    When they agree (the pack made the move itself, or nothing changed) the task is skipped and
    emits nothing. Started by ``ChampionAliasTrigger`` through an AssetWatcher (triggers/registry.py).
    """

    ui_color = "#fdf6e8"

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.attempts import promotion_refusal
        from mlops_pack.core.promotion.events import hand_move, recorded_champion
        from mlops_pack.core.promotion.lease import new_token

        name, attempt, service = self.spec.name, new_token(), self.promotion(context)
        with service.lock(attempt, "", "sync") as lease:
            state = service.repaired_state(lease)
            recorded = recorded_champion(service.log_records())
            move = hand_move(recorded, state.champion)
            if move is None:
                raise AirflowSkipException(f"{name}@champion is {state.champion}, as the promotion log says: "
                                           "nothing moved outside the pack")
            champion = str(state.champion) if state.champion else None
            abandoned = champion and promotion_refusal(name, champion, self.mlflow.version_tags(name, champion))
            if abandoned:  # a person's move is recorded as made, never undone by the pack; the record says it
                self.log.warning("%s@champion was moved by hand to an abandoned attempt's version: %s", name, abandoned)
                move = {**move, "reason": f"{move['reason']}; WARNING: {abandoned}"}
            if recorded is not None and state.previous != recorded:
                lease.move_aliases([("previous", recorded)])
            record = service.record(service.decision(str(state.champion), attempt, move))
        extra = {k: record[k] for k in ("model", "version", "champion_before", "reason")}
        self.emit(context, extra)
        return record
