"""Commerce signals' cost: `python -m bench.commerce` (part of `make bench`).

Prints `name: value unit` lines and merges them into bench/results.json. On in-process
moto through the real handlers, AWS requests counted with botocore event hooks as in
`bench.runtime` (the queue polling the event source mappings do included):

- one price change (`PUT /products/{id}`) of a product 1,000 profiles watch (half on a
  list, half from a view), its fan-out over the segments queue (`evaluate_watchers`,
  100 watchers a message: the watchers pages, the profile reads, the last-order query
  of each price signal, the derived events sent), per watcher; and apart, the
  consumption of the derived events when no scenario takes them (the events queue);
- the time per watcher evaluated: the pure rule `engine.commerce.product_signals` alone;
  the segments handler's own time per watcher (its wall time less the time in moto); its
  billed time (that plus the stated latency of each AWS call, as `bench.runtime` bills);
- the extrapolation to a product 100,000 profiles watch, at the measured cost per watcher;
- the requests of a commerce event that moves no journey (`cart.item_added`,
  `product.viewed`, `order.created` for a profile in no scenario), sent and consumed.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.runtime import RESULTS, Api, JourneyMeter, LambdaMeter, in_process_stack, metered_runtime
from chalicelib.bootstrap import bootstrap, services

WATCHERS = 1_000  # profiles watching the product measured
TARGET = 100_000  # the watchers extrapolated to
EVENTS = 40  # commerce events of each type measured
RULE_RUNS = 200_000  # calls of the pure rule timed
PAGE = 100  # watchers per segments message (`runtime.commerce.WATCHERS_PAGE`)
START = datetime(2026, 6, 1, 10, tzinfo=UTC)


def total(meter: JourneyMeter) -> int:
    return sum(meter.counts.values())


def rule_microseconds() -> float:
    """µs per call of `product_signals` for a watcher whose price drops below the seen one."""
    from chalicelib.engine.commerce import product_signals

    before = {"price": 100, "available": True, "fields": {"brand": "b"}}
    after = {"price": 80, "available": True, "fields": {"brand": "b"}}
    began = time.perf_counter()
    for _ in range(RULE_RUNS):
        product_signals(before, after, None, 100, True, True)
    return (time.perf_counter() - began) * 1e6 / RULE_RUNS


def figures() -> dict[str, tuple[float, str]]:
    with in_process_stack():
        bootstrap()
        from app import app
        from chalicelib.adapters.aws import client
        from chalicelib.adapters.clock import VirtualClock, use_clock
        from chalicelib.local.stack import create_resources
        from chalicelib.runtime.storage import ListLine, ProductView

        create_resources()
        clock = VirtualClock(START)
        previous = use_clock(clock)
        dynamodb, sqs = client("dynamodb"), client("sqs")
        try:
            lambdas = LambdaMeter(dynamodb, sqs)
            runtime = metered_runtime(app, lambdas)
            api = Api(app, lambdas)
            storage = services().storage

            api("PUT", "/products/p1", {"price": 100, "available": True})
            storage.load_profiles(
                "customers", {f"w{n}": ({"city": "c"}, []) for n in range(WATCHERS)}
            )
            seen = START - timedelta(days=1)
            for n in range(WATCHERS):  # half on the wishlist, half from a view, at 100
                if n % 2:
                    storage.record_view("customers", f"w{n}", ProductView("p1", 100, seen))
                else:
                    line = ListLine("p1", 1, 100, seen, seen)
                    storage.put_line("customers", f"w{n}", "wishlist", line)
            runtime.drain()
            clock.set(START + timedelta(minutes=1))

            fan_out, consumed = JourneyMeter(), JourneyMeter()
            for meter in (fan_out, consumed):
                meter.attach(dynamodb, sqs)
            (segments,) = [pump for pump in runtime.pumps if pump.queue == "segments"]
            fan_out.active = True
            api("PUT", "/products/p1", {"price": 80})
            lambdas.active = True  # the segments handler's invocations only
            while segments.run_once():
                pass
            fan_out.active = lambdas.active = False
            invocations = lambdas.invocations["handle_segments"]
            segments_seconds = lambdas.billed["handle_segments"]
            compute_seconds = segments_seconds - lambdas.latency_seconds
            consumed.active = True
            runtime.drain()  # the derived events, consumed like any other
            consumed.active = False
            derived = fan_out.counts["sqs.SendMessageBatch"]

            events = JourneyMeter()
            events.attach(dynamodb, sqs)
            samples = {
                "cart.item_added": lambda n: {"product_id": "p1", "quantity": 1},
                "product.viewed": lambda n: {"product_id": "p1"},
                "order.created": lambda n: {
                    "order_id": f"o{n}", "items": [{"item_id": "i1", "product_id": "p1", "quantity": 1, "price": 80}],
                },
            }  # fmt: skip
            per_event: dict[str, dict[str, int]] = {}
            for event_type, data in samples.items():
                events.counts.clear()
                events.active = True
                for n in range(EVENTS):
                    event = {
                        "type": event_type, "profile_db": "customers",
                        "profile_id": f"buyer{n}", "data": data(n),
                    }  # fmt: skip
                    api("POST", "/events", event)
                runtime.drain()
                events.active = False
                per_event[event_type] = dict(events.counts)
        finally:
            use_clock(previous)
    print(f"#   price change, {WATCHERS} watchers: {dict(fan_out.counts)}")
    print(f"#   its {derived} derived-event batches consumed: {dict(consumed.counts)}")
    for event_type, counts in per_event.items():
        print(f"#   {EVENTS} {event_type}, no scenario: {counts}")
    per_watcher = total(fan_out) / WATCHERS
    seconds_per_watcher = segments_seconds / WATCHERS
    pages = -(-TARGET // PAGE)
    found = {
        "commerce_price_change_aws_requests_per_watcher": (per_watcher, "requests"),
        "commerce_price_change_pages_per_watcher": (invocations / WATCHERS, "messages"),
        "commerce_price_change_queries_per_watcher": (
            fan_out.counts["dynamodb.Query"] / WATCHERS, "requests"),
        "commerce_price_change_profile_reads_per_watcher": (
            fan_out.counts["dynamodb.GetItem"] / WATCHERS, "requests"),
        "commerce_price_change_event_sends_per_watcher": (
            fan_out.counts["sqs.SendMessageBatch"] / WATCHERS, "requests"),
        "commerce_derived_event_consumption_aws_requests_per_watcher": (
            total(consumed) / WATCHERS, "requests"),
        "commerce_product_signals_us_per_watcher": (rule_microseconds(), "us"),
        "commerce_evaluation_us_per_watcher": (compute_seconds * 1e6 / WATCHERS, "us"),
        "commerce_evaluation_billed_us_per_watcher": (seconds_per_watcher * 1e6, "us"),
        "commerce_segments_invocations_per_1000_watchers": (
            invocations * 1000 / WATCHERS, "invocations"),
        "commerce_100k_watchers_pages": (pages, "messages"),
        "commerce_100k_watchers_aws_requests": (per_watcher * TARGET, "requests"),
        "commerce_100k_watchers_lambda_invocations": (invocations * TARGET / WATCHERS, "invocations"),
        "commerce_100k_watchers_billed_seconds": (seconds_per_watcher * TARGET, "s"),
    }  # fmt: skip
    for event_type, counts in per_event.items():
        name = event_type.replace(".", "_")
        found[f"commerce_{name}_aws_requests"] = (sum(counts.values()) / EVENTS, "requests")
    return found


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
