"""SQS consumers. Each reports partial batch failures, so one bad message is retried
(and dead-lettered after five receives) without its batch-mates."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from chalice import Blueprint
from chalice.app import SQSEvent

from chalicelib.adapters.clock import now
from chalicelib.bootstrap import services
from chalicelib.config import settings
from chalicelib.runtime import (
    channels,
    commerce,
    events,
    membership,
    messages,
    schedules,
    ses_events,
    steps,
)
from chalicelib.runtime.unit_of_work import UnitOfWork

from .observability import logger, metrics

blueprint = Blueprint(__name__)


def consume(
    event: SQSEvent, handle: Callable[[dict[str, Any]], None], unit: UnitOfWork | None = None
) -> dict[str, Any]:
    """Run `handle` on every message body; the answer lists the ones that failed. With a
    buffered `unit` of work for the batch, what its commits dispatched is sent at the end,
    also when some records failed."""

    def record_handler(record: SQSRecord) -> None:
        body = json.loads(record.body)
        # per thread: the local stack runs a queue's consumer beside the others' in one process
        logger.thread_safe_append_keys(
            **{k: body[k] for k in ("instance_id", "scenario_id", "profile_id") if k in body}
        )
        try:
            handle(body)
        finally:
            logger.thread_safe_remove_keys(["instance_id", "scenario_id", "profile_id"])

    processor = BatchProcessor(event_type=EventType.SQS)
    records = event.to_dict().get("Records", [])
    try:
        return process_partial_response(
            event=event.to_dict(), record_handler=record_handler, processor=processor
        )
    finally:  # also when every record failed and the whole batch is retried
        if unit is not None:
            unit.flush()
        failed = len(processor.fail_messages)
        metrics.add_metric(
            name="MessagesHandled", unit=MetricUnit.Count, value=len(records) - failed
        )
        metrics.add_metric(name="MessagesFailed", unit=MetricUnit.Count, value=failed)
        metrics.flush_metrics()


@blueprint.on_sqs_message(queue=settings().queue("events"), batch_size=10)
def handle_events(event: SQSEvent) -> dict[str, Any]:
    """Events: history, captures, goals and wait_for nodes."""
    unit = UnitOfWork(buffered=True)
    events.read_ahead(unit, [record.body for record in event])
    return consume(event, lambda body: events.process(messages.parse_event(body), unit), unit)


@blueprint.on_sqs_message(queue=settings().queue("steps"), batch_size=10)
def handle_steps(event: SQSEvent) -> dict[str, Any]:
    """Wake-ups, webhook results, promo codes, captures, migrations."""
    unit = UnitOfWork(buffered=True)
    steps.read_ahead(unit, [record.body for record in event])
    return consume(event, lambda body: steps.process(messages.parse_step(body), unit), unit)


@blueprint.on_sqs_message(queue=settings().queue("segments"), batch_size=1)
def handle_segments(event: SQSEvent) -> dict[str, Any]:
    """One parallel-Scan segment of a segment campaign or a membership run, or one page of
    a changed product's watchers, per message."""
    return consume(event, lambda body: process_segment(messages.parse_segments(body)))


@blueprint.on_sqs_message(queue=settings().queue("feedback"), batch_size=10)
def handle_feedback(event: SQSEvent) -> dict[str, Any]:
    """Delivery events SES publishes through SNS: delivered, bounced, opened, ..."""
    unit = UnitOfWork(buffered=True)
    return consume(event, lambda body: ses_events.process_notification(body, unit), unit)


def process_segment(job: messages.SegmentsMessage) -> None:
    if isinstance(job, messages.WatchersPage):
        commerce.evaluate_watchers(job)
        return
    if isinstance(job, messages.ScanMembership):
        wired = services()
        scanned = membership.process_scan(wired.storage, wired.queues, job, now())
        logger.info(
            "membership scanned",
            extra={"run_id": job.run_id, "scanned": scanned.scanned, "changed": scanned.changed},
        )
        return
    result = schedules.process_segment(job, now())
    logger.info(
        "segment scanned",
        extra={"run_id": job.run_id, "scanned": result.scanned, "matched": result.matched},
    )


def _channel(name: str) -> Callable[[SQSEvent], dict[str, Any]]:
    def handle_channel(event: SQSEvent) -> dict[str, Any]:
        unit = UnitOfWork(buffered=True)
        channels.read_ahead(unit, [record.body for record in event])
        return consume(
            event, lambda body: channels.deliver(messages.parse_channel(body), unit), unit
        )

    handle_channel.__name__ = f"handle_{name}"
    handle_channel.__doc__ = f"The {name} channel: deliver queued {name} messages."
    return handle_channel


# A webhook call may take up to its node's timeout (at most 25 s): one call per run, so a
# batch never outlasts the function's 30 seconds. Providers answer in milliseconds.
for _name, _batch in (("email", 10), ("sms", 10), ("push", 10), ("webhook", 1)):
    blueprint.on_sqs_message(
        queue=settings().queue(_name), batch_size=_batch, name=f"handle_{_name}"
    )(_channel(_name))
