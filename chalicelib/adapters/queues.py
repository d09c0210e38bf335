"""SQS: JSON messages to the stack's queues, in batches of ten."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from chalicelib.config import settings

from .aws import client

MAX_DELAY_SECONDS = 900  # SQS's limit: 15 minutes

_urls: dict[str, str] = {}
_lock = threading.Lock()


def queue_url(name: str) -> str:
    """The URL of one of the stack's queues (`events`, `steps`, `email`, ...)."""
    physical = settings().queue(name)
    with _lock:
        url = _urls.get(physical)
    if url is None:
        url = client("sqs").get_queue_url(QueueName=physical)["QueueUrl"]
        with _lock:
            _urls[physical] = url
    return url


def forget_urls() -> None:
    with _lock:
        _urls.clear()


def send(queue: str, body: dict[str, Any], delay: int = 0) -> None:
    send_batch(queue, [(body, delay)])


def send_batch(queue: str, messages: Iterable[tuple[dict[str, Any], int]]) -> int:
    """Send messages (body, delay seconds) with SendMessageBatch; returns the calls made.

    Entries SQS reports as failed are sent again; a second failure raises, so the
    caller's own input is redelivered rather than anything being lost.
    """
    pending = [
        (json.dumps(body, default=str), max(0, min(MAX_DELAY_SECONDS, delay)))
        for body, delay in messages
    ]
    calls = 0
    url = queue_url(queue) if pending else ""
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
