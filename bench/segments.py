"""Segment membership's cost: `python -m bench.segments` (part of `make bench`).

Prints `name: value unit` lines and merges them into bench/results.json. On in-process
moto through the real handlers, AWS requests counted with botocore event hooks as in
`bench.runtime` (the queue polling the event source mappings do included):

- a profile change (an upsert through the API that moves a profile from one segment
  into another, and the consumption of its events) with 10 segments defined, against
  the same change with none defined: the requests membership adds per change;
- the daily re-evaluation over 1,000 profiles with 10 segments defined, 2 of them
  relative to now: the fan-out, the parallel Scan and the writes of the half of the
  profiles whose membership changes (one TransactWriteItems each, with its events'
  outbox rows), per 1,000 profiles; and apart, the consumption of the `segment.exited`
  events they announce (the events queue, as any event's).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.runtime import RESULTS, Api, JourneyMeter, LambdaMeter, in_process_stack
from chalicelib.bootstrap import bootstrap, services

CHANGES = 40  # profile changes measured
PROFILES = 1_000  # profiles the daily run re-evaluates
START = datetime(2026, 6, 1, 10, tzinfo=UTC)


def segment_definitions() -> dict[str, dict[str, Any]]:
    """8 segments on the city field, 2 relative to now (sign-up within 30 and 60 days)."""
    cities = {f"city{n}": {"field": "profile.city", "op": "eq", "value": f"c{n}"} for n in range(8)}
    recent = {
        f"recent{days}": {
            "field": "profile.signed_up_at",
            "op": "gt",
            "value": {"now": f"-P{days}D"},
        }
        for days in (30, 60)
    }
    return {
        sid: {"profile_db": "customers", "where": where}
        for sid, where in {**cities, **recent}.items()
    }


def total(meter: JourneyMeter) -> int:
    return sum(meter.counts.values())


def figures() -> dict[str, tuple[float, str]]:
    with in_process_stack():
        bootstrap()
        from app import app
        from chalicelib.adapters.aws import client
        from chalicelib.adapters.clock import VirtualClock, use_clock
        from chalicelib.local.stack import Runtime, create_resources
        from chalicelib.runtime import membership
        from chalicelib.scenarios.durations import format_datetime

        create_resources()
        clock = VirtualClock(START)
        previous = use_clock(clock)
        dynamodb, sqs = client("dynamodb"), client("sqs")
        try:
            runtime = Runtime(app)
            api = Api(app, LambdaMeter(dynamodb, sqs))

            def changes(meter: JourneyMeter, prefix: str) -> None:
                for n in range(CHANGES):  # created in c0, then moved to c1: the change measured
                    api("PUT", f"/profiles/customers/{prefix}{n}", {"fields": {"city": "c0"}})
                runtime.drain()
                meter.active = True
                for n in range(CHANGES):
                    api("PUT", f"/profiles/customers/{prefix}{n}", {"fields": {"city": "c1"}})
                runtime.drain()
                meter.active = False

            without, with_segments = JourneyMeter(), JourneyMeter()
            for meter in (without, with_segments):
                meter.attach(dynamodb, sqs)
            changes(without, "plain")
            for segment_id, definition in segment_definitions().items():
                api("PUT", f"/segments/{segment_id}", definition)
            runtime.drain()
            changes(with_segments, "member")

            signed_up = format_datetime(START - timedelta(days=20))
            storage = services().storage
            storage.load_profiles(
                "customers",
                {
                    f"d{n}": (
                        {"city": "c2", "signed_up_at": signed_up},
                        # every other one is counted in recent30 still: the daily run takes it out
                        ["city2", "recent30", "recent60"] if n % 2 else ["city2", "recent60"],
                    )
                    for n in range(PROFILES)
                },
            )
            storage.unload_profiles(  # only the daily run's are scanned
                "customers", [f"{p}{n}" for p in ("plain", "member") for n in range(CHANGES)]
            )
            daily, announced = JourneyMeter(), JourneyMeter()
            for meter in (daily, announced):
                meter.attach(dynamodb, sqs)
            clock.set(START + timedelta(days=15))  # the 20 days old are now 35: out of recent30
            (segments,) = [pump for pump in runtime.pumps if pump.queue == "segments"]
            daily.active = True
            membership.daily(services().storage, services().queues, clock.now())
            while segments.run_once():
                pass
            daily.active, announced.active = False, True
            runtime.drain()  # the segment.exited events, consumed like any other
            announced.active = False
        finally:
            use_clock(previous)
    print(f"#   one change, no segment: {dict(without.counts)}")
    print(f"#   one change, 10 segments: {dict(with_segments.counts)}")
    print(f"#   daily run: {dict(daily.counts)}")
    print(f"#   its events consumed: {dict(announced.counts)}")
    per_change = total(with_segments) / CHANGES
    return {
        "segment_change_aws_requests": (per_change, "requests"),
        "segment_change_extra_aws_requests": (per_change - total(without) / CHANGES, "requests"),
        "segment_daily_aws_requests_per_1000_profiles": (total(daily) * 1000 / PROFILES, "requests"),
        "segment_daily_write_units_per_1000_profiles": (daily.write_units * 1000 / PROFILES, "WCU"),
        "segment_daily_events_aws_requests_per_1000_profiles": (total(announced) * 1000 / PROFILES, "requests"),
    }  # fmt: skip


def main() -> int:
    found = figures()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name, (value, unit) in found.items():
        print(f"{name}: {value:.2f} {unit}")
        results[name] = {"value": round(value, 3), "unit": unit}
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
