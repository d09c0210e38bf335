"""SQS's message move task (dead-letter queue redrive) for moto, which lacks it.

`install()` teaches moto's SQS `StartMessageMoveTask` with AWS's contract: every
message waiting in the source queue (a dead-letter queue) is sent, body and attributes,
to the destination queue (without one, the queue whose dead-letter queue it is) as a new
message and deleted from the source. AWS moves them in the background; here they have
moved when the call returns. The stack's code calls the same operation on moto as on
AWS (`chalicelib/runtime/dead_letters.py`).
"""

from __future__ import annotations

import uuid
from typing import Any

MOVE_VISIBILITY = 30  # seconds a message being moved is hidden from other receivers


def install() -> None:
    """Add the operation to moto's SQS (in this process: the in-process mock and the
    threaded server alike); calling it again changes nothing."""
    from moto.sqs.responses import SQSResponse

    SQSResponse.start_message_move_task = _start_message_move_task  # type: ignore[attr-defined]


def _start_message_move_task(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.sqs.exceptions import SQSException

    backend = self.sqs_backend
    source = backend.get_queue(str(self._get_param("SourceArn")).rsplit(":", 1)[-1])
    destination_arn = self._get_param("DestinationArn")
    if destination_arn:
        destination = backend.get_queue(str(destination_arn).rsplit(":", 1)[-1])
    else:
        sources = backend.list_dead_letter_source_queues(source.name)
        if len(sources) != 1:
            raise SQSException(
                "InvalidParameterValue", "give DestinationArn: the queue has no single source"
            )
        destination = sources[0]
    while True:
        messages = backend.receive_message(source.name, 10, 0, MOVE_VISIBILITY, ["All"])
        if not messages:
            break
        for message in messages:
            backend.send_message(
                destination.name, message.body, message_attributes=message.message_attributes
            )
            backend.delete_message(source.name, message.receipt_handle)
    return ActionResult({"TaskHandle": f"local-move-{uuid.uuid4()}"})
