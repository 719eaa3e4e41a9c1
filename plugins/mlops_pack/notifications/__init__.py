"""Alerts of the loop: e-mail (SMTP) and a Slack-compatible webhook, configured in the spec's ``alerts``.

``send_alert`` is what the operators call on their events (validation failed, drift, promoted,
rejected); :class:`PipelineAlertNotifier` is the Airflow notifier every loop task gets as its
``on_failure_callback``. Credentials come from Airflow connections only. Sending never fails a task:
a delivery error is logged and returned.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from mlops_pack.core import alert_text

if TYPE_CHECKING:
    from mlops_pack.core.spec import AlertsSpec

log = logging.getLogger(__name__)


def _connection(conn_id: str) -> Any:
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def webhook_url(conn: Any) -> str:
    """The webhook URL of a connection: extra ``url``, a host holding a URL, or scheme://host:port/path."""
    extra = conn.extra_dejson
    if extra.get("url"):
        return str(extra["url"])
    if "://" in (conn.host or ""):
        return str(conn.host)
    scheme = extra.get("scheme") or ("https" if conn.conn_type == "https" else "http")
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{conn.host}{port}/{(conn.schema or '').lstrip('/')}"


def send_email(conn_id: str, recipients: list[str], subject: str, body: str) -> None:
    import smtplib
    from email.message import EmailMessage

    conn = _connection(conn_id)
    extra = conn.extra_dejson
    message = EmailMessage()
    message["From"] = extra.get("from") or conn.login or "airflow-mlops-pack@localhost"
    message["To"] = ", ".join(recipients)
    message["Subject"] = alert_text.subject_line(subject)
    message.set_content(alert_text.plain(body))  # plain text: values in it are never markup
    timeout = float(extra.get("timeout", 30))
    smtp_class = smtplib.SMTP_SSL if extra.get("ssl") else smtplib.SMTP
    with smtp_class(conn.host or "localhost", int(conn.port or (465 if extra.get("ssl") else 25)),
                    timeout=timeout) as smtp:
        if extra.get("starttls"):
            smtp.starttls()
        if conn.login and conn.password:
            smtp.login(conn.login, conn.password)
        smtp.send_message(message)


def send_webhook(conn_id: str, subject: str, body: str, details: dict[str, Any]) -> None:
    import urllib.request

    conn = _connection(conn_id)
    # Slack mrkdwn: the title bold, everything else shown as the text it is (core/alert_text.py).
    payload = {"text": f"*{alert_text.slack(alert_text.subject_line(subject))}*\n{alert_text.slack(body)}",
               "event": details}
    headers = {"Content-Type": "application/json"}
    if conn.password:  # a bearer token for webhooks that take one
        headers["Authorization"] = f"Bearer {conn.password}"
    request = urllib.request.Request(webhook_url(conn), data=json.dumps(payload, default=str).encode(),
                                     headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=float(conn.extra_dejson.get("timeout", 30))) as answer:
        answer.read()


def send_alert(alerts: AlertsSpec, event: str, subject: str, body: str,
               details: dict[str, Any] | None = None) -> dict[str, str]:
    """Deliver one alert on every configured channel; returns ``{channel: "sent" | error}``."""
    if event not in alerts.events:
        return {}
    details = {"event": event, **(details or {})}
    outcome: dict[str, str] = {}
    channels = []
    if alerts.smtp_conn_id:
        channels.append(("email", lambda: send_email(alerts.smtp_conn_id, alerts.recipients, subject, body)))
    if alerts.webhook_conn_id:
        channels.append(("webhook", lambda: send_webhook(alerts.webhook_conn_id, subject, body, details)))
    for name, deliver in channels:
        try:
            deliver()
            outcome[name] = "sent"
        except Exception as exc:  # noqa: BLE001 - an alert that cannot be delivered must not fail the task
            outcome[name] = f"{type(exc).__name__}: {exc}"
            log.error("ALERT not delivered by %s (%s): %s", name, event, outcome[name])
    if outcome:
        log.info("ALERT %s: %s (%s)", event, subject, outcome)
    return outcome


class PipelineAlertNotifier(BaseNotifier):
    """Airflow notifier of a pipeline: tells the spec's ``alerts`` channels that a task failed.

    :param spec_path: the pipeline spec (its ``alerts`` section says where to send).
    :param event: the alert's event name (``task_failed`` for failure callbacks).
    """

    template_fields = ()

    def __init__(self, *, spec_path: str, event: str = "task_failed"):
        super().__init__()
        self.spec_path = spec_path
        self.event = event

    def notify(self, context: Any) -> None:
        from mlops_pack import settings
        from mlops_pack.core.spec import load_spec

        exception = context.get("exception")
        if type(exception).__name__ == "GXValidationFailed":
            return  # the validate task sent its own, more precise, validation_failed alert
        spec = load_spec(self.spec_path, settings.allowed_model_modules())
        ti = context.get("ti") or context.get("task_instance")
        dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
        task_id = getattr(ti, "task_id", "?")
        run_id = context.get("run_id") or getattr(ti, "run_id", "?")
        subject = f"[{spec.name}] task {dag_id}.{task_id} failed"
        body = (f"Pipeline {spec.name}: task {task_id} of DAG {dag_id} failed in run {run_id} "
                f"(try {getattr(ti, 'try_number', '?')}).\nError: {type(exception).__name__}: {exception}\n"
                f"Log: {getattr(ti, 'log_url', '') or ''}")
        send_alert(spec.alerts, self.event, subject, body,
                   {"pipeline": spec.name, "dag_id": dag_id, "task_id": task_id, "run_id": run_id,
                    "error": f"{type(exception).__name__}: {exception}"})


def deadline_missed(spec_path: str, dag_id: str, after: str, reference: str,
                    context: dict[str, Any] | None = None) -> dict[str, str]:
    """The callback of a DAG's ``DeadlineAlert`` (spec ``schedule.deadline``): tells the spec's ``alerts``
    that a run of ``dag_id`` had not finished ``after`` its ``reference`` time. Airflow's executor calls
    it with the deadline's context (the run as the REST API shows it, and the deadline's time)."""
    from mlops_pack.core.spec import load_spec

    spec = load_spec(spec_path)
    run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    run_id, state = run.get("dag_run_id") or run.get("run_id") or "?", run.get("state") or "?"
    subject = f"[{spec.name}] run {run_id} of {dag_id} missed its deadline"
    body = (f"Pipeline {spec.name}: run {run_id} of DAG {dag_id} had not finished {after} after its "
            f"{reference.replace('_', ' ')} (deadline {deadline.get('deadline_time', '?')}); it is {state}.")
    return send_alert(spec.alerts, "deadline_missed", subject, body,
                      {"pipeline": spec.name, "dag_id": dag_id, "run_id": run_id, "state": state, "after": after,
                       "reference": reference, "deadline_time": str(deadline.get("deadline_time", ""))})
