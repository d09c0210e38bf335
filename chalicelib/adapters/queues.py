"""SQS: JSON messages to the stack's queues, in batches of ten."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from chalicelib.config import settings
from chalicelib.runtime.messages import QueueMessage

from .aws import client

MAX_DELAY_SECONDS = 900  # SQS's limit: 15 minutes


class SqsQueues:
    """The `Queues` port on SQS: SendMessageBatch, ten a call."""

    def __init__(self) -> None:
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def url(self, name: str) -> str:
        """The URL of one of the stack's queues (`events`, `steps`, `email`, ...)."""
        physical = settings().queue(name)
        with self._lock:
            url = self._urls.get(physical)
        if url is None:
            url = client("sqs").get_queue_url(QueueName=physical)["QueueUrl"]
            with self._lock:
                self._urls[physical] = url
        return url

    def send(self, queue: str, batch: Sequence[tuple[QueueMessage, int]]) -> int:
        return self.send_bodies(queue, [(message.wire(), delay) for message, delay in batch])

    def send_bodies(self, queue: str, bodies: Iterable[tuple[str, int]]) -> int:
        """Send messages (body, delay seconds) with SendMessageBatch; returns the calls made.

        Entries SQS reports as failed are sent again; a second failure raises, so the
        caller's own input is redelivered rather than anything being lost.
        """
        pending = [(body, max(0, min(MAX_DELAY_SECONDS, delay))) for body, delay in bodies]
        return _send(self.url(queue) if pending else "", queue, pending)


def queue_url(name: str) -> str:
    return _sqs().url(name)


def send(queue: str, body: dict[str, Any], delay: int = 0) -> None:
    send_batch(queue, [(body, delay)])


def send_batch(queue: str, messages: Iterable[tuple[dict[str, Any], int]]) -> int:
    """Send plain JSON bodies (body, delay seconds); returns the calls made."""
    bodies = [(json.dumps(body, default=str), delay) for body, delay in messages]
    return _sqs().send_bodies(queue, bodies)


def _sqs() -> SqsQueues:
    from chalicelib.bootstrap import services

    queues = services().queues
    return queues if isinstance(queues, SqsQueues) else SqsQueues()


def _send(url: str, queue: str, pending: list[tuple[str, int]]) -> int:
    calls = 0
    for start in range(0, len(pending), 10):
        chunk = pending[start : start + 10]
        for attempt in range(2):
            calls += 1
            entries = [
                {"Id": str(i), "MessageBody": body, "DelaySeconds": delay}
                for i, (body, delay) in enumerate(chunk)
            ]
            failed = (
                client("sqs").send_message_batch(QueueUrl=url, Entries=entries).get("Failed") or []
            )
            if not failed:
                break
            if attempt == 1:
                raise RuntimeError(f"SQS refused {len(failed)} message(s) for {queue}: {failed[0]}")
            chunk = [chunk[int(f["Id"])] for f in failed]
    return calls
