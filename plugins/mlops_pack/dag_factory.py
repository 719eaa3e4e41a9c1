"""Turn one pipeline spec into its DAGs: ``<name>__ingest``, ``__train``, ``__score``, ``__monitor``
and ``__rollback`` (plus ``__champion_watch`` when the spec's ``events.champion_poll_seconds`` is set,
and ``__labels`` and ``__outcomes`` when it has a ``labels`` section).
The ingest task follows ``source.kind``; the spec's ``events`` add queue watchers and upstream assets
to the ingest schedule (docs/ingestion.md).

Runs at every DAG parse, so it imports only Airflow's SDK and the pack's light modules; operators
import their heavy libraries inside execute(). A bad spec raises SpecError, which Airflow shows as
the import error of that spec's DAG file, naming the YAML file and the field.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, CronTriggerTimetable, Param

from mlops_pack import settings
from mlops_pack.assets import PipelineAssets, asset_uri
from mlops_pack.core.spec import load_spec
from mlops_pack.notifications import PipelineAlertNotifier, deadline_missed
from mlops_pack.operators.asset_gates import PublishChampionOperator, SignalDriftOperator
from mlops_pack.operators.drift import EvidentlyDriftOperator
from mlops_pack.operators.partition_select import PartitionsToScoreOperator, PredictionsToCheckOperator
from mlops_pack.operators.promote import MlflowEvaluateOperator, MlflowPromoteOperator
from mlops_pack.operators.rollback import MlflowRollbackOperator
from mlops_pack.operators.score import BatchScoreOperator
from mlops_pack.operators.scrape import WebScrapeOperator
from mlops_pack.operators.train import MlflowTrainOperator
from mlops_pack.operators.validate import GXValidateOperator

if TYPE_CHECKING:
    from mlops_pack.core.spec import PipelineSpec

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def spec_file(name: str) -> Path:
    return settings.pipelines_dir() / f"{name}.yaml"


def build_dags(path: str | Path, spec: PipelineSpec | None = None) -> dict[str, DAG]:
    """All DAGs of the spec at ``path``, keyed by dag_id. ``spec``: that file's spec, already loaded (by
    ``mlops-pack check``, which reads each file once), else it is loaded here."""
    spec = spec if spec is not None else load_spec(path, settings.allowed_model_modules())
    assets = PipelineAssets.of(spec.name)
    common = {"spec_path": str(Path(path).resolve())}
    dags = [_ingest(spec, assets, common), _train(spec, assets, common), _score(spec, assets, common),
            _monitor(spec, assets, common), _rollback(spec, assets, common)]
    if spec.events.champion_poll_seconds:
        dags.append(_champion_watch(spec, assets, common))
    if spec.labels is not None:
        dags += [_labels(spec, assets, common), _outcomes(spec, assets, common)]
    return {d.dag_id: d for d in dags}


def _dag(spec: PipelineSpec, stage: str, schedule: Any, doc: str, **kwargs: Any) -> DAG:
    # execution_timeout: no loop task may hang forever (a trickling site, a stuck service). Airflow also
    # cuts a deferred task's wait at execution_timeout, so the tasks that wait on purpose (the change
    # sensor, the approval gate) get their wait on top, each on its own task.
    timeout = dt.timedelta(minutes=settings.task_timeout_minutes())
    default_args: dict[str, Any] = {"owner": spec.owner, "retries": 1, "retry_delay": dt.timedelta(seconds=20),
                                    "execution_timeout": timeout}
    if spec.alerts.enabled and "task_failed" in spec.alerts.events:
        # Every loop task tells the spec's alert channels when it fails for good (after its retries).
        default_args["on_failure_callback"] = [PipelineAlertNotifier(spec_path=spec.spec_path)]
    if spec.schedule.deadline is not None and stage in spec.schedule.deadline.dags:
        kwargs["deadline"] = _deadline(spec, f"{spec.name}__{stage}")
    return DAG(
        dag_id=f"{spec.name}__{stage}", schedule=schedule, start_date=START, catchup=False,
        tags=["mlops", spec.name, stage], doc_md=f"**{spec.name}** {stage}: {doc}\n\n{spec.description}",
        description=f"{spec.name} {stage}: {doc.splitlines()[0]}"[:300],  # the DAG list's one line
        default_args=default_args, **kwargs,
    )


def _deadline(spec: PipelineSpec, dag_id: str) -> Any:
    """The DeadlineAlert of spec ``schedule.deadline`` on ``dag_id``: the scheduler finds a run unfinished
    at the deadline and has the executor call notifications.deadline_missed, which tells the spec's alerts."""
    from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback

    deadline = spec.schedule.deadline
    reference = {"queued_at": DeadlineReference.DAGRUN_QUEUED_AT,
                 "logical_date": DeadlineReference.DAGRUN_LOGICAL_DATE}[deadline.reference]
    return DeadlineAlert(reference=reference, interval=dt.timedelta(seconds=deadline.seconds),
                         name=f"{dag_id} within {deadline.after}",
                         callback=SyncCallback(deadline_missed, kwargs={
                             "spec_path": spec.spec_path, "dag_id": dag_id, "after": deadline.after,
                             "reference": deadline.reference}))


def _ingest(spec: PipelineSpec, assets: PipelineAssets, common: dict) -> DAG:
    schedule = CronTriggerTimetable(spec.schedule.ingest, timezone="UTC") if spec.schedule.ingest else None
    params = {"partition": Param(None, type=["null", "string"],
                                 description="Data key of this run (e.g. 2026-11-02) when it has no logical date "
                                 "and the spec has no partition.column; see docs/storage.md")}
    schedule = _with_events(spec, schedule)
    with _dag(spec, "ingest", schedule, f"read the {spec.source.kind} source, validate, publish the validated "
              "partitions.", params=params, max_active_runs=1) as dag:
        scrape = _ingest_task(spec, common)
        GXValidateOperator(task_id="validate", raw_partitions=scrape.output["partitions"],
                           outlets=[assets.validated], **common)
        if spec.schedule.wait_for_change:
            from mlops_pack.sensors.source_change import SourceChangeSensor  # only specs that ask pay for it

            wait = dt.timedelta(days=1)
            SourceChangeSensor(task_id="wait_for_change", poke_interval=spec.schedule.change_poll_seconds,
                               timeout=wait.total_seconds(), execution_timeout=dag.default_args["execution_timeout"]
                               + wait, **common) >> scrape
    return dag


def _ingest_task(spec: PipelineSpec, common: dict) -> Any:
    """The task that reads the spec's source into raw partitions: the operator follows ``source.kind``."""
    if spec.source.kind == "files":
        from mlops_pack.operators.table_source import FileIngestOperator

        return FileIngestOperator(task_id="read_files", **common)
    if spec.source.kind == "sql":
        from mlops_pack.operators.table_source import SqlIngestOperator

        return SqlIngestOperator(task_id="query", **common)
    return WebScrapeOperator(task_id="scrape", **common)


def inbox_asset(spec: PipelineSpec) -> Any:
    """``<name>.inbox``: the asset whose events start ingest, watched on the spec's queues (docs/ingestion.md)."""
    from airflow.sdk import Asset, AssetWatcher

    watchers = [AssetWatcher(name=f"{spec.name}_queue_{i}", trigger=queue_trigger(q))
                for i, q in enumerate(spec.events.queues)]
    return Asset(name=f"{spec.name}.inbox", uri=asset_uri(spec.name, "inbox"), group="mlops", watchers=watchers)


def label_inbox_asset(spec: PipelineSpec) -> Any:
    """``<name>.label_inbox``: the asset whose events (REST, or the messages of ``labels.queues``) deliver labels."""
    from airflow.sdk import Asset, AssetWatcher

    watchers = [AssetWatcher(name=f"{spec.name}_labels_queue_{i}", trigger=queue_trigger(q))
                for i, q in enumerate(spec.labels.queues)]
    return Asset(name=f"{spec.name}.label_inbox", uri=asset_uri(spec.name, "label_inbox"), group="mlops",
                 watchers=watchers)


def queue_trigger(queue: Any) -> Any:
    """Airflow's ``MessageQueueTrigger`` for one ``events.queues`` entry: it hands the scheme's provider
    trigger (redis ``AwaitMessageTrigger``, amazon ``SqsSensorTrigger``) to the triggerer; core/inbox.py
    reads their messages off the asset events."""
    import math

    # Imported only for specs with queues: it loads the installed providers' queue classes.
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    if queue.scheme == "redis+pubsub":
        return MessageQueueTrigger(scheme="redis+pubsub", channels=[queue.queue],
                                   redis_conn_id=queue.conn_id or "redis_default", poll_interval=queue.poll_seconds)
    # SQS long polling waits up to poll_seconds (whole seconds, 1..20) for a message, then asks again at once.
    return MessageQueueTrigger(scheme="sqs", sqs_queue=queue.queue, aws_conn_id=queue.conn_id or "aws_default",
                               max_messages=10, wait_time_seconds=min(20, max(1, math.ceil(queue.poll_seconds))),
                               waiter_delay=0)


def _with_events(spec: PipelineSpec, timetable: Any) -> Any:
    """The ingest schedule: the cron, or-ed with the inbox asset (queues, REST events) and upstream assets."""
    from airflow.sdk import Asset, AssetAny, AssetOrTimeSchedule

    events = spec.events
    triggers = [inbox_asset(spec)] if events.queues or events.inbox else []
    triggers += [Asset(name=u.name, uri=u.uri or u.name) for u in events.upstream_assets]
    if not triggers:
        return timetable
    condition = AssetAny(*triggers) if len(triggers) > 1 else triggers[0]
    return AssetOrTimeSchedule(timetable=timetable, assets=condition) if timetable is not None else condition


def _champion_watch(spec: PipelineSpec, assets: PipelineAssets, common: dict) -> DAG:
    """``<name>__champion_watch``: a hand move of ``@champion`` is recorded and re-scores (docs/ingestion.md)."""
    from airflow.sdk import Asset, AssetWatcher

    from mlops_pack.operators.champion_sync import ChampionSyncOperator
    from mlops_pack.triggers.registry import ChampionAliasTrigger

    registry = Asset(name=f"{spec.name}.registry", uri=asset_uri(spec.name, "registry"), group="mlops",
                     watchers=[AssetWatcher(name=f"{spec.name}_champion_alias", trigger=ChampionAliasTrigger(
                         model=spec.name, poll_interval=spec.events.champion_poll_seconds))])
    pool = {"pool": spec.promotion.pool} if spec.promotion.pool else {}
    with _dag(spec, "champion_watch", registry, "record a @champion moved outside the pack, re-score with it.",
              max_active_runs=1) as dag:
        ChampionSyncOperator(task_id="sync_champion", outlets=[assets.champion], **pool, **common)
    return dag


def _train_schedule(spec: PipelineSpec, assets: PipelineAssets) -> Any:
    """The train DAG's schedule from ``retrain``: validated data (always: it trains the first model; once a
    champion exists the train task applies retrain.triggers), drift events if ``drift`` is on, and the cron if
    ``schedule`` is on, decay (performance) events if ``performance`` is on."""
    condition = assets.validated
    for trigger, asset in (("drift", assets.drift), ("performance", assets.performance)):
        if trigger in spec.retrain.triggers:
            condition = condition | asset
    if "schedule" in spec.retrain.triggers and spec.retrain.cron:
        from airflow.sdk import AssetOrTimeSchedule

        return AssetOrTimeSchedule(timetable=CronTriggerTimetable(spec.retrain.cron, timezone="UTC"),
                                   assets=condition)
    return condition


def _train(spec: PipelineSpec, assets: PipelineAssets, common: dict) -> DAG:
    params = {"window_partitions": Param(spec.model.window_partitions, type="integer", minimum=1,
                                         description="How many of the latest validated partitions to train on")}
    policy = spec.promotion
    if policy.production_evidence is not None:
        params["judge_challenger"] = Param(False, type="boolean", description="Train nothing: judge the current "
                                           "@challenger again, on the production evidence its shadow scoring "
                                           "gathered since")
    registry = {"pool": policy.pool} if policy.pool else {}
    with _dag(spec, "train", _train_schedule(spec, assets),
              "train a challenger, judge it against the champion, promote it if it wins.",
              params=params, max_active_runs=1) as dag:
        train = _train_task(spec, common)
        version = "{{ ti.xcom_pull(task_ids='train')['version'] }}"
        if policy.require_approval:
            from mlops_pack.operators.approval import (
                PromotionApprovalOperator,  # only specs that ask pay for it
            )

            evaluate = MlflowEvaluateOperator(task_id="evaluate", challenger_version=version, **common)
            wait = dt.timedelta(hours=policy.approval_timeout_hours)
            approve = PromotionApprovalOperator(task_id="approve", gate=evaluate.output, response_timeout=wait,
                                                approvers=policy.approvers,
                                                execution_timeout=dag.default_args["execution_timeout"] + wait)
            promote = MlflowPromoteOperator(task_id="promote", challenger_version=version, gate=evaluate.output,
                                            approval=approve.output, **registry, **common)
            train >> evaluate >> approve >> promote
        else:
            promote = MlflowPromoteOperator(task_id="promote", challenger_version=version, **registry, **common)
            train >> promote
        promote >> PublishChampionOperator(task_id="publish_champion", decision=promote.output, asset=assets.champion,
                                           **common)
    return dag


def _train_task(spec: PipelineSpec, common: dict) -> Any:
    """The task registering the challenger: ``train``, or with ``model.search`` the plan, its trials (mapped,
    ``search.parallelism`` at once) and ``train`` refitting the best, all on the training queue."""
    window, queue = "{{ params.window_partitions }}", settings.training_queue()
    if spec.model.search is None:
        return MlflowTrainOperator(task_id="train", window_partitions=window, queue=queue, **common)
    from mlops_pack.operators.search import SearchPlanOperator, SearchTrialOperator, trial_timeout

    plan = SearchPlanOperator(task_id="plan_search", window_partitions=window, queue=queue, **common)
    trials = SearchTrialOperator.partial(
        task_id="trial", plan=plan.output["plan"], queue=queue, max_active_tis_per_dag=spec.model.search.parallelism,
        execution_timeout=trial_timeout(spec), **common).expand(trial=plan.output)
    train = MlflowTrainOperator(task_id="train", search_plan=plan.output["plan"], trials=trials.output, queue=queue,
                                **common)
    plan >> trials >> train
    return train


def _rollback(spec: PipelineSpec, assets: PipelineAssets, common: dict) -> DAG:
    params = {"target_version": Param(None, type=["null", "string"],
                                      description="Version to restore; empty means the previous champion"),
              "reason": Param("manual rollback", type="string", description="Recorded with the decision")}
    registry = {"pool": spec.promotion.pool} if spec.promotion.pool else {}
    with _dag(spec, "rollback", None, "move the champion back to the previous (or a named) version.",
              params=params, max_active_runs=1) as dag:
        MlflowRollbackOperator(task_id="rollback", target_version="{{ params.target_version or '' }}",
                               reason="{{ params.reason }}", outlets=[assets.champion], **registry, **common)
    return dag


def _score(spec: PipelineSpec, assets: PipelineAssets, common: dict) -> DAG:
    params = {"partitions": Param([], type="array", description="Validated partition keys to score; empty means "
                                  "the ones in the triggering events, else the newest and any never scored")}
    with _dag(spec, "score", assets.validated | assets.champion,
              "score new validated partitions, or re-score with a new champion.", params=params) as dag:
        targets = PartitionsToScoreOperator(task_id="partitions_to_score", asset=assets.validated, **common)
        # Bounded: each score task predicts on all of its worker's CPUs and holds a few chunks in memory,
        # so many partitions (a new champion re-scores them all) must not all run at once.
        BatchScoreOperator.partial(task_id="score", outlets=[assets.predictions],
                                   max_active_tis_per_dag=spec.scoring.max_parallel, **common).expand(
            partition=targets.output)
    return dag


def _monitor(spec: PipelineSpec, assets: PipelineAssets, common: dict) -> DAG:
    params = {"prediction_partitions": Param([], type="array", description="Prediction partition keys to check; "
                                             "empty means the ones in the triggering events, else the newest")}
    with _dag(spec, "monitor", assets.predictions,
              "Evidently drift of new predictions vs the champion's training data; signal drift.",
              params=params) as dag:
        current = PredictionsToCheckOperator(task_id="current_predictions", asset=assets.predictions, **common)
        # One report per prediction partition (mapped): how the scheduler batched the predictions events
        # into runs must not change which reports exist (docs/storage.md).
        report = EvidentlyDriftOperator.partial(task_id="drift_report", **common).expand(
            prediction_partitions=current.output)
        SignalDriftOperator(task_id="signal_drift", summary=report.output, asset=assets.drift, **common)
    return dag


def _labels(spec: PipelineSpec, assets: PipelineAssets, common: dict) -> DAG:
    """``<name>__labels``: the truth that arrives after scoring, as label partitions (docs/monitoring.md).
    Later partitions: on validated data. Files: on ``labels.cron`` (and manual or REST runs)."""
    from mlops_pack.operators.labels import LabelsOperator

    labels = spec.labels
    if labels.kind in ("files", "sql"):
        schedule = CronTriggerTimetable(labels.cron, timezone="UTC") if labels.cron else None
        doc = (f"read new label files under {labels.url}{labels.pattern} into label partitions."
               if labels.kind == "files" else
               f"read new labels from a query on {labels.conn_id} into the label partitions "
               f"{labels.partition_column} names.")
    elif labels.kind == "events":
        schedule = label_inbox_asset(spec)
        doc = (f"write the labels delivered by events of {spec.name}.label_inbox (REST or queue messages) into "
               "the label partitions they name.")
    else:
        schedule = assets.validated
        doc = "take the target of validated partitions as the labels of the keys scored before."
    params = {"partitions": Param([], type="array", description="Validated partition keys to take labels from "
                                  "(later_partitions); empty means the triggering events', else every new one")}
    with _dag(spec, "labels", schedule, doc, params=params, max_active_runs=1) as dag:
        LabelsOperator(task_id="labels", asset=assets.labels, validated_asset=assets.validated, **common)
    return dag


def _outcomes(spec: PipelineSpec, assets: PipelineAssets, common: dict) -> DAG:
    """``<name>__outcomes``: realized performance of the predictions on the labels, and the decay signal."""
    from mlops_pack.operators.outcomes import RealizedPerformanceOperator, SignalDecayOperator

    params = {"prediction_partitions": Param([], type="array", description="Prediction partition keys to judge; "
                                             "empty means every one whose predictions or labels changed")}
    with _dag(spec, "outcomes", assets.labels | assets.predictions,
              "join predictions with the labels that arrived, keep realized metrics, signal decay.",
              params=params, max_active_runs=1) as dag:
        verdict = RealizedPerformanceOperator(task_id="realized_performance", **common)
        SignalDecayOperator(task_id="signal_decay", verdict=verdict.output, asset=assets.performance, **common)
    return dag
