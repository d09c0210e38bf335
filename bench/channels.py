"""The e-mail worker's throughput: `python -m bench.channels` (part of `make bench`).

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
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from typing import Any

from bench.runtime import RESULTS, in_process_stack
from chalicelib.local.stack import forget_caches

EMAILS = int(os.environ.get("BENCH_EMAILS", "300"))


def email_worker_figures() -> dict[str, tuple[float, str]]:
    with in_process_stack():
        forget_caches()
        from moto.ses.models import ses_backends

        from app import app
        from chalicelib.adapters.aws import client, count_requests
        from chalicelib.adapters.clock import now
        from chalicelib.local.stack import Runtime, create_resources
        from chalicelib.runtime import profiles, scenarios
        from chalicelib.runtime.journeys import capture_profile
        from chalicelib.scenarios.facts import Event

        create_resources()
        meta = scenarios.create(
            {
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
        )
        scenarios.activate(meta["scenario_id"])
        runtime = Runtime(app)
        email = next(pump for pump in runtime.pumps if pump.queue == "email")
        others = [pump for pump in runtime.pumps if pump.queue != "email"]
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
                for n in range(EMAILS)
            ],
        )
        entry = Event("capture", now(), {}, id="bench")
        for n in range(EMAILS):
            capture_profile(meta["scenario_id"], "customers", f"p{n}", entry)
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
    figures = email_worker_figures()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name, (value, unit) in figures.items():
        print(f"{name}: {value:.2f} {unit}")
        results[name] = {"value": round(value, 3), "unit": unit}
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
