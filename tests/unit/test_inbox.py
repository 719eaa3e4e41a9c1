"""What a queue message or an upstream event asks an ingest run for.

The queue events are in the shapes Airflow stores for the providers' triggers that common-messaging's
MessageQueueTrigger runs: ``{"from_trigger": True, "payload": <the trigger's event payload>}``.
"""

from __future__ import annotations

import json

import pytest
from mlops_pack.core.inbox import MessageError, partitions_named, queue_messages, request_of, requests_of


def redis_event(body: str, channel: str = "evq-in") -> dict:
    """An asset event of the redis provider's AwaitMessageTrigger (data decoded to text by the trigger)."""
    return {"from_trigger": True, "payload": {"type": "message", "pattern": None, "channel": channel, "data": body}}


def sqs_event(*bodies: str) -> dict:
    """An asset event of the amazon provider's SqsSensorTrigger: one received batch."""
    batch = [{"MessageId": f"m-{i}", "ReceiptHandle": "r", "MD5OfBody": "x", "Body": body}
             for i, body in enumerate(bodies)]
    return {"from_trigger": True, "payload": {"status": "success", "message_batch": batch}}


def test_redis_and_sqs_messages_ask_for_the_partition_and_file_they_name():
    day = json.dumps({"partition": "2026-11-02", "file": "in/a.csv"})
    assert requests_of([redis_event(day)]) == [{"partition": "2026-11-02", "files": ["in/a.csv"]}]
    other = json.dumps({"partition": "2026-11-03", "files": ["b.csv", "c.csv"]})
    assert requests_of([sqs_event(day, other)]) == [{"partition": "2026-11-02", "files": ["in/a.csv"]},
                                                   {"partition": "2026-11-03", "files": ["b.csv", "c.csv"]}]
    assert partitions_named(sqs_event(day, other, day)) == ["2026-11-02", "2026-11-03"]
    assert [m["origin"] for m in queue_messages(sqs_event(day, day))] == ["SQS message m-0", "SQS message m-1"]


def test_the_same_message_twice_asks_once():
    day = json.dumps({"partition": "p", "file": "a.csv"})
    assert requests_of([redis_event(day), redis_event(day), sqs_event(day, day)]) == \
        [{"partition": "p", "files": ["a.csv"]}]


@pytest.mark.parametrize(("body", "says"), [
    ("{broken", "is not JSON"),
    ("[1, 2]", "is JSON but not an object"),
    ('{"day": "2026-11-02"}', "names no 'partition', 'file' or 'files'"),
    ('{"partition": {"day": 1}}', "'partition' must be text"),
    ('{"files": "a.csv"}', "'files' a list of text"),
])
def test_a_malformed_queue_message_fails_naming_the_message(body, says):
    with pytest.raises(MessageError, match=says) as redis:
        requests_of([redis_event(body, channel="evq-in")])
    assert "Redis message on channel 'evq-in'" in str(redis.value)
    with pytest.raises(MessageError, match=says) as sqs:
        requests_of([sqs_event(json.dumps({"partition": "ok"}), body)])
    assert "SQS message m-1" in str(sqs.value)
    if "JSON" in says:  # the error quotes the body, cut short
        assert repr(body) in str(redis.value)
        with pytest.raises(MessageError) as long:
            requests_of([redis_event("x" * 5000)])
        assert len(str(long.value)) < 600 and "..." in str(long.value)


def test_upstream_and_rest_events_carry_the_keys_in_the_extra_and_may_ask_for_nothing():
    assert request_of({"partition": 20261102, "file": "a"}) == {"partition": "20261102", "files": ["a"]}
    assert requests_of([{"from_rest_api": True}]) == [{"partition": None, "files": []}]
    assert requests_of([{"partition": "p", "files": ["a", "b"], "file": "c"}]) == \
        [{"partition": "p", "files": ["c", "a", "b"]}]
    assert partitions_named({"partition": "p"}) == ["p"] and partitions_named({}) == []
    # A watcher payload of another shape is read like an extra (events stored before the provider triggers).
    assert requests_of([{"from_trigger": True, "payload": {"partition": "p", "file": "a"}}]) == \
        [{"partition": "p", "files": ["a"]}]
    assert queue_messages({"from_trigger": True, "payload": {"partition": "p"}}) is None
    with pytest.raises(MessageError, match="'files' a list"):
        requests_of([{"files": "a.csv"}])
