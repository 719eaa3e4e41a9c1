"""Where a pipeline's data comes from: a crawl, files in object storage, a SQL query, and the events
(queue messages, upstream assets) that can trigger a read."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from mlops_pack.core.spec.base import _Strict


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

    scheme: Literal["redis+pubsub", "sqs"] = Field(description="`redis+pubsub` or `sqs`")
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
