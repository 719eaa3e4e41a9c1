"""Pipeline spec: the YAML a user writes under include/pipelines/, parsed and strictly validated.

Parsing must stay cheap (it runs at every DAG parse): pydantic and yaml only, and the estimator's
dotted path is checked by locating its module source without importing scikit-learn.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from mlops_pack.core.errors import MlopsError
from mlops_pack.core.metrics import METRICS
from mlops_pack.core.outcome_metrics import CALIBRATION
from mlops_pack.core.spec_yaml import SpecYamlError, read_yaml

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,40}$"


class SpecError(MlopsError, ValueError):
    """A pipeline spec is invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    selector: str = Field(description="CSS selector relative to the record; ::text or ::attr(x) to extract")
    type: Literal["string", "number", "integer", "date"] = "string"


class _ValueOptions(_Strict):
    """How number, integer and date fields are read, the same for every source kind
    (core/value_types.py): strict by default, other layouts opt-in."""

    decimal_separator: Literal[".", ","] = Field(default=".", description="',' for 1.234,5-style numbers")
    thousands_separator: Literal[",", ".", " ", "'", ""] = Field(
        default=",", description="accepted only in well-formed groups of three digits; ' ' also matches "
        "no-break spaces; '' accepts none")
    date_formats: list[str] = Field(default_factory=list, description="strptime formats tried after ISO "
                                    "8601 (YYYY-MM-DD, optionally with a time), e.g. '%d/%m/%Y'; any other "
                                    "date is refused, never guessed")
    number_affixes: list[str] = Field(default_factory=list, description="currency and unit texts a number "
                                      "may carry, one before and one after it (e.g. ['€', 'm²', 'km']); any "
                                      "other text around a number refuses the value, never picks a number out")

    @model_validator(mode="after")
    def _number_format_is_unambiguous(self) -> _ValueOptions:
        if self.decimal_separator == self.thousands_separator:
            raise ValueError(f"source.decimal_separator and source.thousands_separator are both "
                             f"{self.decimal_separator!r}: numbers would be ambiguous")
        for fmt in self.date_formats:
            if "%" not in fmt:
                raise ValueError(f"source.date_formats entry {fmt!r} has no strptime directive (%Y, %d...)")
        return self


class SourceSpec(_ValueOptions):
    """Where and how to crawl (``kind: scrape``, the default). Defaults are polite and safe;
    docs/ingestion.md explains each group."""

    kind: Literal["scrape"] = "scrape"
    # what to crawl
    start_urls: list[str] = Field(min_length=1)
    sitemaps: list[str] = Field(default_factory=list, description="sitemap.xml URLs whose <loc> pages are crawled")
    sitemaps_from_robots: bool = Field(default=False, description="also crawl the Sitemap: lines of robots.txt")
    record_selector: str
    next_page_selector: str | None = Field(default=None, description="CSS selector of pagination links (all followed)")
    fields: dict[str, FieldSpec] = Field(min_length=1)
    key: str
    max_pages: int = Field(default=500, ge=1)
    max_depth: int = Field(default=1000, ge=0, description="link hops from a start URL or sitemap entry")
    # safety
    allowed_hosts: list[str] = Field(min_length=1, description="host or host:port allowed to be fetched; a "
                                     "loopback/private address is fetched only if named here as an IP")
    max_redirects: int = Field(default=5, ge=0, le=5)
    max_response_bytes: int = Field(default=5_000_000, ge=1024)
    allowed_content_types: list[str] = Field(default_factory=lambda: ["text/html", "application/xhtml+xml"])
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=10.0, gt=0, description="longest silence while reading")
    timeout_seconds: float = Field(default=10.0, gt=0, description="whole request, all phases")
    # politeness
    user_agent: str = "airflow-mlops-pack"
    max_concurrency_per_host: int = Field(default=4, ge=1, le=64)
    min_delay_seconds: float = Field(default=0.0, ge=0, description="between request starts to one host")
    robots_cache_seconds: float = Field(default=86_400, ge=0, le=86_400)
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.5, ge=0, description="first backoff; doubles, with jitter")
    retry_max_seconds: float = Field(default=60.0, ge=0, description="time budget of one URL's retries")
    max_crawl_delay_seconds: float = Field(default=60.0, ge=0, description="a robots.txt Crawl-delay above "
                                           "this is capped to it (the cap is recorded in the quarantine)")
    max_crawl_seconds: float = Field(default=1800.0, gt=0, description="crawl-wide deadline: pages not "
                                     "fetched by then fail with that reason (the error budget decides)")
    # incremental crawls and the error budget
    incremental: bool = Field(default=True, description="conditional requests with stored ETag/Last-Modified")
    max_failed_page_share: float = Field(default=0.2, ge=0, le=1)
    max_failed_record_share: float = Field(default=0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _key_is_a_field(self) -> SourceSpec:
        if self.key not in self.fields:
            raise ValueError(f"key {self.key!r} is not one of source.fields {sorted(self.fields)}")
        return self

    @model_validator(mode="after")
    def _start_hosts_allowed(self) -> SourceSpec:
        from urllib.parse import urlsplit

        allowed = {h.lower() for h in self.allowed_hosts}
        for url in [*self.start_urls, *self.sitemaps]:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s) URL")
            if parts.netloc.lower() not in allowed and parts.hostname not in allowed:
                raise ValueError(f"{url!r}: host {parts.netloc!r} is not in source.allowed_hosts {self.allowed_hosts}")
        return self


class ColumnSpec(_Strict):
    """A column of a file or SQL source: its type and, when it differs, its name in the file or table."""

    type: Literal["string", "number", "integer", "date"] = "string"
    column: str | None = Field(default=None, description="name in the file or query result; default: the key")


class _TableSource(_ValueOptions):
    fields: dict[str, ColumnSpec] = Field(min_length=1, description="columns kept, by the pack's name")
    key: str = Field(description="record key: one row per key in a validated partition")
    max_failed_record_share: float = Field(default=0.2, ge=0, le=1, description="rows without a key (or "
                                           "partition.column value) above this share fail the run; values "
                                           "that do not parse become nulls, listed")

    @model_validator(mode="after")
    def _key_is_a_field(self) -> _TableSource:
        if self.key not in self.fields:
            raise ValueError(f"key {self.key!r} is not one of source.fields {sorted(self.fields)}")
        return self


class _FileLocation(_Strict):
    """Where files are read from: shared by the ``files`` source and ``files`` labels."""

    section: ClassVar[str] = "source"  # names the field in errors
    url: str = Field(description="folder URL: file:///data/in/ or s3://bucket/prefix/")
    pattern: str = Field(default="*", description="glob below url: '*.csv', '2026-*/*.parquet', '**/*.jsonl'")
    format: Literal["csv", "parquet", "jsonl"] | None = Field(default=None, description="default: by file suffix "
                                                              "(.csv, .parquet/.pq, .jsonl/.ndjson)")
    conn_id: str | None = Field(default=None, description="Airflow connection of the storage (an AWS "
                                "connection for s3://, e.g. aws_default)")
    csv_delimiter: str = Field(default=",", min_length=1, max_length=1)
    max_files: int = Field(default=1000, ge=1, description="new or changed files read by one run; the rest wait "
                           "for the next run")
    max_file_bytes: int = Field(default=2_000_000_000, ge=1, description="a larger file fails the run, named")

    @field_validator("url")
    @classmethod
    def _url_is_storage(cls, value: str) -> str:
        if not re.match(r"^(file|s3)://", value):
            raise ValueError(f"{value!r} must be a file:// or s3:// folder URL")
        return value.rstrip("/") + "/"

    @field_validator("pattern")
    @classmethod
    def _pattern_stays_below_url(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError(f"{value!r} must be a glob relative to {cls.section}.url (no leading '/', no '..')")
        return value


class FileSourceSpec(_FileLocation, _TableSource):
    """Files in object storage (``kind: files``): CSV, Parquet or JSON lines under a ``file://`` or
    ``s3://`` URL, read through ObjectStoragePath; only new or changed files are read (docs/ingestion.md)."""

    kind: Literal["files"]


class _SqlQuery(_Strict):
    """A query through an Airflow connection: shared by the ``sql`` source and ``sql`` labels."""

    section: ClassVar[str] = "source"  # names the field in errors
    conn_id: str = Field(description="Airflow connection of the database (e.g. a postgres connection)")
    query: str = Field(min_length=1, description="a SELECT; the pack wraps it to filter and order on the "
                       "watermark, so write it without ORDER BY/LIMIT")
    watermark_column: str | None = Field(default=None, description="column (of the query result) that grows with "
                                         "new rows (updated_at, an id); none: every run reads everything")
    max_rows: int = Field(default=5_000_000, ge=1, description="rows read by one run, oldest watermark first; "
                          "the rest wait for the next run")

    @field_validator("query")
    @classmethod
    def _one_select(cls, value: str) -> str:
        body = value.strip().rstrip(";").strip()
        if not re.match(r"(?is)^(select|with)\b", body) or ";" in body:
            raise ValueError(f"{cls.section}.query must be one SELECT (or WITH ... SELECT) statement")
        return body


class SqlSourceSpec(_SqlQuery, _TableSource):
    """A SQL query through an Airflow connection (``kind: sql``; PostgreSQL or any common.sql database),
    incremental on ``watermark_column`` (docs/ingestion.md)."""

    kind: Literal["sql"]

    @model_validator(mode="after")
    def _watermark_is_a_column(self) -> SqlSourceSpec:
        if self.watermark_column is not None and self.watermark_column not in self.fields:
            raise ValueError(f"watermark_column {self.watermark_column!r} is not one of source.fields "
                             f"{sorted(self.fields)}")
        return self


SOURCE_KINDS = ("scrape", "files", "sql")


def _source_kind(value: Any) -> str:
    kind = value.get("kind", "scrape") if isinstance(value, dict) else getattr(value, "kind", "scrape")
    return kind if kind in SOURCE_KINDS else "unknown"


AnySource = Annotated[
    Annotated[SourceSpec, Tag("scrape")] | Annotated[FileSourceSpec, Tag("files")]
    | Annotated[SqlSourceSpec, Tag("sql")],
    Discriminator(_source_kind, custom_error_type="source_kind",
                  custom_error_message=f"source.kind must be one of {list(SOURCE_KINDS)}"),
]


class QueueSpec(_Strict):
    """A message queue whose messages start ``<name>__ingest`` (an AssetWatcher with Airflow's MessageQueueTrigger)."""

    scheme: Literal["redis+pubsub", "sqs"]
    queue: str = Field(min_length=1, description="Redis channel, or SQS queue URL")
    conn_id: str | None = Field(default=None, description="default: redis_default / aws_default")
    poll_seconds: float = Field(default=1.0, gt=0, le=300, description="Redis: wait between empty reads; SQS: "
                                "long-poll wait, whole seconds from 1 to 20")


class UpstreamAssetSpec(_Strict):
    """Another team's Airflow asset whose events start ``<name>__ingest``."""

    name: str = Field(min_length=1)
    uri: str | None = Field(default=None, description="default: the name")


class EventsSpec(_Strict):
    """What starts the pack's DAGs besides the clock and the REST API (docs/ingestion.md)."""

    queues: list[QueueSpec] = Field(default_factory=list)
    inbox: bool = Field(default=False, description="ingest also runs on events of asset <name>.inbox (REST: "
                        "POST /api/v2/assets/events); on whenever queues are given")
    upstream_assets: list[UpstreamAssetSpec] = Field(default_factory=list)
    champion_poll_seconds: float | None = Field(default=None, ge=5, description="watch the registry's @champion "
                                                "alias (moves by hand re-score and are recorded); none: off")


class ExpectationSpec(_Strict):
    type: str = Field(pattern=r"^expect_[a-z0-9_]+$")
    kwargs: dict[str, Any] = Field(default_factory=dict)


class ValidationSpec(_Strict):
    expectations: list[ExpectationSpec] = Field(default_factory=list)
    suite_file: str | None = Field(default=None, description="GX suite JSON, relative to the spec file")

    @model_validator(mode="after")
    def _something_to_check(self) -> ValidationSpec:
        if not self.expectations and not self.suite_file:
            raise ValueError("give expectations or a suite_file: validation with no checks passes anything")
        return self


class FeaturesSpec(_Strict):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class RangeSpec(_Strict):
    """A numeric range of a search space: drawn uniformly (of the log with ``log``), rounded with ``integer``."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> RangeSpec:
        if not self.low < self.high:
            raise ValueError(f"range low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        return self


class SearchSpec(_Strict):
    """Hyperparameter search: trials as mapped tasks on the training queue, scored by cross-validation on the
    training rows (never the holdout); the best is refit on the whole training set (core/search.py)."""

    method: Literal["grid", "random", "tpe"] = Field(default="grid", description="grid: every combination of "
                                                     "the listed values; random: seeded draws; tpe: Optuna's TPE "
                                                     "(Bayesian), each trial learning from the finished ones")
    space: dict[str, list[Any] | RangeSpec] = Field(min_length=1, description="parameter -> values to try, or a "
                                                    "range {low, high, log, integer} (random, tpe); a parameter "
                                                    "of the estimator by its name, or any set_params name of the "
                                                    "pipeline (step__param)")
    max_trials: int = Field(default=20, ge=1, le=500, description="trials run (random, tpe); a grid must not "
                            "have more combinations")
    trial_timeout_seconds: float = Field(default=600, gt=0, description="a trial still running after this is "
                                         "recorded as timed out and the search goes on")
    parallelism: int = Field(default=2, ge=1, le=64, description="trials running at once (on the training queue's "
                             "workers)")
    metric: str | None = Field(default=None, description="metric the trials are ranked on (core/metrics.py); "
                               "default: the gate's primary metric")
    cv: int = Field(default=3, ge=2, le=20, description="folds: time-ordered with order_by (no fold trains on "
                    "a row newer than one it is scored on), stratified for classification, else shuffled k-fold")
    seed: int = Field(default=0, description="seeds the folds, random draws and TPE")

    @model_validator(mode="after")
    def _space_fits_the_method(self) -> SearchSpec:
        for name, dim in self.space.items():
            if isinstance(dim, list) and not dim:
                raise ValueError(f"model.search.space.{name}: lists no values")
            if self.method == "grid" and not isinstance(dim, list):
                raise ValueError(f"model.search.space.{name}: a grid search needs a list of values, not a range")
        if self.method == "grid":
            size = 1
            for dim in self.space.values():
                size *= len(dim)
            if size > self.max_trials:
                raise ValueError(f"model.search: the grid has {size} combinations, more than max_trials "
                                 f"{self.max_trials}; raise max_trials or use method random or tpe")
        if self.metric is not None and self.metric not in METRICS:
            raise ValueError(f"model.search.metric: unknown metric {self.metric!r}, use one of {sorted(METRICS)}")
        return self


class ModelSpec(_Strict):
    task: Literal["regression", "classification"] = "regression"
    target: str
    features: FeaturesSpec
    order_by: str | None = Field(default=None, description="column that orders rows in time for the holdout")
    estimator: str | None = Field(default=None, description="dotted path of a scikit-learn estimator class, "
                                  "behind the pack's preprocessing (impute + scale numeric, impute + one-hot "
                                  "categorical); give this or pipeline")
    pipeline: str | None = Field(default=None, description="your own model code instead: 'package.module:function' "
                                 "(an installed package, or a module under the spec's folder or its parent, e.g. "
                                 "include/), called as function(numeric=[...], categorical=[...], **params) and "
                                 "returning an unfitted scikit-learn estimator or Pipeline; imported when a task "
                                 "trains, never at DAG parse (`mlops-pack check` calls it)")
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the estimator, or of "
                                   "the pipeline function")
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1, description="share of the rows held out for the "
                                    "gate: the newest by order_by, or a stratified sample with stratify")
    stratify: bool = Field(default=False, description="classification: hold out a random sample with the "
                           "class proportions of the window (seeded), instead of the newest rows")
    window_partitions: int = Field(default=5, ge=1, description="latest validated partitions to train on")
    search: SearchSpec | None = None

    @field_validator("estimator")
    @classmethod
    def _estimator_exists(cls, value: str | None) -> str | None:
        problem = estimator_path_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("pipeline")
    @classmethod
    def _pipeline_is_a_reference(cls, value: str | None) -> str | None:
        problem = pipeline_ref_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _estimator_or_pipeline(self) -> ModelSpec:
        if (self.estimator is None) == (self.pipeline is None):
            raise ValueError("model: give either estimator (the pack's preprocessing + that estimator) or pipeline "
                             "(your own function), not " + ("both" if self.estimator else "neither"))
        return self

    @property
    def code(self) -> str:
        """What makes the model, for messages and the run's params: the pipeline function or the estimator."""
        return str(self.pipeline or self.estimator)

    @model_validator(mode="after")
    def _stratify_needs_classes(self) -> ModelSpec:
        if self.stratify and self.task != "classification":
            raise ValueError("model.stratify: a stratified holdout needs model.task 'classification'")
        return self

    @model_validator(mode="after")
    def _target_not_a_feature(self) -> ModelSpec:
        if not self.features.all:
            raise ValueError("model.features lists no columns")
        if self.target in self.features.all:
            raise ValueError(f"target {self.target!r} is also listed as a feature")
        return self


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
    approval_timeout_hours: float = Field(default=24, gt=0)
    pool: str | None = Field(default=None, description="Airflow pool (one slot) serialising registry writes")
    production_evidence: ProductionEvidenceSpec | None = Field(
        default=None, description="besides the holdout, a challenger must beat the champion on the labelled "
        "production rows both scored (needs scoring.shadow and labels), with the gate's paired bootstrap CI; "
        "the train DAG's judge_challenger Param judges the @challenger again once its evidence has grown")

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
    report_sample_rows: int = Field(default=20_000, ge=100, description="rows of current and of reference data "
                                    "the Evidently HTML report is rendered from (the verdicts use all rows)")
    profile_bins: int = Field(default=1000, ge=10, le=10_000, description="quantile bins per numeric column "
                              "in the reference profile stored at training time")


class PartitionSpec(_Strict):
    """How ingested data is cut into partitions, each named by the data it holds (docs/storage.md)."""

    column: str | None = Field(default=None, description="scraped column whose value names each row's partition "
                               "(e.g. the listing date); default: the run's logical date or conf 'partition'")
    date_format: str = Field(default="%Y-%m-%d", description="strftime format naming a partition by a run's "
                             "logical date (one partition per day by default)")


class ScheduleSpec(_Strict):
    ingest: str | None = "0 2 * * *"
    wait_for_change: bool = Field(default=False, description="ingest starts with a deferrable sensor that "
                                  "waits until the source's pages change (ingest on change, not on a clock)")
    change_poll_seconds: float = Field(default=300, ge=5)


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


class _LabelsSpec(_Strict):
    min_labelled: int = Field(default=100, ge=1, description="fewer labelled predictions in a partition: 'not "
                              "enough labels', no metric and no decay verdict")
    metrics: list[str] = Field(default_factory=list, description="realized metrics; default: promotion.metrics; "
                               "classification adds brier_score and ece (calibration); bootstrap samples, "
                               "confidence and seed are promotion's")
    decay: DecaySpec = DecaySpec()
    cooldown_minutes: float = Field(default=0, ge=0, description="no new performance (decay) event within this "
                                    "time of the last")
    report_sample_rows: int = Field(default=20_000, ge=100, description="labelled rows the Evidently quality report "
                                    "of each prediction partition is rendered from (the metrics use all rows)")


class LaterPartitionLabels(_LabelsSpec):
    """Labels from later validated partitions of the source itself (``kind: later_partitions``): a
    validated partition's ``model.target`` values are the truth for the keys scored before."""

    kind: Literal["later_partitions"]


class _LabelColumns(_LabelsSpec):
    """Labels from a source of their own: which columns hold the key and the truth."""

    key_column: str | None = Field(default=None, description="column holding the record key; default: source.key")
    target_column: str | None = Field(default=None, description="column holding the truth; default: model.target")


class _DeliveredLabels(_LabelColumns):
    """Labels read from a source of their own on a cron."""

    cron: str | None = Field(default="0 * * * *", description="when the labels DAG looks for new labels "
                             "(UTC); null: manual or REST-triggered runs only")

    @field_validator("cron")
    @classmethod
    def _cron_has_five_fields(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError(f"{value!r} must have 5 fields (minute hour day month weekday)")
        return value


class FileLabels(_FileLocation, _DeliveredLabels):
    """Labels delivered as files (``kind: files``): one row per record key with its true target; each
    file becomes the label partition named after it."""

    section: ClassVar[str] = "labels"
    kind: Literal["files"]


class SqlLabels(_SqlQuery, _DeliveredLabels):
    """Labels from a SQL query (``kind: sql``): the key, the truth and the column naming each row's label
    partition (e.g. the day the outcome was known); incremental on ``watermark_column`` like the sql source."""

    section: ClassVar[str] = "labels"
    kind: Literal["sql"]
    partition_column: str = Field(description="column of the query result whose value names each row's label "
                                  "partition (a date or timestamp becomes its day, YYYY-MM-DD)")


class EventLabels(_LabelColumns):
    """Labels delivered in events (``kind: events``): REST asset events of ``<name>.label_inbox`` (POST
    /api/v2/assets/events) or messages on ``queues``, each ``{"partition": ..., "labels": [{key, target}]}``;
    each lands in the label partition it names (docs/monitoring.md)."""

    kind: Literal["events"]
    queues: list[QueueSpec] = Field(default_factory=list, description="message queues whose messages deliver "
                                    "labels (watched like events.queues); REST events always do")


LABEL_KINDS = ("later_partitions", "files", "sql", "events")


def _labels_kind(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in LABEL_KINDS else "unknown"


AnyLabels = Annotated[
    Annotated[LaterPartitionLabels, Tag("later_partitions")] | Annotated[FileLabels, Tag("files")]
    | Annotated[SqlLabels, Tag("sql")] | Annotated[EventLabels, Tag("events")],
    Discriminator(_labels_kind, custom_error_type="labels_kind",
                  custom_error_message=f"labels.kind must be one of {list(LABEL_KINDS)}"),
]


class AlertsSpec(_Strict):
    """Who is told about the loop's events (docs/ui.md). Secrets live in Airflow connections only:
    the SMTP connection (host, port, login, password; extra ``from``, ``starttls``, ``ssl``) and the
    webhook connection (its host is the full URL of a Slack-compatible incoming webhook)."""

    smtp_conn_id: str | None = Field(default=None, description="Airflow connection of the SMTP server")
    recipients: list[str] = Field(default_factory=list, description="e-mail addresses (with smtp_conn_id)")
    webhook_conn_id: str | None = Field(default=None, description="Airflow connection of the webhook URL")
    events: list[Literal["validation_failed", "drift", "decay", "promoted", "rejected", "task_failed"]] = Field(
        default_factory=lambda: ["validation_failed", "drift", "decay", "promoted", "rejected", "task_failed"],
        description="which events alert")

    @model_validator(mode="after")
    def _smtp_needs_recipients(self) -> AlertsSpec:
        if self.smtp_conn_id and not self.recipients:
            raise ValueError("alerts.smtp_conn_id is set but alerts.recipients is empty")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.smtp_conn_id or self.webhook_conn_id)


class PipelineSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    owner: str = "mlops"
    source: AnySource
    validation: ValidationSpec
    model: ModelSpec
    retrain: RetrainSpec = RetrainSpec()
    promotion: PromotionSpec = PromotionSpec()
    scoring: ScoringSpec = ScoringSpec()
    drift: DriftSpec = DriftSpec()
    alerts: AlertsSpec = AlertsSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    partition: PartitionSpec = PartitionSpec()
    events: EventsSpec = EventsSpec()
    labels: AnyLabels | None = Field(default=None, description="where the truth for scored records comes from "
                                     "(docs/monitoring.md); none: no realized performance, no decay trigger")
    spec_path: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _columns_are_scraped(self) -> PipelineSpec:
        scraped = set(self.source.fields)
        if self.model.target not in scraped:
            raise ValueError(f"model.target: {self.model.target!r} is not a scraped column {sorted(scraped)}")
        missing = [c for c in self.model.features.all if c not in scraped]
        if missing:
            raise ValueError(f"model.features: {missing} are not scraped columns {sorted(scraped)}")
        if self.model.order_by and self.model.order_by not in scraped:
            raise ValueError(f"model.order_by: {self.model.order_by!r} is not a scraped column")
        if self.partition.column and self.partition.column not in scraped:
            raise ValueError(f"partition.column: {self.partition.column!r} is not a scraped column {sorted(scraped)}")
        if not self.promotion.metrics:
            raise ValueError("promotion.metrics: name at least one metric")
        for metric in self.promotion.metrics:
            if metric not in METRIC_DIRECTIONS:
                raise ValueError(f"promotion.metrics: unknown metric {metric!r}, use one of {sorted(METRIC_DIRECTIONS)}")
        missing = [c for c in self.promotion.slices if c not in scraped]
        if missing:
            raise ValueError(f"promotion.slices: {missing} are not scraped columns")
        return self

    @model_validator(mode="before")
    @classmethod
    def _default_gate_fits_the_task(cls, data: Any) -> Any:
        """Without promotion.metrics a classifier is gated on accuracy, not on the regression default rmse."""
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            return data
        promotion = data.get("promotion")
        if data["model"].get("task") == "classification" and (promotion is None or (
                isinstance(promotion, dict) and "metrics" not in promotion)):
            data = {**data, "promotion": {**(promotion or {}), "metrics": DEFAULT_GATE["classification"]}}
        return data

    @model_validator(mode="after")
    def _metrics_fit_the_task(self) -> PipelineSpec:
        task = self.model.task
        for metric in self.promotion.metrics:
            if METRIC_TASKS.get(metric, task) != task:
                fitting = sorted(m for m, t in METRIC_TASKS.items() if t == task)
                raise ValueError(f"promotion.metrics.{metric}: {metric!r} measures a {METRIC_TASKS[metric]} model "
                                 f"but model.task is {task!r}; use one of {fitting}")
        return self

    @model_validator(mode="after")
    def _labels_fit_the_model(self) -> PipelineSpec:
        retrain, labels = self.retrain, self.labels
        if labels is None:
            if "performance" in retrain.triggers:
                raise ValueError("retrain.triggers: 'performance' needs a labels section (where the truth comes from)")
            if retrain.require_decay_for_drift:
                raise ValueError("retrain.require_decay_for_drift needs a labels section: decay is measured on labels")
            return self
        realized = {**METRIC_TASKS, **dict.fromkeys(CALIBRATION, "classification")}
        for metric in labels.metrics:
            if realized.get(metric) != self.model.task:
                fitting = sorted(m for m, t in realized.items() if t == self.model.task)
                raise ValueError(f"labels.metrics: {metric!r} is not a {self.model.task} metric; use one of {fitting}")
        for metric in labels.decay.floors:
            if metric not in self.outcome_metrics:
                raise ValueError(f"labels.decay.floors: {metric!r} is not a realized metric {self.outcome_metrics}")
        if retrain.require_decay_for_drift and "drift" not in retrain.triggers:
            raise ValueError("retrain.require_decay_for_drift is set but retrain.triggers does not include 'drift'")
        return self

    @model_validator(mode="after")
    def _production_evidence_has_shadow_and_labels(self) -> PipelineSpec:
        if self.promotion.production_evidence is None:
            return self
        if not self.scoring.shadow:
            raise ValueError("promotion.production_evidence needs scoring.shadow: true (the challenger must score "
                             "the champion's rows)")
        if self.labels is None:
            raise ValueError("promotion.production_evidence needs a labels section (the truth of production rows)")
        return self

    @model_validator(mode="after")
    def _change_sensor_needs_pages(self) -> PipelineSpec:
        if self.schedule.wait_for_change and self.source.kind != "scrape":
            raise ValueError(f"schedule.wait_for_change watches web pages; source.kind is {self.source.kind!r} "
                             "(files and SQL sources read only what is new at each run)")
        return self

    @model_validator(mode="after")
    def _search_metric_fits_the_task(self) -> PipelineSpec:
        search = self.model.search
        if search is not None and search.metric and METRIC_TASKS[search.metric] != self.model.task:
            raise ValueError(f"model.search.metric: {search.metric!r} measures a {METRIC_TASKS[search.metric]} "
                             f"model but model.task is {self.model.task!r}")
        return self

    @property
    def search_metric(self) -> str:
        """The metric search trials are ranked on: ``model.search.metric``, else the gate's primary one."""
        search = self.model.search
        return (search.metric if search and search.metric else None) or self.promotion.primary

    @property
    def outcome_metrics(self) -> list[str]:
        """The realized metrics: labels.metrics, else the promotion metrics."""
        return list((self.labels.metrics if self.labels else None) or self.promotion.metrics)

    @property
    def drift_columns(self) -> list[str]:
        return list(self.drift.columns or self.model.features.all)

    @property
    def code_dirs(self) -> list[Path]:
        """Where ``model.pipeline`` modules are looked for besides sys.path: the spec's folder and its parent."""
        folder = Path(self.spec_path).resolve().parent
        return [folder, folder.parent]

    def resolve(self, relative: str) -> Path:
        """A path written in the spec, resolved against the spec file's folder."""
        return (Path(self.spec_path).parent / relative).resolve()


@functools.lru_cache(maxsize=64)
def estimator_path_problem(dotted: str) -> str | None:
    """Why ``dotted`` cannot name an estimator class, or None; checks source text, never imports it."""
    module_name, _, class_name = dotted.rpartition(".")
    if not module_name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", class_name):
        return f"estimator {dotted!r} must be a dotted path like sklearn.linear_model.Ridge"
    source = _module_source(module_name)
    if source is None:
        return f"estimator {dotted!r}: module {module_name!r} is not installed"
    if not re.search(rf"\b{re.escape(class_name)}\b", source):
        return f"estimator {dotted!r}: module {module_name!r} has no {class_name!r}"
    return None


def pipeline_ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not of the form ``package.module:function``, or None (checks text only, imports nothing)."""
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*", ref):
        return f"pipeline {ref!r} must be 'package.module:function' (e.g. my_models.price:build)"
    return None


def _module_source(module_name: str) -> str | None:
    top, *rest = module_name.split(".")
    found = importlib.util.find_spec(top)  # a top-level find_spec does not import the package
    if found is None or not found.origin:
        return None
    path = Path(found.origin).parent if found.submodule_search_locations else Path(found.origin)
    for part in rest:
        if (path / part / "__init__.py").exists():
            path = path / part
        elif (path / f"{part}.py").exists():
            path = path / f"{part}.py"
        else:
            return None
    file = path / "__init__.py" if path.is_dir() else path
    return file.read_text(encoding="utf-8", errors="replace")


def load_spec(path: str | Path) -> PipelineSpec:
    """The validated spec in ``path``; raises SpecError naming the file and each bad field."""
    path = Path(path)
    try:
        raw = read_yaml(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, SpecYamlError) as exc:
        raise SpecError(f"{path}: cannot read pipeline spec: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a pipeline spec must be a mapping, got {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    try:
        spec = PipelineSpec.model_validate({**raw, "spec_path": str(path)})
    except ValidationError as exc:
        raise SpecError(f"{path}: invalid pipeline spec:\n{_describe(exc)}") from None
    if spec.name != path.stem:
        raise SpecError(f"{path}: name: {spec.name!r} must equal the file name {path.stem!r}")
    return spec


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        tags = {"source": SOURCE_KINDS, "labels": LABEL_KINDS}.get(str(loc[0]) if loc else "", ())
        if len(loc) > 1 and loc[1] in tags:
            del loc[1]  # the union's tag: the user wrote source.<field>, not source.<kind>.<field>
        where = ".".join(str(p) for p in loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        # Cross-field checks run on the whole spec and name their field at the start of the message.
        lines.append(f"  {where}: {message}" if where else f"  {message}")
    return "\n".join(lines)
