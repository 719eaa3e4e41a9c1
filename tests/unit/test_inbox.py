"""What a queue message or an upstream event asks an ingest run for."""

from __future__ import annotations

import json

import pytest
from mlops_pack.core.inbox import MAX_MESSAGE_CHARS, MessageError, parse_message, request_of, requests_of


def test_a_json_message_becomes_the_payload_with_its_origin():
    payload = parse_message(b'{"partition": "2026-11-02", "file": "in/a.csv"}', source="sqs://q", message_id="m1")
    assert payload == {"partition": "2026-11-02", "file": "in/a.csv", "source": "sqs://q", "message_id": "m1"}
    # The message cannot forge its origin.
    assert parse_message('{"source": "x"}', source="redis+pubsub://c")["source"] == "redis+pubsub://c"


def test_other_messages_are_kept_as_text_and_ask_for_nothing():
    for body in ("hello", "[1, 2]", "{broken"):
        payload = parse_message(body, source="c")
        assert payload["body"] == body and request_of({"payload": payload}) == {"partition": None, "files": []}
    huge = parse_message(json.dumps({"partition": "x" * MAX_MESSAGE_CHARS}), source="c")
    assert huge["truncated"] and len(huge["body"]) == 1000 and request_of({"payload": huge})["partition"] is None


def test_requests_come_from_the_payload_or_the_extra_itself():
    assert request_of({"from_trigger": True, "payload": {"partition": "p", "files": ["a", "b"], "file": "c"}}) == \
        {"partition": "p", "files": ["c", "a", "b"]}
    assert request_of({"partition": 20261102, "file": "a"}) == {"partition": "20261102", "files": ["a"]}
    with pytest.raises(MessageError, match="'files' a list"):
        request_of({"files": "a.csv"})
    with pytest.raises(MessageError, match="'partition' must be text"):
        request_of({"partition": {"day": 1}})


def test_the_same_message_twice_asks_once():
    message = {"payload": {"partition": "p", "file": "a.csv"}}
    other = {"payload": {"partition": "q", "file": "b.csv"}}
    assert requests_of([message, message, other]) == [{"partition": "p", "files": ["a.csv"]},
                                                      {"partition": "q", "files": ["b.csv"]}]
