"""The local stack: moto on loopback, the stack's tables and queues, and the machinery
AWS would provide — queue pumps into the app's own handlers, the minute schedules, and
(with a virtual clock) time that moves on request.

Everything calls the very handler functions Lambda calls: the pumps build Lambda's
SQS events, the scheduler builds its scheduled events.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from types import SimpleNamespace
from typing import Any

from chalicelib.bootstrap import bootstrap

logger = logging.getLogger(__name__)

SCHEDULE_EVERY = 60.0  # seconds: every schedule of the app is rate(1 minute)
REAP_EVERY = timedelta(minutes=15)  # how often expired items go; DynamoDB's TTL takes longer


def configure_environment(virtual: bool, public_url: str | None = None) -> None:
    """Point the stack's configuration at moto, in this process; call before importing
    the app.

    Webhook nodes may call loopback addresses (the local stack's own sinks, a test
    server); the Web Push key is made anew for each run unless one is given; moto's SES
    publishes no events, so the stack publishes the Send events SES would. Every push goes
    to the stack's own push sink, whatever its subscription's endpoint (SPEC §3.5).
    """
    os.environ.update(
        SCENARIA_STAGE=os.environ.get("SCENARIA_STAGE", "local"),
        SCENARIA_AWS_ENDPOINT="",
        SCENARIA_API_KEY=os.environ.get("SCENARIA_API_KEY", "local-dev-key"),
        SCENARIA_PRECISE_DELAYS="0" if virtual else os.environ.get("SCENARIA_PRECISE_DELAYS", "1"),
        SCENARIA_WEBHOOK_ALLOW=os.environ.get("SCENARIA_WEBHOOK_ALLOW", "127.0.0.0/8,::1/128"),
        SCENARIA_VAPID_PRIVATE_KEY=os.environ.get("SCENARIA_VAPID_PRIVATE_KEY") or new_vapid_key(),
        SCENARIA_SES_SANDBOX="1",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    if public_url:
        os.environ["SCENARIA_PUBLIC_URL"] = public_url
    base = os.environ.get("SCENARIA_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
    os.environ["SCENARIA_PUSH_SINK"] = f"{base}/local/push"  # served by chalicelib.local.routes
    bootstrap()


def new_vapid_key() -> str:
    """A Web Push (VAPID) signing key: P-256, as base64url DER, the form pywebpush takes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.urlsafe_b64encode(der).decode().rstrip("=")


def create_resources() -> None:
    """Every table and queue of `infra/resources.py`, with dead-letter queues, and the
    e-mail side: the sender's identity, the configuration set and the feedback topic
    that the feedback queue listens to (moto publishes no SES events itself). moto's
    transactions learn to back up only what they touch (`moto_fixes`)."""
    from chalicelib.adapters.aws import client
    from chalicelib.config import settings
    from infra.resources import QUEUE_DEFINITIONS, TABLES, create_table_arguments, dead_letter_name

    from . import message_moves, moto_fixes

    moto_fixes.install()
    message_moves.install()  # dead-letter queue redrive, which moto's SQS lacks
    config = settings()
    dynamodb, sqs = client("dynamodb"), client("sqs")
    for table in TABLES:
        arguments = create_table_arguments(table, config.stage)
        dynamodb.create_table(**arguments)
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=arguments["TableName"],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
    arns = {}
    for queue in QUEUE_DEFINITIONS:
        dead = sqs.create_queue(QueueName=config.queue(dead_letter_name(queue.name)))
        url = sqs.create_queue(
            QueueName=config.queue(queue.name),
            Attributes={
                "VisibilityTimeout": str(queue.visibility_timeout),
                "RedrivePolicy": json.dumps(
                    {
                        "deadLetterTargetArn": _queue_arn(dead["QueueUrl"]),
                        "maxReceiveCount": str(queue.max_receive_count),
                    }
                ),
            },
        )["QueueUrl"]
        arns[queue.name] = _queue_arn(url)
    client("sesv2").create_email_identity(EmailIdentity=parseaddr(config.email_from)[1])
    client("sesv2").create_configuration_set(ConfigurationSetName=config.ses_configuration_set())
    sns = client("sns")
    topic = sns.create_topic(Name=config.feedback_topic())["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arns["feedback"])


def _queue_arn(url: str) -> str:
    from chalicelib.adapters.aws import client

    answer = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(answer["Attributes"]["QueueArn"])


@dataclass
class Pump:
    """Delivers one queue's messages to its handler, deleting only what succeeded."""

    queue: str
    handler: Callable[[dict[str, Any], Any], Any]
    batch_size: int

    def run_once(self, wait: int = 0) -> int:
        """Receive one batch and hand it over; returns how many messages it got.

        `wait`: seconds to long-poll an empty queue (0: answer at once). moto answers a
        long poll as soon as a message is sent, but notices a delayed message coming
        due only once a second.
        """
        from chalicelib.adapters.aws import client
        from chalicelib.adapters.queues import queue_url

        sqs, url = client("sqs"), queue_url(self.queue)
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, self.batch_size),
            AttributeNames=["All"],
            WaitTimeSeconds=wait,
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [_sqs_record(message, url) for message in messages]}
        try:
            result = self.handler(event, _context(self.queue)) or {}
            failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        except Exception:
            logger.exception("handler for %s failed; the batch returns to the queue", self.queue)
            failed = {message["MessageId"] for message in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        if failed:  # SQS would hand them back after the visibility timeout; locally, soon
            for message in messages:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=1
                    )
        return len(messages)


def _sqs_record(message: dict[str, Any], url: str) -> dict[str, Any]:
    from chalicelib.config import settings

    name = url.rsplit("/", 1)[-1]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{settings().region}:000000000000:{name}",
        "awsRegion": settings().region,
    }


def _context(name: str) -> Any:
    return SimpleNamespace(
        function_name=f"scenaria-local-{name}",
        aws_request_id=str(uuid.uuid4()),
        get_remaining_time_in_millis=lambda: 30_000,
    )


def scheduled_event(moment: datetime) -> dict[str, Any]:
    from chalicelib.config import settings

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": settings().region,
        "resources": [],
        "detail": {},
    }


IDLE_POLL = 0.2  # seconds: one pump thread's pause when every queue was empty
PRECISE_QUEUES = frozenset({"steps"})  # where delayed wake-ups come due
PRECISE_POLL = 0.05  # seconds: a real clock's pause between polls of an empty precise queue
PRECISE_THREADS = 2  # a real clock's threads on a precise queue: one may be waiting out a
# wake-up that came a fraction of a second early (steps.wake) while the other takes the next
LONG_POLL = 1  # seconds: a real clock's long poll of any other queue
# what an idle queue has none of, in the order a drain reads them (see Runtime._idle)
IDLE_COUNTS = ("ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessages")


class Runtime:
    """The app's queue pumps and schedules, run in background threads or on demand.

    With a virtual clock one thread pumps every queue in turn, under the runtime's lock,
    so a drain or a clock move finds the queues still. With a real clock every queue has
    a thread of its own, as every queue has its own function on AWS: a slow batch on one
    queue does not hold up another's messages. The steps queue, where delayed wake-ups
    come due, has two, each polling every PRECISE_POLL seconds; the others long-poll.
    """

    def __init__(self, app: Any) -> None:
        from chalice.app import DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig

        from chalicelib.config import settings

        self.app = app
        stage_prefix = settings().queue("")
        self.pumps = [
            Pump(
                source.queue.removeprefix(stage_prefix),
                app.handler_map[source.name],
                source.batch_size,
            )
            for source in app.event_sources
            if isinstance(source, SQSEventConfig)
        ]
        self.schedules = [
            app.handler_map[s.name]
            for s in app.event_sources
            if isinstance(s, ScheduledEventConfig)
        ]
        self.streams = {  # table name → the handler of its stream (the timers' TTL backstop)
            s.stream_arn.split(":table/", 1)[1].split("/stream", 1)[0]: app.handler_map[s.name]
            for s in app.event_sources
            if isinstance(s, DynamoDBEventConfig)
        }
        self._reaped_at: datetime | None = None
        self._lock = threading.RLock()  # one round of work at a time: drains are exact
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def fire_schedules(self, moment: datetime) -> None:
        """What EventBridge does at `moment` (every schedule is a minute's rate), and
        what DynamoDB's TTL would have done by then (see `expire`)."""
        with self._lock:
            for handler in self.schedules:
                try:
                    handler(scheduled_event(moment), _context("schedule"))
                except Exception:
                    logger.exception("scheduled handler failed")
            self.expire(moment)

    def expire(self, moment: datetime) -> int:
        """Remove the items whose TTL is past at `moment`, as DynamoDB would (`ttl.reap`),
        at most once every REAP_EVERY of the stack's clock; returns how many went."""
        from .ttl import reap

        if self._reaped_at is not None and moment - self._reaped_at < REAP_EVERY:
            return 0
        self._reaped_at = moment
        with self._lock:
            try:
                return reap(moment, self._to_stream)
            except Exception:
                logger.exception("removing expired items failed")
                return 0

    def _to_stream(self, table: str, records: list[dict[str, Any]]) -> None:
        """Deliver a table's stream records to its handler, as Lambda's event source would."""
        handler = self.streams.get(table)
        if handler is not None:
            handler({"Records": records}, _context(f"{table}-stream"))

    def drain(self, rounds: int = 10_000) -> int:
        """Run queued work until every queue is empty; returns the messages handled.

        Exact with a virtual clock, whose pump thread waits for the lock; with a real
        clock the queues' own threads may take messages meanwhile."""
        handled = 0
        with self._lock:
            for _ in range(rounds):
                got = sum(pump.run_once() for pump in self.pumps)
                handled += got
                if not got and self._idle():
                    break
        return handled

    def _idle(self) -> bool:
        """Whether no queue holds a message, waiting or in flight.

        Each queue's in-flight count is read before its waiting count: a failed message's
        visibility timeout may run out between the two reads, and read the other way round
        it would be in neither count. While the drain holds the lock nothing receives, so a
        message waiting at the first read is still waiting at the second.
        """
        from chalicelib.adapters.aws import client
        from chalicelib.adapters.queues import queue_url

        sqs = client("sqs")
        for pump in self.pumps:
            for count in IDLE_COUNTS:
                answer = sqs.get_queue_attributes(
                    QueueUrl=queue_url(pump.queue), AttributeNames=[count]
                )
                if int(answer["Attributes"][count]):
                    return False
        return True

    def start(self, clock_is_real: bool) -> None:
        """Pump continuously; with a real clock also fire the schedules every minute."""
        if clock_is_real:
            for pump in self.pumps:
                threads = PRECISE_THREADS if pump.queue in PRECISE_QUEUES else 1
                self._threads.extend(
                    threading.Thread(
                        target=self._pump_queue_forever,
                        args=(pump,),
                        name=f"pump-{pump.queue}-{n}",
                        daemon=True,
                    )
                    for n in range(threads)
                )
            self._threads.append(
                threading.Thread(target=self._schedule_forever, name="schedules", daemon=True)
            )
        else:
            self._threads.append(
                threading.Thread(target=self._pump_forever, name="pumps", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop pumping: each thread ends after its current batch. Waits at most `timeout`
        seconds in all (the threads are daemons: one still busy ends with the process)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _pump_forever(self) -> None:
        """Every queue in turn, one batch each, under the lock (virtual clock)."""
        while not self._stop.is_set():
            with self._lock:
                got = sum(self._pumped(pump) for pump in self.pumps)
            if not got:
                self._stop.wait(IDLE_POLL)

    def _pump_queue_forever(self, pump: Pump) -> None:
        """One queue, batch after batch (real clock)."""
        precise = pump.queue in PRECISE_QUEUES
        while not self._stop.is_set():
            got = self._pumped(pump, wait=0 if precise else LONG_POLL)
            if not got:
                self._stop.wait(PRECISE_POLL if precise else 0)

    def _schedule_forever(self) -> None:
        from chalicelib.adapters.clock import now

        while not self._stop.wait(SCHEDULE_EVERY - time.time() % SCHEDULE_EVERY):
            self.fire_schedules(now())

    def _pumped(self, pump: Pump, wait: int = 0) -> int:
        """`pump.run_once` for a thread that outlives a failed poll, waiting a second."""
        try:
            return pump.run_once(wait)
        except Exception:
            logger.exception("polling %s failed", pump.queue)
            self._stop.wait(1)
            return 0
