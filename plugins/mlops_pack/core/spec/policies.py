"""How the loop decides: the promotion gate and its metrics, scoring, drift, partitions, schedules,
retraining, decay and alerts."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from mlops_pack.core.metrics import METRICS
from mlops_pack.core.spec.base import _Strict

# Every metric is defined once, in core/metrics.py (what it needs, its direction, its task).
METRIC_DIRECTIONS = {name: m.direction for name, m in METRICS.items()}
METRIC_TASKS = {name: m.task for name, m in METRICS.items()}
DEFAULT_GATE = {"regression": {"rmse": {"min_delta": 0.0}}, "classification": {"accuracy": {"min_delta": 0.0}}}


class MetricPolicy(_Strict):
    """Gate for one metric: value thresholds on the challenger; change thresholds vs the champion."""

    direction: Literal["higher", "lower"] | None = Field(default=None, description="default: by metric")
    min: float | None = None
    max: float | None = None
    min_delta: float | None = Field(default=None, ge=0, description="absolute improvement required")
    min_relative_delta: float | None = Field(default=None, ge=0, description="improvement as a share of champion")

    @property
    def has_change_threshold(self) -> bool:
        return self.min_delta is not None or self.min_relative_delta is not None


class ProductionEvidenceSpec(_Strict):
    """The challenger must also beat the champion on labelled production rows both scored (docs/monitoring.md)."""

    min_rows: int = Field(default=200, ge=1, description="labelled production rows scored by both champion and "
                          "challenger (shadow scoring) below which the gate refuses: not enough evidence")


class PromotionSpec(_Strict):
    metrics: dict[str, MetricPolicy] = Field(
        default_factory=lambda: {"rmse": MetricPolicy(min_delta=0.0)},
        description="per metric policy; the first metric with a change threshold is the primary one")
    min_holdout_rows: int = Field(default=100, ge=1)
    slices: list[str] = Field(default_factory=list, description="columns whose values must not regress")
    slice_tolerance: float = Field(default=0.0, ge=0, description="relative regression allowed in a slice")
    min_slice_rows: int = Field(default=30, ge=1)
    bootstrap_samples: int = Field(default=1000, ge=100)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    seed: int = 0
    require_approval: bool = False
    approvers: list[str] = Field(
        default_factory=list, description="Airflow user ids who may answer the approval step (the user name with "
        "the simple auth manager); default: anyone allowed to act on the train DAG. Needs require_approval")
    approval_timeout_hours: float = Field(default=24, gt=0)
    pool: str | None = Field(default=None, description="Airflow pool (one slot) serialising registry writes")
    production_evidence: ProductionEvidenceSpec | None = Field(
        default=None, description="besides the holdout, a challenger must beat the champion on the labelled "
        "production rows both scored (needs scoring.shadow and labels), with the gate's paired bootstrap CI; "
        "the train DAG's judge_challenger Param judges the @challenger again once its evidence has grown")

    @model_validator(mode="after")
    def _approvers_need_approval(self) -> PromotionSpec:
        bad = [a for a in self.approvers if not a.strip() or any(c in a for c in ",:|")]
        if bad:
            raise ValueError(f"approvers: {bad} are not Airflow user ids (non-empty, no ',', ':' or '|')")
        if self.approvers and not self.require_approval:
            raise ValueError("approvers are named but require_approval is false: nobody would be asked; set "
                             "require_approval: true or remove approvers")
        return self

    def direction(self, metric: str) -> str:
        return self.metrics[metric].direction or METRIC_DIRECTIONS[metric]

    @property
    def primary(self) -> str:
        """The metric slices are judged on: the first with a change threshold, else the first listed."""
        return next((m for m, p in self.metrics.items() if p.has_change_threshold), next(iter(self.metrics)))


class ScoringSpec(_Strict):
    chunk_rows: int = Field(default=200_000, ge=100, description="rows per record batch; bounds scoring memory")
    max_parallel: int = Field(default=2, ge=1, description="score tasks (one per partition) running at once across "
                              "the score DAG's runs; each already predicts on all of its worker's CPUs")
    shadow: bool = Field(default=False, description="also score with the @challenger version, when there is one "
                         "other than the champion, into shadow_prediction columns; the monitor compares the two")


class DriftSpec(_Strict):
    share_threshold: float = Field(default=0.3, gt=0, le=1, description="share of drifted columns that means drift")
    columns: list[str] | None = Field(default=None, description="columns compared; default: the model features")
    cooldown_minutes: float = Field(default=0, ge=0, description="no new drift event within this time of the last")
    methods: dict[str, Literal["ks", "chisquare", "z", "wasserstein", "jensenshannon"]] = Field(
        default_factory=dict, description="per-column drift method; default: Evidently's choice by type and rows")
    thresholds: dict[str, float] = Field(default_factory=dict, description="per-column drift threshold; default: "
                                         "the method's (0.05 for p-values, 0.1 for distances)")
    report: Literal["profile", "evidently"] = Field(
        default="profile", description="the HTML report: `profile` draws the verdicts and each column's "
        "distribution from the reference profile and every current row (what the verdicts used; milliseconds); "
        "`evidently` renders Evidently's report from a sample of report_sample_rows rows a side (seconds and "
        "gigabytes at millions of rows)")
    report_sample_rows: int = Field(default=20_000, ge=100, description="with report `evidently`: rows of current "
                                    "and of reference data its HTML is rendered from (the verdicts use all rows)")
    profile_bins: int = Field(default=1000, ge=10, le=10_000, description="quantile bins per numeric column "
                              "in the reference profile stored at training time")


class PartitionSpec(_Strict):
    """How ingested data is cut into partitions, each named by the data it holds (docs/storage.md)."""

    column: str | None = Field(default=None, description="scraped column whose value names each row's partition "
                               "(e.g. the listing date); default: the run's logical date or conf 'partition'")
    date_format: str = Field(default="%Y-%m-%d", description="strftime format naming a partition by a run's "
                             "logical date (one partition per day by default)")


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> float:
    """Seconds of a duration written ``<number><unit>``, unit s, m, h or d (``90s``, ``30m``, ``2h``,
    ``1.5d``); a ValueError names the text otherwise."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", str(text))
    if not match or float(match[1]) <= 0:
        raise ValueError(f"{text!r} is not a duration: write a positive number and a unit s, m, h or d "
                         "(e.g. 90s, 30m, 2h, 1d)")
    return float(match[1]) * _DURATION_UNITS[match[2]]


class DeadlineSpec(_Strict):
    """A run of the named DAGs that has not finished ``after`` its reference time is late: the spec's
    ``alerts`` are told (event ``deadline_missed``), once per run (Airflow's DeadlineAlert, checked by
    the scheduler). The run itself goes on."""

    dags: list[Literal["ingest", "train", "score", "monitor", "rollback", "champion_watch", "labels",
                       "outcomes"]] = Field(min_length=1, description="the pipeline's DAGs that have the "
                                            "deadline, by stage (ingest, train, score, monitor, ...)")
    after: str = Field(description="how long a run may take from its reference time: a number and a unit "
                       "s, m, h or d (e.g. 2h)")
    reference: Literal["queued_at", "logical_date"] = Field(
        default="queued_at", description="queued_at (when the run was queued: every run, manual, "
        "scheduled or asset-triggered) or logical_date (the cron slot: 'the nightly ingest done by 04:00')")

    @model_validator(mode="after")
    def _valid(self) -> DeadlineSpec:
        try:
            duration_seconds(self.after)
        except ValueError as exc:
            raise ValueError(f"schedule.deadline.after: {exc}") from None
        if len(set(self.dags)) != len(self.dags):
            raise ValueError(f"schedule.deadline.dags lists a DAG twice: {self.dags}")
        return self

    @property
    def seconds(self) -> float:
        return duration_seconds(self.after)


class ScheduleSpec(_Strict):
    ingest: str | None = "0 2 * * *"
    wait_for_change: bool = Field(default=False, description="ingest starts with a deferrable sensor that "
                                  "waits until the source's pages change (ingest on change, not on a clock)")
    change_poll_seconds: float = Field(default=300, ge=5)
    deadline: DeadlineSpec | None = Field(default=None, description="late runs alert: the DAGs named, a run not "
                                          "finished this long after its reference time (docs/governance.md)")


RETRAIN_TRIGGERS = ("new_data", "drift", "schedule", "performance")


class RetrainSpec(_Strict):
    """When the train DAG trains a challenger (docs/spec.md, "Retrain policy"). Until a champion exists,
    new validated data always trains (the first model); a manual run always trains."""

    triggers: list[Literal["new_data", "drift", "schedule", "performance"]] = Field(
        default_factory=lambda: ["new_data", "drift"],
        description="what retrains once a champion exists: new_data (each new validated partition), drift "
        "(a drift event; trains on the newest partitions, skipped when the champion was trained on the "
        "drifted data already), schedule (the cron), performance (a decay event of the outcomes DAG: the "
        "champion's realized metrics on labelled predictions fell, see labels); any combination, [] for "
        "manual runs only")
    cron: str | None = Field(default=None, description="cron of the scheduled retrain (with triggers: [schedule]), "
                             "e.g. '0 3 * * 1'")
    require_decay_for_drift: bool = Field(default=False, description="a drift event retrains only while the "
                                          "champion's latest realized performance shows decay (needs labels): "
                                          "an input shift that costs nothing does not retrain")

    @model_validator(mode="after")
    def _cron_with_schedule(self) -> RetrainSpec:
        if "schedule" in self.triggers and not self.cron:
            raise ValueError("retrain.cron: triggers include 'schedule' but no cron is given")
        if self.cron and "schedule" not in self.triggers:
            raise ValueError("retrain.cron is set but retrain.triggers does not include 'schedule'")
        if self.cron and len(self.cron.split()) != 5:
            raise ValueError(f"retrain.cron {self.cron!r} must have 5 fields (minute hour day month weekday)")
        if len(set(self.triggers)) != len(self.triggers):
            raise ValueError(f"retrain.triggers lists a trigger twice: {self.triggers}")
        return self


class DecaySpec(_Strict):
    """When the champion's realized performance counts as decay (docs/monitoring.md): any one rule suffices."""

    floors: dict[str, float] = Field(default_factory=dict, description="metric -> worst acceptable realized "
                                     "value (a higher-is-better metric below it, or a lower-is-better one above it, "
                                     "is decay)")
    max_relative_drop: float | None = Field(default=0.1, ge=0, description="decay when the realized metric is worse "
                                            "than the promotion-time holdout value (the baseline) by more than "
                                            "this share and its bootstrap CI excludes that; null: floors only")


class AlertsSpec(_Strict):
    """Who is told about the loop's events (docs/ui.md). Secrets live in Airflow connections only:
    the SMTP connection (host, port, login, password; extra ``from``, ``starttls``, ``ssl``) and the
    webhook connection (its host is the full URL of a Slack-compatible incoming webhook)."""

    smtp_conn_id: str | None = Field(default=None, description="Airflow connection of the SMTP server")
    recipients: list[str] = Field(default_factory=list, description="e-mail addresses (with smtp_conn_id)")
    webhook_conn_id: str | None = Field(default=None, description="Airflow connection of the webhook URL")
    events: list[Literal["validation_failed", "drift", "decay", "promoted", "rejected", "task_failed",
                         "deadline_missed"]] = Field(
        default_factory=lambda: ["validation_failed", "drift", "decay", "promoted", "rejected", "task_failed",
                                 "deadline_missed"],
        description="which events alert")

    @model_validator(mode="after")
    def _smtp_needs_recipients(self) -> AlertsSpec:
        if self.smtp_conn_id and not self.recipients:
            raise ValueError("alerts.smtp_conn_id is set but alerts.recipients is empty")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.smtp_conn_id or self.webhook_conn_id)
