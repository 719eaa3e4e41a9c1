"""The spec picks the source kind and the events; the factory builds the ingest task and schedule from them."""

from __future__ import annotations

import pytest
from mlops_pack.core.spec import SpecError, load_spec

from tests.sources.specs import table_spec

FILES = {"kind": "files", "url": "s3://upstream/exports", "pattern": "*.csv", "conn_id": "upstream_s3"}
SQL = {"kind": "sql", "conn_id": "listings_pg", "query": "SELECT * FROM listings", "watermark_column": "listed_on"}


def test_each_kind_builds_its_ingest_task_before_the_same_validation(tmp_path):
    from mlops_pack.dag_factory import build_dags

    tasks = {}
    for kind, source in (("files", FILES), ("sql", SQL)):
        dag = build_dags(table_spec(tmp_path, f"k_{kind}", source))[f"k_{kind}__ingest"]
        tasks[kind] = {t.task_id: (type(t).__name__, sorted(t.downstream_task_ids)) for t in dag.tasks}
    assert tasks["files"] == {"read_files": ("FileIngestOperator", ["validate"]), "validate": ("GXValidateOperator", [])}
    assert tasks["sql"] == {"query": ("SqlIngestOperator", ["validate"]), "validate": ("GXValidateOperator", [])}
    assert load_spec(table_spec(tmp_path, "k_files", FILES)).source.url == "s3://upstream/exports/"


def test_events_make_the_ingest_schedule_and_the_champion_watch(tmp_path):
    from airflow.sdk import AssetOrTimeSchedule
    from mlops_pack.dag_factory import build_dags

    spec = table_spec(tmp_path, "k_events", FILES, schedule={"ingest": "0 2 * * *"}, events={
        "queues": [{"scheme": "redis+pubsub", "queue": "inbox"}, {"scheme": "sqs", "queue": "https://q/1/x"}],
        "upstream_assets": [{"name": "team.export"}], "champion_poll_seconds": 30})
    dags = build_dags(spec)
    ingest = dags["k_events__ingest"]
    assert isinstance(ingest.timetable, AssetOrTimeSchedule)
    assets = {a.name: a for a in ingest.timetable.asset_condition.objects}
    assert set(assets) == {"k_events.inbox", "team.export"}
    # Airflow's MessageQueueTrigger hands the triggerer the provider's own trigger for each scheme.
    triggers = [w.trigger.serialize() for w in assets["k_events.inbox"].watchers]
    assert [type(w.trigger).__name__ for w in assets["k_events.inbox"].watchers] == ["MessageQueueTrigger"] * 2
    assert triggers[0] == ("airflow.providers.redis.triggers.redis_await_message.AwaitMessageTrigger",
                           {"channels": ["inbox"], "redis_conn_id": "redis_default", "poll_interval": 1.0})
    assert triggers[1][0] == "airflow.providers.amazon.aws.triggers.sqs.SqsSensorTrigger"
    assert {k: triggers[1][1][k] for k in ("sqs_queue", "aws_conn_id", "wait_time_seconds", "waiter_delay",
                                           "delete_message_on_reception")} == \
        {"sqs_queue": "https://q/1/x", "aws_conn_id": "aws_default", "wait_time_seconds": 1, "waiter_delay": 0,
         "delete_message_on_reception": True}
    alias = [w.trigger.serialize() for w in dags["k_events__champion_watch"].timetable.asset_condition.watchers]
    assert alias == [("mlops_pack.triggers.registry.ChampionAliasTrigger",
                      {"model": "k_events", "alias": "champion", "mlflow_conn_id": "mlflow_default",
                       "poll_interval": 30.0})]
    watch = dags["k_events__champion_watch"]
    assert [t.task_id for t in watch.tasks] == ["sync_champion"]
    assert [o.name for o in watch.tasks[0].outlets] == ["k_events.champion"]
    # Without events nothing changes: the cron alone, no watch DAG.
    plain = build_dags(table_spec(tmp_path, "k_plain", FILES, schedule={"ingest": "0 2 * * *"}))
    assert type(plain["k_plain__ingest"].timetable).__name__ == "CronTriggerTimetable"
    assert "k_plain__champion_watch" not in plain


@pytest.mark.parametrize(("source", "top", "message"), [
    ({"kind": "ftp"}, {}, "source: source.kind must be one of ['scrape', 'files', 'sql']"),
    ({**FILES, "url": "http://x/"}, {}, "source.url: 'http://x/' must be a file:// or s3:// folder URL"),
    ({**FILES, "pattern": "../*.csv"}, {}, "source.pattern: '../*.csv' must be a glob relative to source.url"),
    ({**FILES, "start_urls": ["http://x/"]}, {}, "source.start_urls: unknown key"),
    ({**SQL, "query": "DELETE FROM listings"}, {}, "source.query: source.query must be one SELECT"),
    ({**SQL, "query": "SELECT 1; DROP TABLE t"}, {}, "source.query: source.query must be one SELECT"),
    ({**SQL, "watermark_column": "nope"}, {}, "watermark_column 'nope' is not one of source.fields"),
    (FILES, {"schedule": {"wait_for_change": True}}, "schedule.wait_for_change watches web pages"),
    (FILES, {"events": {"queues": [{"scheme": "kafka", "queue": "x"}]}}, "events.queues.0.scheme"),
])
def test_bad_sources_and_events_are_named(tmp_path, source, top, message):
    with pytest.raises(SpecError) as caught:
        load_spec(table_spec(tmp_path, "k_bad", source, **top))
    assert message in str(caught.value)
