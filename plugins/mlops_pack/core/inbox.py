"""Messages and upstream events that start an ingest run: what each asks for.

Plain functions, no Airflow import. A message (Redis pub/sub, SQS) or an upstream asset event's
extra may name the data it announces::

    {"partition": "2026-11-02", "file": "in/2026-11-02.csv"}      # or "files": [...]

``partition`` becomes the run's data key (docs/storage.md); ``file``/``files`` are read by a file
source even when unchanged. A message that is not a JSON object is kept as ``{"body": text}`` and
asks for nothing in particular (the source reads what is new).
"""

from __future__ import annotations

import json
from typing import Any

MAX_MESSAGE_CHARS = 64_000  # an asset event's extra is stored in the metadata DB: keep it small


class MessageError(ValueError):
    """A message asks for something malformed; the message says what."""


def parse_message(body: Any, *, source: str, message_id: str | None = None) -> dict[str, Any]:
    """The payload an AssetWatcher puts on its event for one queue message ``body``.

    ``{"source", "message_id", "body"|fields of the JSON object}``; over-long bodies are cut and
    flagged ``truncated`` (they then ask for nothing).
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    payload: dict[str, Any] = {"source": source}
    if message_id:
        payload["message_id"] = str(message_id)
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    if len(text) > MAX_MESSAGE_CHARS:
        return {**payload, "body": text[:1000], "truncated": True}
    try:
        parsed = json.loads(text) if isinstance(body, str) else body
    except ValueError:
        return {**payload, "body": text}
    if not isinstance(parsed, dict):
        return {**payload, "body": text}
    return {**{k: v for k, v in parsed.items() if k not in ("source", "message_id")}, **payload}


def request_of(extra: dict[str, Any] | None) -> dict[str, Any]:
    """``{"partition": str|None, "files": [str]}`` asked for by one event's extra (a queue message lands
    in ``extra["payload"]``; an upstream or REST event carries the keys in the extra itself)."""
    extra = extra or {}
    fields = extra.get("payload") if isinstance(extra.get("payload"), dict) else extra
    partition = fields.get("partition")
    files = fields.get("files", [])
    if fields.get("file"):
        files = [fields["file"], *files] if isinstance(files, list) else files
    if partition is not None and not isinstance(partition, str | int):
        raise MessageError(f"'partition' must be text, got {type(partition).__name__}: {partition!r}")
    if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
        raise MessageError(f"'file' must be text and 'files' a list of text, got {files!r}")
    return {"partition": str(partition) if partition is not None else None, "files": list(dict.fromkeys(files))}


def requests_of(extras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One request per event, in event order; events asking for the same thing are merged (the same
    message delivered twice asks once)."""
    merged: dict[str | None, list[str]] = {}
    for extra in extras:
        request = request_of(extra)
        files = merged.setdefault(request["partition"], [])
        files.extend(f for f in request["files"] if f not in files)
    return [{"partition": key, "files": files} for key, files in merged.items()]
