"""The e-mail worker's throughput, and what faults cost it: `python -m bench.channels`
(part of `make bench`).

Prints `name: value unit` lines and merges them into bench/results.json.

BENCH_EMAILS profiles (default 300) enter a one-node scenario that e-mails them; once
every send is committed and queued, the e-mail queue is pumped into the real
`handle_email` handler in batches of ten, as Lambda's event source would, against
in-process moto's SES v2. Measured over that phase only: messages per second and the
AWS requests per message by operation — the claim, the profile read, SES, the `sent`
record (flag, channel counter and `message.sent` event in one transaction) and the
queue traffic. The rate on moto is low and falls as tables grow: moto copies every
table for each TransactWriteItems (to roll it back). The worker's own time per message,
outside AWS calls, is reported beside it; on AWS a message costs that plus the latency of
its requests, which run one after another (so Lambda concurrency, not the worker, sets
the channel's rate).

Then faults, one boundary at a time, each on a fresh stack on a virtual clock:
BENCH_FAULT_EMAILS profiles (default 100) are e-mailed, and one message in
BENCH_FAULT_EVERY (default 10) meets a fault at that boundary of the worker — before its
claim, after its claim (the worker dies holding it), after SES accepted the message (its
answer lost, as in a read timeout; or the worker crashes there), after the row was
recorded `sent`. The queues are drained and the clock moved past the lease, so the
sweeper hands back whatever was left; then moto's SES says how many e-mails each profile
got: `lost` (none) and `duplicated` (more than one) per boundary. Both must be 0.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter
from typing import Any

from bench.runtime import RESULTS, in_process_stack
from chalicelib.bootstrap import bootstrap

EMAILS = int(os.environ.get("BENCH_EMAILS", "300"))
FAULT_EMAILS = int(os.environ.get("BENCH_FAULT_EMAILS", "100"))
FAULT_EVERY = int(os.environ.get("BENCH_FAULT_EVERY", "10"))
BOUNDARIES = (
    "before_claim",
    "after_claim",
    "after_provider_accepted_answer_lost",
    "after_provider_accepted_worker_crashed",
    "after_recording",
)
NEWSLETTER = {
    "name": "Newsletter",
    "profile_db": "customers",
    "entry": "mail",
    "nodes": {
        "mail": {
            "type": "send",
            "channel": "email",
            "template": {
                "subject": "News for {{ profile.first_name }}",
                "html": '<p>Hello</p><a href="https://shop.example/sale">Sale</a>',
            },
        }
    },
}


def email_worker_figures() -> dict[str, tuple[float, str]]:
    with in_process_stack():
        bootstrap()
        from moto.ses.models import ses_backends

        from app import app
        from chalicelib.adapters.aws import client, count_requests
        from chalicelib.local.stack import Runtime, create_resources

        create_resources()
        _newsletter_to(EMAILS)
        runtime = Runtime(app)
        email = next(pump for pump in runtime.pumps if pump.queue == "email")
        others = [pump for pump in runtime.pumps if pump.queue != "email"]
        timer = CallTimer([client(name) for name in ("dynamodb", "sqs", "sesv2")])
        with count_requests() as meter, timer:
            started = time.perf_counter()
            handled = _pump_all(email)
            elapsed = time.perf_counter() - started
        sent = len(ses_backends["123456789012"]["us-east-1"].sent_messages)
        for pump in others:
            _pump_all(pump)
    if sent != EMAILS or handled != EMAILS:
        raise SystemExit(f"bench.channels: {sent} e-mails sent of {EMAILS} ({handled} handled)")
    by_operation = Counter({op: n for (_, op), n in meter.counts.items()})
    figures = {
        "email_worker_messages_per_second": (handled / elapsed, "messages/s"),
        "email_worker_own_ms_per_message": (
            (elapsed - timer.inside) / handled * 1000,
            "ms (outside AWS calls)",
        ),
        "email_worker_requests_per_message": (meter.total / handled, "requests"),
    }
    for operation, count in sorted(by_operation.items()):
        figures[f"email_worker_{operation}_per_message"] = (count / handled, "requests")
    return figures


def _newsletter_to(count: int) -> str:
    """The active newsletter scenario, `count` readers captured into it (their e-mails
    committed and queued); its id."""
    from chalicelib.adapters.clock import now
    from chalicelib.runtime import profiles, scenarios
    from chalicelib.runtime.journeys import capture_profile
    from chalicelib.runtime.unit_of_work import UnitOfWork
    from chalicelib.scenarios.facts import Event

    meta = scenarios.create(NEWSLETTER)
    scenarios.activate(meta["scenario_id"])
    profiles.import_profiles(
        "customers",
        [
            (
                f"p{n}",
                {
                    "first_name": f"Reader {n}",
                    "email": f"reader{n}@example.com",
                    "consents": {"email": True},
                },
            )
            for n in range(count)
        ],
    )
    entry = Event("capture", now(), {}, id="bench")
    for n in range(count):
        capture_profile(UnitOfWork(), meta["scenario_id"], "customers", f"p{n}", entry)
    return str(meta["scenario_id"])


class Fault(RuntimeError):
    """The injected failure."""


def fault_figures() -> dict[str, tuple[float, str]]:
    """Lost and duplicated e-mails with a fault at each boundary of the e-mail worker."""
    figures: dict[str, tuple[float, str]] = {}
    for boundary in BOUNDARIES:
        lost, duplicated = _faulted_run(boundary)
        figures[f"email_faults_{boundary}_lost"] = (lost, f"of {FAULT_EMAILS} e-mails")
        figures[f"email_faults_{boundary}_duplicated"] = (duplicated, f"of {FAULT_EMAILS} e-mails")
    return figures


def _faulted_run(boundary: str) -> tuple[int, int]:
    """E-mail FAULT_EMAILS readers with a fault at `boundary` for one in FAULT_EVERY;
    drain, move past the lease; (lost, duplicated) by what moto's SES sent."""
    from datetime import UTC, datetime, timedelta

    with in_process_stack():
        bootstrap()
        from botocore.exceptions import ReadTimeoutError
        from moto.ses.models import ses_backends

        from app import app
        from chalicelib.adapters.aws import client
        from chalicelib.adapters.clock import VirtualClock, use_clock
        from chalicelib.local.clock import advance_to
        from chalicelib.local.stack import Runtime, create_resources
        from chalicelib.runtime import channels
        from chalicelib.runtime.storage import MessageRow

        os.environ["SCENARIA_SES_SANDBOX"] = "1"  # SES's Send events, as on the local stack
        bootstrap()
        clock = VirtualClock(datetime(2026, 6, 10, 10, tzinfo=UTC))
        previous = use_clock(clock)
        restore: list[tuple[Any, str, Any]] = []

        def patch(owner: Any, name: str, replacement: Any) -> Any:
            original = getattr(owner, name)
            restore.append((owner, name, original))
            setattr(owner, name, replacement)
            return original

        faulted: set[str] = set()

        def chosen(reader: str) -> bool:
            """Whether this reader's message meets the fault (once)."""
            if int(reader.removeprefix("p")) % FAULT_EVERY or reader in faulted:
                return False
            faulted.add(reader)
            return True

        logging.disable(logging.CRITICAL)  # the injected faults, logged as the crashes they are
        try:
            create_resources()
            sqs = client("sqs")
            hand_back = sqs.change_message_visibility  # a failed message comes back at once
            patch(
                sqs,
                "change_message_visibility",
                lambda **a: hand_back(**{**a, "VisibilityTimeout": 0}),
            )
            if boundary in ("before_claim", "after_claim"):
                # a message is claimed as its row is read (`_claim_if_due`), or after a
                # read of its row (`_claim`): the same boundary, chosen by message id
                numbers: dict[str, int] = {}

                def chosen_message(message_id: str) -> bool:
                    number = numbers.setdefault(message_id, len(numbers))
                    if number % FAULT_EVERY or message_id in faulted:
                        return False
                    faulted.add(message_id)
                    return True

                claim_if_due, claim = channels._claim_if_due, channels._claim

                def claiming_if_due(message: Any, now: datetime) -> Any:
                    if boundary == "before_claim" and chosen_message(message.message_id):
                        raise Fault("the worker died before its claim")
                    held, row = claim_if_due(message, now)
                    if boundary == "after_claim" and held and chosen_message(message.message_id):
                        raise Fault("the worker died holding its claim")
                    return held, row

                def claiming(row: MessageRow, now: datetime) -> Any:
                    if boundary == "before_claim" and chosen_message(row.message_id):
                        raise Fault("the worker died before its claim")
                    held = claim(row, now)
                    if boundary == "after_claim" and held and chosen_message(row.message_id):
                        raise Fault("the worker died holding its claim")
                    return held

                patch(channels, "_claim_if_due", claiming_if_due)
                patch(channels, "_claim", claiming)
            elif boundary.startswith("after_provider_accepted"):
                ses = client("sesv2")
                send_email = ses.send_email

                def accepted(**request: Any) -> Any:
                    answer = send_email(**request)
                    reader = "p" + request["Destination"]["ToAddresses"][0].split("@")[0][6:]
                    if chosen(reader):
                        if boundary.endswith("answer_lost"):
                            raise ReadTimeoutError(endpoint_url="https://email.amazonaws.com")
                        raise Fault("the worker crashed after SES accepted")
                    return answer

                patch(ses, "send_email", accepted)
            else:
                finish = channels._finish

                def finishing(held: Any, status: str, *args: Any, **values: Any) -> None:
                    finish(held, status, *args, **values)
                    if status == "sent" and chosen(held.row.profile_id):
                        raise Fault("the worker died after recording the send")

                patch(channels, "_finish", finishing)
            _newsletter_to(FAULT_EMAILS)
            runtime = Runtime(app)
            advance_to(runtime, clock, clock.now() + timedelta(minutes=40))  # two leases
            backend = ses_backends["123456789012"]["us-east-1"]
            got = Counter(m.destinations["ToAddresses"][0] for m in backend.sent_messages)
        finally:
            for owner, name, original in reversed(restore):
                setattr(owner, name, original)
            use_clock(previous)
            os.environ.pop("SCENARIA_SES_SANDBOX", None)
            logging.disable(logging.NOTSET)
    if len(faulted) != -(-FAULT_EMAILS // FAULT_EVERY):
        raise SystemExit(f"bench.channels: {boundary}: {len(faulted)} faults injected")
    readers = [f"reader{n}@example.com" for n in range(FAULT_EMAILS)]
    lost = sum(1 for reader in readers if not got[reader])
    duplicated = sum(got[reader] - 1 for reader in readers if got[reader] > 1)
    return lost, duplicated


class CallTimer:
    """Wall time spent inside AWS client calls (botocore's before-call to after-call)."""

    def __init__(self, clients: list[Any]) -> None:
        self.clients = clients
        self.inside = 0.0
        self._started = 0.0

    def _before(self, **_: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, **_: Any) -> None:
        self.inside += time.perf_counter() - self._started

    def __enter__(self) -> CallTimer:
        for aws in self.clients:
            aws.meta.events.register("before-call", self._before)
            aws.meta.events.register("after-call", self._after)
        return self

    def __exit__(self, *_: object) -> None:
        for aws in self.clients:
            aws.meta.events.unregister("before-call", self._before)
            aws.meta.events.unregister("after-call", self._after)


def _pump_all(pump: object) -> int:
    handled = 0
    while got := pump.run_once():  # type: ignore[attr-defined]
        handled += got
    return handled


def main() -> int:
    figures = email_worker_figures() | fault_figures()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name, (value, unit) in figures.items():
        print(f"{name}: {value:.2f} {unit}")
        results[name] = {"value": round(value, 3), "unit": unit}
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    faulty = [name for name, (value, _) in figures.items() if "_faults_" in name and value]
    if faulty:
        print(f"bench.channels: e-mails lost or sent twice: {', '.join(faulty)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
