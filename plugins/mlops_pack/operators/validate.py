"""GXValidateOperator: gate a raw partition with Great Expectations; promote it or quarantine it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from mlops_pack.operators.base import PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class GXValidationFailed(AirflowFailException):
    """The partition failed its expectations and was quarantined; not retried (the data won't change)."""


class GXValidateOperator(PipelineOperator):
    """Validate the raw partition ``raw_folder`` against the spec's expectations (and suite file).

    On success the partition moves to ``validated/`` and, if the task has outlets, their asset event
    carries ``{uri, version, rows, partition}`` and the crawl's ``scrape`` statistics when the raw
    manifest has them. On failure it moves to ``quarantine/`` with
    ``validation.json``, an ALERT line is logged, the result is pushed to XCom ``validation`` and the
    task fails without retry, so no asset event is emitted and no model sees the data.

    :param raw_folder: storage URI of the raw partition folder (templated).
    """

    template_fields = (*PipelineOperator.template_fields, "raw_folder")
    ui_color = "#fdf1e8"

    def __init__(self, *, raw_folder: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.raw_folder = raw_folder

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.storage import (
            MANIFEST,
            move_partition,
            read_json,
            read_partition,
            write_json,
            write_partition,
        )
        from mlops_pack.core.validate import load_expectations, validate_frame

        raw = self.storage.path(self.raw_folder)
        frame = read_partition(raw)
        scrape_stats = read_json(raw / MANIFEST).get("stats")  # the crawl's, carried into the asset event
        suite_file = self.spec.resolve(self.spec.validation.suite_file) if self.spec.validation.suite_file else None
        expectations = load_expectations([e.model_dump() for e in self.spec.validation.expectations], suite_file)
        result = validate_frame(frame, expectations, suite_name=f"{self.spec.name}_suite")
        result["rows"] = int(len(frame))
        context["ti"].xcom_push(key="validation", value=result)
        key = raw.name
        if not result["success"]:
            target = self.storage.partition("quarantine", key)
            move_partition(raw, target)
            write_json(target / "validation.json", result)
            summary = "; ".join(f"{f['expectation']}({f['column']}) unexpected={f['unexpected_percent']}%"
                                for f in result["failures"][:5])
            self.log.error("ALERT: %s partition %s failed %d of %d expectations and was quarantined to %s: %s",
                           self.spec.name, key, result["failed"], result["evaluated"], target, summary)
            raise GXValidationFailed(f"{self.spec.name} partition {key} failed validation: {summary}")
        manifest = write_partition(self.storage.partition("validated", key), frame, partition=key,
                                   validation={"evaluated": result["evaluated"]})
        extra = {k: manifest[k] for k in ("uri", "folder", "version", "rows", "partition")}
        if scrape_stats:
            extra["scrape"] = scrape_stats
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra
        self.log.info("%s partition %s passed %d expectations: %d rows, version %s", self.spec.name, key,
                      result["evaluated"], manifest["rows"], manifest["version"])
        return extra
