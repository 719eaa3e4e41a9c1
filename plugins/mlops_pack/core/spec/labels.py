"""Where the truth for scored rows comes from, later: later partitions, files, a SQL query or events."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    field_validator,
)

from mlops_pack.core.spec.base import _Strict
from mlops_pack.core.spec.policies import DecaySpec
from mlops_pack.core.spec.sources import QueueSpec, _FileLocation, _SqlQuery


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
