"""SourceChangeSensor: wait, deferred in the triggerer, until a pipeline's source content changes."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from mlops_pack.tasks import PipelineTaskMixin, check_spec_path
from mlops_pack.triggers.source_change import SourceChangeTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class SourceChangeSensor(PipelineTaskMixin, BaseSensorOperator):
    """Succeed when one of the source's pages changed since the last crawl, for ingest-on-change.

    The baseline is the crawl state the scrape task keeps (``state/scrape_state.json``): stored
    ETag/Last-Modified make each poll a conditional request, the stored body hash decides. A URL
    never crawled counts as changed. Deferrable by default: the wait holds no worker slot.
    Returns (XCom) ``{url, etag, last_modified, sha256}`` of the changed page.

    :param spec_path: path of the pipeline spec YAML (templated).
    :param urls: URLs to watch (templated); default: the spec's ``source.start_urls``.
    :param storage_root: override of ``[mlops] storage_root`` (templated).
    :param deferrable: wait in the triggerer (default) or poke from a worker.
    """

    template_fields = ("spec_path", "urls", "storage_root")

    def __init__(self, *, spec_path: str, urls: list[str] | None = None, storage_root: str | None = None,
                 deferrable: bool = True, poke_interval: float = 300.0, **kwargs: Any):
        super().__init__(poke_interval=poke_interval, **kwargs)
        spec_path = check_spec_path(spec_path)
        if urls is not None and not isinstance(urls, list | str):
            raise ValueError(f"urls must be a list of URLs, got {type(urls).__name__}")
        self.spec_path, self.urls, self.storage_root, self.deferrable = str(spec_path), urls, storage_root, deferrable

    def _watch(self) -> tuple[list[str], dict[str, dict]]:
        from mlops_pack.core.storage import read_json
        from mlops_pack.hooks.scrape import STATE_FILE

        urls = [self.urls] if isinstance(self.urls, str) else list(self.urls or self.spec.source.start_urls)
        state_path = self.storage.state(STATE_FILE)
        pages = read_json(state_path).get("pages", {}) if state_path.exists() else {}
        known = {u: {k: pages[u].get(k) for k in ("etag", "last_modified", "sha256")} for u in urls if u in pages}
        return urls, known

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        urls, known = self._watch()
        self.defer(trigger=SourceChangeTrigger(self.spec.source.model_dump(mode="json"), urls, known,
                                               poll_interval=self.poke_interval),
                   method_name="execute_complete", timeout=dt.timedelta(seconds=self.timeout))

    def poke(self, context: Context) -> PokeReturnValue | bool:
        import asyncio

        from mlops_pack.core.change import changed_url

        urls, known = self._watch()
        changed = asyncio.run(changed_url(self.spec.source, urls, known))
        return PokeReturnValue(is_done=True, xcom_value=changed) if changed else False

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "changed":
            raise AirflowException(f"{self.spec.name}: change check failed: {event.get('message', event)}")
        self.log.info("%s changed: %s", self.spec.name, event["url"])
        return {k: event.get(k) for k in ("url", "etag", "last_modified", "sha256")}
