"""QueueMessageTrigger: one asset event per message of a Redis pub/sub channel or an SQS queue.

An ``AssetWatcher`` runs it in the triggerer; each message becomes an event of the watched asset with
``extra = {"from_trigger": true, "payload": <core.inbox.parse_message(...)>}``, which starts the
DAGs scheduled on that asset and tells the run which file and partition the message announces.

Why not common-messaging's ``MessageQueueTrigger``: that provider is not installed here, and it
dispatches to the providers' triggers, which end after one message (Redis ``AwaitMessageTrigger``
subscribes anew for the next one, so a message published in between is lost). This trigger keeps
one subscription (or one SQS poll loop) for as long as the triggerer runs it, and goes through the
same connections (a ``redis`` connection; an ``aws`` connection read by the Amazon provider's
``AwsConnectionWrapper``: keys, region, ``endpoint_url``), looked up with the async API.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

SCHEMES = ("redis+pubsub", "sqs")
DEFAULT_CONN = {"redis+pubsub": "redis_default", "sqs": "aws_default"}


class QueueMessageTrigger(BaseEventTrigger):
    """Yield ``TriggerEvent(payload)`` for every message on ``queue``.

    :param scheme: ``redis+pubsub`` (``queue`` is a channel) or ``sqs`` (``queue`` is the queue URL).
    :param queue: channel name or queue URL.
    :param conn_id: Redis or AWS connection; default ``redis_default`` / ``aws_default``.
    :param poll_interval: seconds to wait for a message per poll (SQS long polling, at most 20).
    """

    def __init__(self, *, scheme: str, queue: str, conn_id: str | None = None, poll_interval: float = 1.0):
        super().__init__()
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {list(SCHEMES)}, got {scheme!r}")
        self.scheme, self.queue = scheme, queue
        self.conn_id = conn_id or DEFAULT_CONN[scheme]
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("mlops_pack.triggers.queue.QueueMessageTrigger",
                {"scheme": self.scheme, "queue": self.queue, "conn_id": self.conn_id,
                 "poll_interval": self.poll_interval})

    async def run(self):
        # Client libraries are imported in a thread: an import on the event loop stalls every trigger.
        modules = ("redis",) if self.scheme == "redis+pubsub" else (
            "boto3", "airflow.providers.amazon.aws.utils.connection_wrapper")
        await asyncio.to_thread(lambda: [importlib.import_module(m) for m in modules])
        messages = self._redis() if self.scheme == "redis+pubsub" else self._sqs()
        async for payload in messages:
            self.log.info("Message on %s %s: %s", self.scheme, self.queue, str(payload)[:500])
            yield TriggerEvent(payload)

    async def _redis(self):
        import redis
        from airflow.sdk import BaseHook

        from mlops_pack.core.inbox import parse_message

        # The async lookup: a sync one from a worker thread waits on the triggerer's event loop.
        conn = await BaseHook.aget_connection(self.conn_id)
        extra = conn.extra_dejson
        client = redis.Redis(host=conn.host or "localhost", port=int(conn.port or 6379), db=int(extra.get("db") or 0),
                             username=conn.login or None, password=conn.password or None,
                             ssl=bool(extra.get("ssl", False)))
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await asyncio.to_thread(pubsub.subscribe, self.queue)
        try:
            while True:
                message = await asyncio.to_thread(pubsub.get_message, timeout=self.poll_interval)
                if message and message.get("type") == "message":
                    yield parse_message(message["data"], source=f"redis+pubsub://{self.queue}")
        finally:
            await asyncio.to_thread(pubsub.close)

    async def _sqs(self):
        import boto3
        from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper
        from airflow.sdk import BaseHook

        from mlops_pack.core.inbox import parse_message

        wrapper = AwsConnectionWrapper(await BaseHook.aget_connection(self.conn_id))
        session = boto3.session.Session(aws_access_key_id=wrapper.aws_access_key_id,
                                        aws_secret_access_key=wrapper.aws_secret_access_key,
                                        aws_session_token=wrapper.aws_session_token, region_name=wrapper.region_name)
        client = session.client("sqs", endpoint_url=wrapper.get_service_endpoint_url("sqs"),
                                config=wrapper.botocore_config)
        wait = max(0, min(20, int(self.poll_interval)))
        while True:
            answer = await asyncio.to_thread(client.receive_message, QueueUrl=self.queue, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=wait)
            received = answer.get("Messages", [])
            for message in received:
                yield parse_message(message.get("Body", ""), source=self.queue, message_id=message.get("MessageId"))
                # Deleted once handed to the triggerer: a crash before this redelivers the message, which
                # is harmless (a message names data, and the same data makes the same partition).
                await asyncio.to_thread(client.delete_message, QueueUrl=self.queue,
                                        ReceiptHandle=message["ReceiptHandle"])
            if not received and wait == 0:
                await asyncio.sleep(self.poll_interval)
