"""Queue messages and upstream events that start an ingest run: what each asks for.

Plain functions, no Airflow import. A queue message (Redis pub/sub, SQS) is a JSON object naming the
data it announces; an upstream or REST asset event may carry the same keys in its extra::

    {"partition": "2026-11-02", "file": "in/2026-11-02.csv"}      # or "files": [...]

``partition`` becomes the run's data key (docs/storage.md); ``file``/``files`` are read by a file
source even when unchanged.

Queue messages reach the run as the events of the ``<name>.inbox`` asset's watchers
(common-messaging's ``MessageQueueTrigger``, which runs the provider's trigger): Airflow stores each
trigger event as ``extra = {"from_trigger": true, "payload": <the trigger's event payload>}``, and
the payload is the provider's, not ours:

- Redis pub/sub (redis provider ``AwaitMessageTrigger``): one message,
  ``{"type": "message", "channel": ..., "data": <body text>, "pattern": null}``;
- SQS (amazon provider ``SqsSensorTrigger``): one received batch,
  ``{"status": "success", "message_batch": [{"MessageId", "Body", ...}, ...]}``.

A queue message that is not a JSON object, or names neither a partition nor a file, fails the run
with an error naming the message (its channel or id and the start of its body): it was sent to start
this pipeline, so ignoring it would hide an upstream mistake. Upstream and REST events need no keys
(without them the source reads what is new).
"""

from __future__ import annotations

import json
from typing import Any

from mlops_pack.core.errors import MlopsError

QUOTED_CHARS = 200  # how much of a bad message an error quotes
EXAMPLE = '{"partition": "2026-11-02", "file": "2026-11-02.csv"}'


class MessageError(MlopsError, ValueError):
    """A message or event asks for something malformed; the message says which message and what."""


def queue_messages(extra: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The queue messages carried by one asset event's ``extra``: ``[{"origin", "body"}]`` (``origin`` names
    the message in errors), or None when the event does not come from a queue watcher."""
    if not extra.get("from_trigger"):
        return None
    payload = extra.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("message_batch"), list):  # SQS: one batch
        return [{"origin": f"SQS message {m.get('MessageId', '?')}", "body": m.get("Body")}
                for m in payload["message_batch"] if isinstance(m, dict)]
    if isinstance(payload, dict) and payload.get("type") in ("message", "pmessage") and "data" in payload:
        return [{"origin": f"Redis message on channel {payload.get('channel')!r}", "body": payload["data"]}]
    return None  # another watcher's event: its payload is read like an upstream event's extra


def message_fields(message: dict[str, Any]) -> dict[str, Any]:
    """The JSON object of one queue message; MessageError (naming it) if it is not one or asks for nothing."""
    fields, quoted = message_json(message)
    if not any(fields.get(k) for k in ("partition", "file", "files")):
        raise MessageError(f"{message['origin']} names no 'partition', 'file' or 'files': {quoted}")
    try:
        request_of(fields)
    except MessageError as exc:
        raise MessageError(f"{message['origin']}: {exc}") from None
    return fields


def message_json(message: dict[str, Any], example: str = EXAMPLE) -> tuple[dict[str, Any], str]:
    """(the JSON object of one queue message, its body quoted for errors); MessageError naming the message
    when it is not a JSON object (``example`` shows what one looks like)."""
    body = message["body"]
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    quoted = repr(text[:QUOTED_CHARS]) + ("..." if len(text) > QUOTED_CHARS else "")
    try:
        fields = json.loads(text) if isinstance(body, str) else body
    except ValueError as exc:
        raise MessageError(f"{message['origin']} is not JSON ({exc}): {quoted}. A message names what it "
                           f"announces, e.g. {example}") from None
    if not isinstance(fields, dict):
        raise MessageError(f"{message['origin']} is JSON but not an object: {quoted}. A message names what it "
                           f"announces, e.g. {example}")
    return fields, quoted


def request_of(fields: dict[str, Any]) -> dict[str, Any]:
    """``{"partition": str|None, "files": [str]}`` asked for by one message's fields or one event's extra."""
    partition = fields.get("partition")
    files = fields.get("files", [])
    if fields.get("file"):
        files = [fields["file"], *files] if isinstance(files, list) else files
    if partition is not None and not isinstance(partition, str | int):
        raise MessageError(f"'partition' must be text, got {type(partition).__name__}: {partition!r}")
    if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
        raise MessageError(f"'file' must be text and 'files' a list of text, got {files!r}")
    return {"partition": str(partition) if partition is not None else None, "files": list(dict.fromkeys(files))}


def requests_in(extra: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One request per message of a queue watcher's event, else one for the event's extra (a watcher
    payload of another shape, or an upstream or REST event carrying the keys itself)."""
    extra = extra or {}
    messages = queue_messages(extra)
    if messages is not None:
        return [request_of(message_fields(m)) for m in messages]
    fields = extra.get("payload") if isinstance(extra.get("payload"), dict) else extra
    return [request_of(fields)]


def requests_of(extras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One request per partition asked for, in event order; messages asking for the same thing are merged
    (the same message delivered twice asks once)."""
    merged: dict[str | None, list[str]] = {}
    for extra in extras:
        for request in requests_in(extra):
            files = merged.setdefault(request["partition"], [])
            files.extend(f for f in request["files"] if f not in files)
    return [{"partition": key, "files": files} for key, files in merged.items()]


def partitions_named(extra: dict[str, Any] | None) -> list[str]:
    """The partitions one event's messages (or extra) name, in order, without repeats."""
    keys = [r["partition"] for r in requests_in(extra) if r["partition"] is not None]
    return list(dict.fromkeys(keys))
