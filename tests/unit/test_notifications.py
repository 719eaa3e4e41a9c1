"""Alerts reach a real local SMTP server (aiosmtpd) and a real local webhook receiver."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from tests.support.env import HOME
from tests.support.ports import free_port
from tests.support.specs import write_spec
from tests.support.webhook import webhook_receiver


class Inbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self):
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        from email import message_from_bytes

        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture(scope="module")
def smtp():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    os.environ["AIRFLOW_CONN_TEST_SMTP"] = json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": controller.port, "extra": {"from": "loop@example.test"}})
    yield inbox
    controller.stop()


@pytest.fixture(scope="module")
def webhook():
    with webhook_receiver("test_webhook") as received:
        yield received


def alerts(**overrides):
    from mlops_pack.core.spec import AlertsSpec

    return AlertsSpec(**{"smtp_conn_id": "test_smtp", "recipients": ["ops@example.test", "ml@example.test"],
                         "webhook_conn_id": "test_webhook", **overrides})


def test_an_alert_is_delivered_by_email_and_webhook(smtp, webhook):
    from mlops_pack.notifications import send_alert

    outcome = send_alert(alerts(), "drift", "[shop] drift: share 0.60", "Drifted columns: city", {"share": 0.6})
    assert outcome == {"email": "sent", "webhook": "sent"}
    rcpt, message = smtp.messages[-1]
    assert rcpt == ["ops@example.test", "ml@example.test"]
    assert message["Subject"] == "[shop] drift: share 0.60" and message["From"] == "loop@example.test"
    assert "Drifted columns: city" in message.get_payload(decode=True).decode()
    path, auth, payload = webhook[-1]
    assert path == "/services/T0/B0/xyz" and auth == "Bearer hook-token"
    assert payload["text"] == "*[shop] drift: share 0.60*\nDrifted columns: city"  # Slack's shape
    assert payload["event"] == {"event": "drift", "share": 0.6}


HOSTILE_REASON = ("slice regression beyond 5%: city=<!channel> <http://evil.example/login|Approve champion v3 here> "
                  "rmse 9 vs 3 &amp; \u202etxt.exe")


def test_scraped_values_in_an_alert_are_text_on_every_channel(smtp, webhook):
    # issue 25, case 2: this reason reached the webhook verbatim, a channel-wide ping and a disguised link
    from mlops_pack.notifications import send_alert

    outcome = send_alert(alerts(), "rejected", "[shop] v3 rejected\nBcc: everyone@example.test",
                         f"Reason: {HOSTILE_REASON}", {"reason": HOSTILE_REASON})
    assert outcome == {"email": "sent", "webhook": "sent"}
    text = webhook[-1][2]["text"]
    assert "<" not in text and ">" not in text and "\u202e" not in text
    assert ("city=&lt;!channel&gt; &lt;http://evil.example/login|Approve champion v3 here&gt; rmse 9 vs 3 "
            "&amp;amp; txt.exe") in text
    assert webhook[-1][2]["event"]["reason"] == HOSTILE_REASON  # the structured field keeps the value as data
    _, message = smtp.messages[-1]
    assert message["Subject"] == "[shop] v3 rejected Bcc: everyone@example.test" and message["Bcc"] is None
    body = message.get_payload(decode=True).decode()
    assert message.get_content_type() == "text/plain" and "city=<!channel>" in body and "\u202e" not in body


def test_events_not_chosen_and_dead_channels_never_fail(smtp, webhook):
    from mlops_pack.notifications import send_alert

    before = (len(smtp.messages), len(webhook))
    assert send_alert(alerts(events=["drift"]), "promoted", "s", "b") == {}
    assert (len(smtp.messages), len(webhook)) == before
    os.environ["AIRFLOW_CONN_DEAD_HOOK"] = json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{free_port()}/x"})
    outcome = send_alert(alerts(smtp_conn_id=None, recipients=[], webhook_conn_id="dead_hook"), "drift", "s", "b")
    assert outcome["webhook"].startswith("URLError")


def test_smtp_without_recipients_is_a_spec_error():
    with pytest.raises(ValueError, match="recipients"):
        alerts(recipients=[])


def _spec_with_alerts(tmp_path) -> str:
    from tests.support.specs import write_spec

    path = write_spec(tmp_path, "http://127.0.0.1:9", name="alerted")
    path.write_text(path.read_text() + "\nalerts:\n  smtp_conn_id: test_smtp\n  recipients: [ops@example.test]\n"
                    "  webhook_conn_id: test_webhook\n")
    return str(path)


def test_every_loop_task_gets_the_failure_notifier(tmp_path):
    from mlops_pack.dag_factory import build_dags
    from mlops_pack.notifications import PipelineAlertNotifier

    dags = build_dags(_spec_with_alerts(tmp_path))
    for dag in dags.values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            assert any(isinstance(c, PipelineAlertNotifier) for c in callbacks), (dag.dag_id, task.task_id)
    silent = build_dags(write_spec(tmp_path / "q", "http://127.0.0.1:9"))
    assert not any(t.on_failure_callback for d in silent.values() for t in d.tasks)


PROBE_DAG = """# airflow dag file
import datetime as dt
from airflow.sdk import DAG, task
from mlops_pack.notifications import PipelineAlertNotifier

with DAG("alerted__probe", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
         default_args={{"retries": 0, "on_failure_callback": [PipelineAlertNotifier(spec_path={spec!r})]}}) as dag:

    @task
    def boom():
        raise RuntimeError("scraper exploded")

    boom()
"""


def test_a_failed_task_notifies_through_airflow(airflow_db, smtp, webhook, tmp_path):
    """A real DAG run (dag.test) whose task fails calls the notifier: both channels receive it."""
    import runpy

    from tests.support.env import DAGS

    path = DAGS / "alerted_probe.py"
    path.write_text(PROBE_DAG.format(spec=_spec_with_alerts(tmp_path)))
    try:
        dag = runpy.run_path(str(path))["dag"]
        mails, hooks = len(smtp.messages), len(webhook)
        run = dag.test()
    finally:
        path.unlink()
    assert run.state == "failed"
    assert len(smtp.messages) == mails + 1 and len(webhook) == hooks + 1
    message = smtp.messages[-1][1]
    assert message["Subject"] == "[alerted] task alerted__probe.boom failed"
    assert "RuntimeError: scraper exploded" in message.get_payload(decode=True).decode()
    assert webhook[-1][2]["event"]["task_id"] == "boom"


def test_validation_failure_skips_the_generic_failure_alert(smtp, tmp_path):
    from mlops_pack.notifications import PipelineAlertNotifier
    from mlops_pack.operators.validate import GXValidationFailed

    before = len(smtp.messages)
    PipelineAlertNotifier(spec_path=_spec_with_alerts(tmp_path)).notify(
        {"exception": GXValidationFailed("bad day"), "ti": SimpleNamespace(dag_id="d", task_id="validate")})
    assert len(smtp.messages) == before
    assert HOME.exists()


GATES_DAG = """# airflow dag file
import datetime as dt
from airflow.sdk import DAG
from mlops_pack.assets import PipelineAssets
from mlops_pack.operators.asset_gates import PublishChampionOperator, SignalDriftOperator

assets = PipelineAssets.of("alerted")
decision = {{"promote": False, "model": "alerted", "version": "7", "champion_before": "6",
            "reason": "not better: rmse +0.2% < 1%"}}
summary = {{"drift": True, "share": 0.6, "threshold": 0.5, "drifted_columns": ["city", "rooms"],
           "model_version": "6", "report_uri": {report!r}, "partition": "2026-11-03__v6"}}
with DAG("alerted__gates", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
         default_args={{"retries": 0}}) as dag:
    PublishChampionOperator(task_id="publish_champion", decision=decision, asset=assets.champion,
                            spec_path={spec!r})
    SignalDriftOperator(task_id="signal_drift", summary=summary, asset=assets.drift, spec_path={spec!r})
"""


def test_the_gates_alert_on_rejection_and_drift(airflow_db, smtp, webhook, tmp_path):
    """The real gate operators in a real DAG run: a rejection and a drift each reach both channels."""
    import runpy

    from mlops_pack import settings

    from tests.support.env import DAGS

    report = f"{settings.storage_root()}/alerted/reports/drift/2026-11-03__v6/report.html"
    path = DAGS / "alerted_gates.py"
    path.write_text(GATES_DAG.format(spec=_spec_with_alerts(tmp_path), report=report))
    try:
        dag = runpy.run_path(str(path))["dag"]
        mails = len(smtp.messages)
        run = dag.test()
    finally:
        path.unlink()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"publish_champion": "skipped", "signal_drift": "success"}
    subjects = sorted(m["Subject"] for _, m in smtp.messages[mails:])
    assert subjects == ["[alerted] drift: share 0.60 on 2026-11-03__v6", "[alerted] model version 7 rejected"]
    events = {hook[2]["event"]["event"]: hook[2]["event"] for hook in webhook[-2:]}
    assert events["rejected"]["reason"] == "not better: rmse +0.2% < 1%"
    assert events["drift"]["drifted_columns"] == ["city", "rooms"] and events["drift"]["retrain"] is True
    assert events["drift"]["report"].endswith("/mlops/files/alerted/reports/drift/2026-11-03__v6/report.html")


VALIDATE_DAG = """# airflow dag file
import datetime as dt
from airflow.sdk import DAG
from mlops_pack.operators.validate import GXValidateOperator

with DAG("alerted__ingest_probe", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
         default_args={{"retries": 0}}) as dag:
    GXValidateOperator(task_id="validate", raw_partitions="2026-11-09", spec_path={spec!r})
"""


def test_a_failed_validation_alerts_with_its_links(airflow_db, smtp, webhook, tmp_path):
    import runpy

    import pandas as pd
    from mlops_pack.core.storage import write_partition
    from mlops_pack.hooks.storage import PipelineStorageHook

    from tests.support.env import DAGS

    raw = PipelineStorageHook("alerted").partition("raw", "2026-11-09")
    write_partition(raw, pd.DataFrame({"unrelated": [1, 2]}), key="2026-11-09")  # every expected column missing
    path = DAGS / "alerted_validate.py"
    path.write_text(VALIDATE_DAG.format(spec=_spec_with_alerts(tmp_path)))
    try:
        dag = runpy.run_path(str(path))["dag"]
        mails = len(smtp.messages)
        run = dag.test()
    finally:
        path.unlink()
    assert run.state == "failed"
    [(_, message)] = smtp.messages[mails:]  # the validation alert only, not a second task_failed one
    assert message["Subject"] == "[alerted] validation failed: 2026-11-09 quarantined"
    assert "/mlops/files/alerted/quarantine/2026-11-09/validation.json" in message.get_payload(decode=True).decode()
    assert webhook[-1][2]["event"]["event"] == "validation_failed"


def test_schedule_deadline_becomes_a_deadline_alert_on_the_dags_it_names(tmp_path):
    """The DAGs named in schedule.deadline get Airflow's DeadlineAlert calling the pack's notifier with the
    spec; the others get none. (tests/e2e/test_retrain_loop.py has a real scheduler fire one.)"""
    from airflow.sdk import DeadlineReference, SyncCallback
    from mlops_pack.dag_factory import build_dags

    path = _spec_with_alerts(tmp_path)
    text = open(path).read().replace('ingest: "0 2 * * *"', 'ingest: "0 2 * * *"\n  deadline: {dags: [ingest, '
                                     'train], after: 2h, reference: logical_date}')
    open(path, "w").write(text)
    dags = build_dags(path)
    (ingest,), (train,) = dags["alerted__ingest"].deadline, dags["alerted__train"].deadline
    assert dags["alerted__score"].deadline is None and dags["alerted__monitor"].deadline is None
    assert train.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert train.interval.total_seconds() == 7200 and isinstance(train.callback, SyncCallback)
    assert train.callback.path == "mlops_pack.notifications.deadline_missed"
    assert train.callback.kwargs == {"spec_path": path, "dag_id": "alerted__train", "after": "2h",
                                     "reference": "logical_date"}
    assert ingest.callback.kwargs["dag_id"] == "alerted__ingest"


@pytest.mark.parametrize(("deadline", "error"), [
    ("{dags: [train], after: 2 hours}", "schedule.deadline.after: '2 hours' is not a duration"),
    ("{dags: [train], after: 0s}", "is not a duration"),
    ("{dags: [], after: 2h}", "at least 1 item"),
    ("{dags: [train, train], after: 2h}", "lists a DAG twice"),
    ("{dags: [trian], after: 2h}", "schedule.deadline.dags.0: Input should be 'ingest'"),
    ("{dags: [outcomes], after: 2h}", "has no ['outcomes'] DAG"),
])
def test_a_bad_deadline_is_a_spec_error_naming_it(tmp_path, deadline, error):
    from mlops_pack.core.spec import SpecError, load_spec

    path = _spec_with_alerts(tmp_path)
    text = open(path).read().replace('ingest: "0 2 * * *"', f'ingest: null\n  deadline: {deadline}')
    open(path, "w").write(text)
    with pytest.raises(SpecError, match=error.replace("[", r"\[").replace("]", r"\]")):
        load_spec(path)


def test_a_deadline_needs_an_alert_channel_that_takes_it(tmp_path):
    from mlops_pack.core.spec import SpecError, load_spec

    path = write_spec(tmp_path, "http://127.0.0.1:9", name="late",
                      **{'ingest: "0 2 * * *"': "ingest: null\n  deadline: {dags: [train], after: 2h}"})
    with pytest.raises(SpecError, match="schedule.deadline tells the spec's alerts"):
        load_spec(path)


def test_durations(tmp_path):
    from mlops_pack.core.spec.policies import duration_seconds

    assert [duration_seconds(t) for t in ("90s", "30m", "2h", "1.5d", " 5 s")] == [90, 1800, 7200, 129600, 5]
    for bad in ("2", "h", "-1h", "2w", "1h30m"):
        with pytest.raises(ValueError, match="is not a duration"):
            duration_seconds(bad)


def test_a_missed_deadline_reaches_the_alert_channels(webhook, tmp_path):
    """The callback as Airflow's executor calls it (kwargs of the DeadlineAlert plus the deadline context)."""
    from mlops_pack.notifications import deadline_missed

    context = {"dag_run": {"dag_run_id": "manual__x", "state": "running"},
               "deadline": {"id": "d1", "deadline_time": "2026-12-03T12:00:00+00:00"}}
    outcome = deadline_missed(_spec_with_alerts(tmp_path), "alerted__train", "2h", "queued_at", context=context)
    assert outcome["webhook"] == "sent"
    payload = webhook[-1][2]
    assert payload["event"] == {"event": "deadline_missed", "pipeline": "alerted", "dag_id": "alerted__train",
                                "run_id": "manual__x", "state": "running", "after": "2h", "reference": "queued_at",
                                "deadline_time": "2026-12-03T12:00:00+00:00"}
    assert "had not finished 2h after its queued at" in payload["text"]
