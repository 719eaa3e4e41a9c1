"""The deferrable change sensor: defers with plain kwargs, and its trigger fires only on a change."""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow.sdk.exceptions import TaskDeferred
from mlops_pack.sensors.source_change import SourceChangeSensor
from mlops_pack.triggers.source_change import SourceChangeTrigger

from tests.support.hostile_site import HostileSite
from tests.support.specs import write_spec


@pytest.fixture
def site():
    site = HostileSite().start()
    yield site
    site.stop()


def test_the_sensor_defers_to_a_serializable_trigger(tmp_path, site):
    spec = write_spec(tmp_path, site.base)
    sensor = SourceChangeSensor(task_id="wait", spec_path=str(spec), urls=[f"{site.base}/etag"],
                                storage_root=f"file://{tmp_path / 'data'}", poke_interval=60, timeout=3600)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "mlops_pack.triggers.source_change.SourceChangeTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs and kwargs["urls"] == [f"{site.base}/etag"]
    assert deferred.value.method_name == "execute_complete" and deferred.value.timeout.total_seconds() == 3600
    assert site.hits == []  # deferring does no network work in the worker


def _trigger(site, known) -> SourceChangeTrigger:
    from mlops_pack.core.spec import load_spec

    source = {**json.loads(load_spec(write_spec(site.tmp, site.base)).source.model_dump_json()),
              "max_retries": 0}
    return SourceChangeTrigger(source, [f"{site.base}/etag"], known, poll_interval=0.05)


def test_the_trigger_waits_on_304s_then_fires_on_change(tmp_path, site):
    site.tmp = tmp_path
    trigger = _trigger(site, {f"{site.base}/etag": {"etag": '"v1"', "sha256": "old"}})

    async def scenario():
        events = trigger.run()
        first = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0.3)
        assert not first.done()  # unchanged: only 304s
        site.version = 2
        return await asyncio.wait_for(first, 5)

    event = asyncio.run(scenario())
    assert event.payload["status"] == "changed" and event.payload["etag"] == '"v2"'
    polls = [h for p, h in site.hits if p == "/etag"]
    assert len(polls) >= 3 and all(h.get("If-None-Match") == '"v1"' for h in polls)


def test_the_trigger_reports_a_refused_url_at_once(tmp_path, site):
    site.tmp = tmp_path
    trigger = _trigger(site, {})
    trigger.urls = [f"{site.base}/private/secret"]

    async def first_event():
        return await asyncio.wait_for(trigger.run().__anext__(), 5)

    event = asyncio.run(first_event())
    assert event.payload["status"] == "error" and "robots.txt disallows" in event.payload["message"]


def test_execute_complete_fails_clearly_on_error(tmp_path, site):
    sensor = SourceChangeSensor(task_id="wait", spec_path=str(write_spec(tmp_path, site.base)))
    assert sensor.execute_complete({}, {"status": "changed", "url": "u", "etag": None})["url"] == "u"
    with pytest.raises(Exception, match="change check failed: refused"):
        sensor.execute_complete({}, {"status": "error", "message": "refused"})
