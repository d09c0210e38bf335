"""Dead-letter queues: how many messages each holds, and moving them back to their queue.

A message its consumer failed five times parks in its queue's dead-letter queue
(`<queue>-dlq`, kept 14 days). Once the cause is fixed, a redrive moves every message
of one dead-letter queue back to its queue with SQS's own message move task
(StartMessageMoveTask, asynchronous on AWS; the local stack moves them at once), and the
consumers take them as new deliveries. Every consumer is idempotent, so a message whose
work was partly or wholly done before it was dead-lettered does nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws import client
from chalicelib.adapters.queues import queue_url
from chalicelib.config import QUEUES, dead_letter_name, settings

logger = logging.getLogger(__name__)

DEPTH = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")


class UnknownQueue(LookupError):
    """Not one of the stack's queues."""


class RedriveRefused(RuntimeError):
    """SQS would not start the move (one is already running for that queue)."""


@dataclass(frozen=True)
class DeadLetters:
    """One dead-letter queue's depth, as SQS estimates it."""

    queue: str  # the queue whose failures it holds, e.g. `events`
    dead_letter_queue: str  # its physical name, `scenaria-<stage>-events-dlq`
    messages: int  # waiting to be redriven
    in_flight: int  # received by someone and not yet deleted or returned

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "dead_letter_queue": self.dead_letter_queue,
            "messages": self.messages,
            "in_flight": self.in_flight,
        }


def depths() -> list[DeadLetters]:
    """Every queue's dead-letter queue with its depth: one GetQueueAttributes each."""
    return [depth(queue) for queue in QUEUES]


def depth(queue: str) -> DeadLetters:
    """The dead-letter queue of `queue` (`events`, `email`, ...) with its depth."""
    return _depth(queue, _attributes(dead_letter_name(_known(queue)), *DEPTH))


def redrive(queue: str) -> dict[str, Any]:
    """Start moving every message of `queue`'s dead-letter queue back to `queue`.

    Returns the queue, its dead-letter queue's depth when the move started and SQS's
    handle of the move task. Raises UnknownQueue for a name that is not one of the
    stack's queues and RedriveRefused when SQS will not start it.
    """
    dead = _attributes(dead_letter_name(_known(queue)), *DEPTH, "QueueArn")
    destination = _attributes(queue, "QueueArn")["QueueArn"]
    try:
        task = client("sqs").start_message_move_task(
            SourceArn=dead["QueueArn"], DestinationArn=destination
        )
    except ClientError as error:
        if _already_moving(error):
            raise RedriveRefused(error.response["Error"].get("Message", str(error))) from error
        raise
    before = _depth(queue, dead)
    logger.info("redrive started", extra={"queue": queue, "messages": before.messages})
    return {**before.as_dict(), "task_handle": task["TaskHandle"]}


def _depth(queue: str, attributes: dict[str, str]) -> DeadLetters:
    return DeadLetters(
        queue=queue,
        dead_letter_queue=settings().queue(dead_letter_name(queue)),
        messages=int(attributes["ApproximateNumberOfMessages"]),
        in_flight=int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def _already_moving(error: ClientError) -> bool:
    """SQS refusing a move of a queue while another one runs (one at a time per queue):
    an unsupported operation, or an invalid parameter whose message says a task is
    already running."""
    answer = error.response.get("Error", {})
    code, message = answer.get("Code", ""), answer.get("Message", "").lower()
    return "UnsupportedOperation" in code or (
        "InvalidParameterValue" in code and "already" in message
    )


def _known(queue: str) -> str:
    if queue not in QUEUES:
        raise UnknownQueue(f"no queue {queue!r}: the queues are {', '.join(QUEUES)}")
    return queue


def _attributes(name: str, *names: str) -> dict[str, str]:
    answer = client("sqs").get_queue_attributes(QueueUrl=queue_url(name), AttributeNames=names)
    attributes: dict[str, str] = answer["Attributes"]
    return attributes
