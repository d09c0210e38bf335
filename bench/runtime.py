"""Runtime cost and speed: `python -m bench.runtime` (part of `make bench`).

Prints `name: value unit` lines and merges them into bench/results.json.

- The full cost of a journey of the welcome series, on in-process moto through the real
  handlers (captures, pauses, sends, the webhook, the promo code), its sign-up and its
  confirmation sent through the HTTP API as a client sends them, on a stack past its
  first minute's tick (which lists its listened event types and triggers once in its
  life; until then every event is heard):
  - AWS requests by service and operation, counted with botocore event hooks — the queue
    polling and deleting that Lambda's event source mappings do included;
  - Lambda invocations: each SQS batch handed to a handler (as full as the bench's
    journeys, started together, fill them: a trickle of traffic fills them less), each
    HTTP request, and a schedule's minute tick when it did work for journeys (fired a
    timer, started a run; once per handler and minute). Ticks with nothing to do are the
    stack's fixed cost (two functions once a minute), as are the schedules' index queries;
  - Lambda duration: each invocation's wall time in-process less its time inside AWS
    calls (in-process moto's, nothing like AWS's), plus a stated latency per call
    (AWS_LATENCY: 5 ms a DynamoDB call, 10 ms an SQS call, 30 ms an SES or SNS send),
    rounded up to the millisecond, in GB-seconds at the packaged functions' memory size
    (`.chalice/config.json`). Cold starts' init time is left out;
  - the dollar cost per million journeys at on-demand list prices, by share (DynamoDB,
    SQS, Lambda, API Gateway) and in all; the messages themselves (SES, SMS) are priced
    apart. Beside it Step Functions for the same graph: Standard, per state transition;
    and Express, which cannot hold a journey that waits days (an execution lasts at most
    5 minutes), priced as one execution per waking step (the entry, then each pause's
    end) billed its least (100 ms at 64 MB), plus the EventBridge Scheduler invocation
    that would start each one after a pause: the orchestration alone, as for Standard.
- The requests, invocations and cost of an event that moves no journey: one for a
  profile whose journeys are over, of a type no trigger takes, sent through the API.
- A segment campaign over 10,000 and 100,000 profiles: the fan-out (parallel Scan,
  segment evaluation, SendMessageBatch of captures) in requests and time per profile,
  and the captures themselves per member, measured on the smaller run in batches as the
  steps handler takes them (with the event source mapping's ReceiveMessage and
  DeleteMessageBatch per batch). Up to
  BENCH_SEGMENT_SAMPLE Scan segments of each run are measured (moto reads its whole
  table for every Scan page, so its time per profile grows with the table where
  DynamoDB's does not); the SendMessageBatch calls are counted, not sent to moto,
  whose SQS slows down with queue length.
- Wake-up lateness on the local stack in real time (`python -m chalicelib.local` in a
  subprocess), p50 / p95 / max and early wake-ups: 5-second pauses (the SQS delay path),
  then, on a second stack started with SCENARIA_PRECISE_DELAYS=0, 90-second pauses that
  only the minute sweeper can end (checked: every wake-up comes just after a minute's
  tick). Pauses last a whole number of seconds plus 0.0 to 0.9 s, as pauses after a
  backdated event or another pause do: their ends fall anywhere within a second.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

from chalicelib.bootstrap import bootstrap

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
JOURNEYS = int(os.environ.get("BENCH_JOURNEYS", "40"))
CAMPAIGN_SIZES = tuple(int(n) for n in os.environ.get("BENCH_CAMPAIGN", "10000,100000").split(","))
# Captures measured after a campaign: each one reads moto's whole profile table (its Query
# does) and copies it (its transactions do), so a sample of 500 took many minutes and GBs.
CAPTURE_SAMPLE = int(os.environ.get("BENCH_CAPTURES", "50"))
STEPS_BATCH = 10  # messages handle_steps takes at once (its batch_size)
SEGMENT_SAMPLE = int(os.environ.get("BENCH_SEGMENT_SAMPLE", "4"))  # Scan segments measured per run
LATENCY_PROFILES = int(os.environ.get("BENCH_LATENCY_PROFILES", "40"))  # into a short pause
CRM = "https://crm.example/api/callback"  # the example's call center
SHORT_PAUSE = 5  # seconds: SQS DelaySeconds wake these up (pauses up to 15 minutes)
SWEPT_PAUSE = 90  # seconds: with precise delays off, only the minute sweeper wakes these
SWEPT_PROFILES = int(os.environ.get("BENCH_SWEPT_PROFILES", "20"))
SWEEP_TICK_SLACK = 20  # seconds after a whole minute (the sweeper's tick) a swept wake-up may come

# On-demand list prices, us-east-1, free tiers left out (DESIGN.md).
DYNAMODB_WRITE_UNIT = 0.625e-6
DYNAMODB_READ_UNIT = 0.125e-6
SQS_REQUEST = 0.40e-6
LAMBDA_REQUEST = 0.20e-6  # x86
LAMBDA_GB_SECOND = 0.0000166667  # x86, billed per 1 ms
API_GATEWAY_REQUEST = 3.50e-6  # REST API (what Chalice deploys), first 333 million a month
STEP_FUNCTIONS_TRANSITION = 25e-6  # Standard
EXPRESS_REQUEST = 1.00e-6  # Step Functions Express, per execution
EXPRESS_GB_SECOND = 0.0000166667  # first 1,000 GB-hours a month
EXPRESS_BILLED_GB = 64 / 1024  # memory is billed in 64 MB chunks: a small workflow's is one
EXPRESS_BILLED_SECONDS = 0.1  # duration is billed per 100 ms: what one short execution bills
SCHEDULER_INVOCATION = 1.00e-6  # EventBridge Scheduler: what would start each waking execution

# Stated AWS latency of one API call from Lambda, in place of in-process moto's time
AWS_LATENCY = {"dynamodb": 0.005, "sqs": 0.010}
SENDING_LATENCY = 0.030  # SES and SNS (the channels' sends)
LAMBDA_MEMORY_GB = (
    json.loads((ROOT / ".chalice" / "config.json").read_text())["lambda_memory_size"] / 1024
)


def in_process_stack() -> Any:
    """Environment for in-process moto, set before the app is imported."""
    os.environ.pop("SCENARIA_AWS_ENDPOINT", None)
    os.environ.update(
        SCENARIA_STAGE="bench", SCENARIA_API_KEY="bench", SCENARIA_PRECISE_DELAYS="0",
        SCENARIA_WEBHOOK_ALLOW="127.0.0.0/8",
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_LOG_LEVEL="ERROR", POWERTOOLS_METRICS_DISABLED="true",
    )  # fmt: skip
    from moto import mock_aws

    return mock_aws()


class JourneyMeter:
    """The requests journeys cause, by operation, and the DynamoDB capacity units on-demand
    DynamoDB bills for them, worked out from the items as in-process moto holds them before
    and after each call (an item's size as DynamoDB counts it, by moto's `Item.size()`,
    which leaves out the few bytes of overhead of a number, a list or a map):

    - a write (PutItem, UpdateItem, DeleteItem, each item of a BatchWriteItem) costs a unit
      per KB of the larger of the item before and after it: the whole item, however little
      an update sets, and as much when its condition fails; an item of a TransactWriteItems,
      a ConditionCheck's too, costs twice that. Each global index that holds the item before
      or after a write that succeeds costs a unit per KB of its copy (every index projects
      all attributes): twice when the write moves the item to another index key;
    - a read costs a unit per 4 KB: of the item for GetItem and each item of a BatchGetItem,
      of all the items a page of a Query or Scan reads (before its filter: such a page is
      read again, unfiltered, to know them); half as much eventually consistent, twice in a
      TransactGetItems.

    Left out: the sweeper's and the schedule tick's index queries, a fixed cost per minute
    whatever the traffic, and the local stack's own queue-depth checks and empty polls; a
    ReceiveMessage counts when it brought messages."""

    FIXED_INDEXES = ("by_due", "pending")

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.units: defaultdict[str, float] = defaultdict(float)  # by DynamoDB operation
        self.write_units = 0.0
        self.index_write_units = 0.0  # of the write units: the global indexes'
        self.read_units = 0.0
        self.active = False
        self._call: tuple[dict[str, Any], list[Written], list[Stored]] | None = None

    def attach(self, dynamodb: Any, sqs: Any) -> None:
        import boto3
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        self._moto = dynamodb_backends[DEFAULT_ACCOUNT_ID][dynamodb.meta.region_name]
        self._unmetered = boto3.client("dynamodb", region_name=dynamodb.meta.region_name)
        dynamodb.meta.events.register("before-parameter-build.dynamodb", self.on_dynamodb)
        dynamodb.meta.events.register("after-call.dynamodb", self.on_dynamodb_answer)
        sqs.meta.events.register("before-parameter-build.sqs", self.on_sqs)
        sqs.meta.events.register("after-call.sqs.ReceiveMessage", self.on_receive)

    def on_dynamodb(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._call = None
        name = model.name
        schedule_index = params.get("ExpressionAttributeValues", {}).get(":pk") == {"S": "SCHEDULE"}
        if not self.active or params.get("IndexName") in self.FIXED_INDEXES or schedule_index:
            return
        self.counts[f"dynamodb.{name}"] += 1
        written = _written(name, params)
        self._call = (params, written, [self._stored(table, key) for table, key, _ in written])

    def on_dynamodb_answer(
        self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any
    ) -> None:
        if self._call is None:
            return
        (params, written, before), self._call = self._call, None
        if not written:
            units = self._read_units(model.name, params, parsed)
            self.read_units += units
        else:
            units = 0.0
            for (table, key, rate), old in zip(written, before, strict=True):
                new = self._stored(table, key)
                units += rate * _units(max(old.size, new.size), WRITE_UNIT)
                if http_response.status_code < 300:
                    index_units = _index_write_units(old, new)
                    self.index_write_units += index_units
                    units += index_units
            self.write_units += units
        self.units[f"dynamodb.{model.name}"] += units

    def _read_units(self, name: str, params: dict[str, Any], answer: dict[str, Any]) -> float:
        consistent = bool(params.get("ConsistentRead"))
        if name in ("Query", "Scan"):
            items = (
                answer.get("Items", []) if TRIMMED.isdisjoint(params) else self._page(name, params)
            )
            return _read_units(sum(_size(item) for item in items), consistent)
        if name == "GetItem":
            return _read_units(self._stored(params["TableName"], params["Key"]).size, consistent)
        if name == "BatchGetItem":
            return sum(
                _read_units(self._stored(table, key).size, bool(request.get("ConsistentRead")))
                for table, request in params["RequestItems"].items()
                for key in request["Keys"]
            )
        if name == "TransactGetItems":
            gets = [entry["Get"] for entry in params["TransactItems"]]
            return sum(
                2 * _read_units(self._stored(g["TableName"], g["Key"]).size, True) for g in gets
            )
        return 0.0

    def _stored(self, table_name: str, key: dict[str, Any]) -> Stored:
        """The item of `table_name` with `key` (or an item's key attributes) as moto holds it."""
        table = self._moto.get_table(table_name)
        item = table.get_item(*self._moto.get_keys_value(table, key))
        indexes = table.global_indexes or []
        if item is None:
            return Stored(0, (None,) * len(indexes))
        return Stored(item.size(), tuple(_index_key(item, index) for index in indexes))

    def _page(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The items a Query or Scan page read: the page again without its filter, projection
        or count, and without the names and values only those used."""
        unfiltered = {key: value for key, value in params.items() if key not in TRIMMED}
        used = set(re.findall(r"[#:]\w+", params.get("KeyConditionExpression", "")))
        for placeholders in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
            kept = {k: v for k, v in unfiltered.pop(placeholders, {}).items() if k in used}
            if kept:
                unfiltered[placeholders] = kept
        items: list[dict[str, Any]] = getattr(self._unmetered, name.lower())(**unfiltered)["Items"]
        return items

    def on_sqs(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.active and model.name not in (
            "GetQueueAttributes",
            "GetQueueUrl",
            "ReceiveMessage",
        ):
            self.counts[f"sqs.{model.name}"] += 1

    def on_receive(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.active and parsed.get("Messages"):
            self.counts["sqs.ReceiveMessage"] += 1


WRITE_UNIT, READ_UNIT = 1024, 4096  # bytes a capacity unit covers
TRIMMED = frozenset({"FilterExpression", "ProjectionExpression", "Select"})  # not what a page reads
Written = tuple[str, dict[str, Any], int]  # a table, the item's key (or item), units per KB


class Stored(NamedTuple):
    """An item as moto holds it, as the meter needs it: its size (0: none) and its key in
    each global index of its table (None: not in that index)."""

    size: int
    index_keys: tuple[Any, ...]


def _written(name: str, params: dict[str, Any]) -> list[Written]:
    """The items a DynamoDB call writes (checks, in a transaction), with their units per KB."""
    if name == "PutItem":
        return [(params["TableName"], params["Item"], 1)]
    if name in ("UpdateItem", "DeleteItem"):
        return [(params["TableName"], params["Key"], 1)]
    if name == "BatchWriteItem":
        return [
            (
                table,
                request["PutRequest"]["Item"]
                if "PutRequest" in request
                else request["DeleteRequest"]["Key"],
                1,
            )
            for table, requests in params["RequestItems"].items()
            for request in requests
        ]
    if name == "TransactWriteItems":
        actions = [action for entry in params["TransactItems"] for action in entry.values()]
        return [(action["TableName"], action.get("Item") or action["Key"], 2) for action in actions]
    return []


def _index_key(item: Any, index: Any) -> tuple[Any, ...] | None:
    """`item`'s key in the global `index` (moto's), None when it lacks one of its attributes."""
    values = [item.attrs.get(part["AttributeName"]) for part in index.schema]
    if any(value is None for value in values):
        return None
    return tuple((value.type, value.value) for value in values)


def _index_write_units(old: Stored, new: Stored) -> int:
    """Write units of the global indexes' copies of an item a write changed from `old` to
    `new`: an update in place where its index key stays, else a delete and a put."""
    units = 0
    for old_key, new_key in zip(old.index_keys, new.index_keys, strict=True):
        if old_key is not None and old_key == new_key:
            units += _units(max(old.size, new.size), WRITE_UNIT)
            continue
        if old_key is not None:
            units += _units(old.size, WRITE_UNIT)
        if new_key is not None:
            units += _units(new.size, WRITE_UNIT)
    return units


def _units(size: int, unit: int) -> int:
    """Capacity units of `size` bytes: whole units, at least one (a missing item costs one)."""
    return max(1, math.ceil(size / unit))


def _read_units(size: int, consistent: bool) -> float:
    return _units(size, READ_UNIT) * (1.0 if consistent else 0.5)


def _size(item: dict[str, Any]) -> int:
    """Bytes of an item in DynamoDB JSON, as moto's `Item.size()` counts them."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    return int(DynamoType({"M": item}).size())


class LambdaMeter:
    """Lambda invocations journeys cause, by function, and their billed seconds: each
    one's wall time less the time inside AWS calls (moto's, in-process), plus the stated
    AWS_LATENCY per call, rounded up to the millisecond as Lambda bills it.

    Counted: every SQS batch handed to a handler, every HTTP request, and a minute's
    schedule or stream invocation when its answer counts work done (a timer fired, a run
    started): once per handler and minute, as EventBridge calls each once a minute
    however many timers came due in it (the virtual clock stops at each due moment)."""

    def __init__(self, *clients: Any) -> None:
        self.invocations: Counter[str] = Counter()
        self.billed: dict[str, float] = defaultdict(float)  # seconds, by function
        self.latency_seconds = 0.0  # of the billed: the stated AWS latency
        self.messages = 0  # SQS messages in the batches
        self.active = False
        self._ticks: set[tuple[str, str]] = set()
        self._running = False
        self._moto = 0.0  # the running invocation's time in AWS calls, and its stated latency
        self._latency = 0.0
        self._call_began = 0.0
        for aws_client in clients:
            aws_client.meta.events.register("before-call", self._call_begins)
            aws_client.meta.events.register("after-call", self._call_ends)
            aws_client.meta.events.register("after-call-error", self._call_ends)

    def _call_begins(self, **_: Any) -> None:
        self._call_began = time.perf_counter()

    def _call_ends(self, event_name: str, **_: Any) -> None:
        service = event_name.split(".")[1]
        self._moto += time.perf_counter() - self._call_began
        self._latency += AWS_LATENCY.get(service, SENDING_LATENCY)

    def wrap(self, handler: Any, function: str, ticks: bool = False) -> Any:
        """`handler`, metered as an invocation of `function`; `ticks`: a schedule's or a
        stream's, counted only when it did some work."""

        def metered(event: dict[str, Any], context: Any) -> Any:
            if not self.active or self._running:
                return handler(event, context)
            self._running, self._moto, self._latency = True, 0.0, 0.0
            began = time.perf_counter()
            try:
                answer = handler(event, context)
            finally:
                self._running = False
            spent = time.perf_counter() - began - self._moto + self._latency
            billed = math.ceil(spent * 1000) / 1000
            if ticks and not any(answer.values()):
                return answer  # nothing to do: the stack's fixed cost per minute
            self.billed[function] += billed
            self.latency_seconds += self._latency
            if not ticks:
                self.invocations[function] += 1
                self.messages += len(event.get("Records", []))
            elif (function, event.get("time", "")[:16]) not in self._ticks:
                self.invocations[function] += 1
                if "time" in event:  # a scheduled event: one invocation a minute
                    self._ticks.add((function, event["time"][:16]))
            return answer

        return metered

    @property
    def billed_seconds(self) -> float:
        return sum(self.billed.values())

    def cost(self) -> float:
        """Dollars, at the packaged functions' memory size."""
        requests = sum(self.invocations.values())
        return requests * LAMBDA_REQUEST + self.billed_seconds * LAMBDA_MEMORY_GB * LAMBDA_GB_SECOND


def metered_runtime(app: Any, meter: LambdaMeter) -> Any:
    """The local stack's queue pumps, schedules and streams, calling `meter`'s handlers."""
    from chalicelib.local.stack import Runtime

    runtime = Runtime(app)
    for pump in runtime.pumps:
        pump.handler = meter.wrap(pump.handler, f"handle_{pump.queue}")
    runtime.schedules = [meter.wrap(h, h.func.__name__, ticks=True) for h in runtime.schedules]
    runtime.streams = {
        table: meter.wrap(h, h.func.__name__, ticks=True) for table, h in runtime.streams.items()
    }
    return runtime


class Api:
    """The stack's HTTP API as a client calls it: API Gateway (REST) in front of the app,
    in-process, each request one invocation of the API's function."""

    def __init__(self, app: Any, meter: LambdaMeter) -> None:
        from chalice.config import Config

        from chalicelib.local.gateway import ApiGateway

        gateway = ApiGateway(app, Config.create(chalice_stage="bench", app_name="scenaria"))
        self._call = meter.wrap(lambda request, _: gateway.handle_request(**request), "api")

    def __call__(self, method: str, path: str, body: Any) -> Any:
        headers = {"x-api-key": "bench", "content-type": "application/json"}
        request = {
            "method": method,
            "path": path,
            "headers": headers,
            "body": json.dumps(body).encode(),
        }
        answer = self._call(request, None)
        if answer["statusCode"] >= 300:
            raise RuntimeError(f"{method} {path}: {answer['statusCode']} {answer['body']!r}")
        return json.loads(answer["body"] or "null")


def journeys_figures() -> dict[str, tuple[float, str]]:
    """Requests, Lambda time and cost per welcome-series journey, beside Step Functions;
    then the requests of an event that moves no journey."""
    with in_process_stack():
        bootstrap()
        from app import app
        from chalicelib.adapters.aws import client
        from chalicelib.adapters.clock import VirtualClock, use_clock
        from chalicelib.local.clock import advance_to
        from chalicelib.local.stack import create_resources
        from chalicelib.runtime import promo, scenarios

        create_resources()
        start = datetime(2026, 6, 1, 10, tzinfo=UTC)
        clock = VirtualClock(start)
        previous = use_clock(clock)
        clients = [client(service) for service in ("dynamodb", "sqs", "sesv2", "sns")]
        meter, idle_meter = JourneyMeter(), JourneyMeter()
        functions, idle_functions = LambdaMeter(*clients), LambdaMeter(*clients)
        for each in (meter, idle_meter):
            each.attach(clients[0], clients[1])
        try:
            runtime = metered_runtime(app, functions)
            crm = call_center()
            example = (ROOT / "examples" / "welcome.json").read_text()
            meta = scenarios.create(json.loads(example.replace(CRM, crm.url)))
            scenarios.activate(meta["scenario_id"])
            promo.add_codes("WELCOME10", [f"CODE{n:05d}" for n in range(JOURNEYS)])
            scenarios.list_listeners()  # the stack's first minute's tick, once in its life
            runtime.drain()
            api = Api(app, functions)
            meter.active = functions.active = True
            for n in range(JOURNEYS):
                fields = {
                    "first_name": f"P{n}",
                    "email": f"p{n}@example.com",
                    "phone": f"+1415555{n:04d}",
                    "consents": {"email": True, "sms": True},
                }
                api("PUT", f"/profiles/customers/p{n}", {"fields": fields, "source": "form"})
            runtime.drain()
            advance_to(runtime, clock, start + timedelta(hours=5))
            for n in range(0, JOURNEYS, 2):  # half the profiles confirm their address
                api("POST", "/events", {"type": "subscription.confirmed", "profile_db": "customers",
                                        "profile_id": f"p{n}", "id": f"confirm-p{n}"})  # fmt: skip
            advance_to(runtime, clock, start + timedelta(days=4))
            meter.active = functions.active = False
            stats = scenarios_stats(meta["scenario_id"])
            # Every journey is over: events now find no journey to move and no trigger.
            runtime = metered_runtime(app, idle_functions)
            api = Api(app, idle_functions)
            idle_meter.active = idle_functions.active = True
            for n in range(JOURNEYS):
                api("POST", "/events", {"type": "page.viewed", "profile_db": "customers",
                                        "profile_id": f"p{n}", "id": f"view-p{n}"})  # fmt: skip
            runtime.drain()
            idle_meter.active = idle_functions.active = False
            if scenarios_stats(meta["scenario_id"]) != stats:  # the figures would lie
                raise RuntimeError("an event meant to move no journey moved one")
        finally:
            use_clock(previous)
            crm.shutdown()
    figures = journey_cost(meter, functions)
    transitions = stats["node_transitions"] / JOURNEYS
    wakes = stats["pauses_ended"] / JOURNEYS  # each pause that ends wakes the journey once
    express = (1 + wakes) * (
        EXPRESS_REQUEST + EXPRESS_BILLED_SECONDS * EXPRESS_BILLED_GB * EXPRESS_GB_SECOND
    )
    express += wakes * SCHEDULER_INVOCATION
    print(f"#   completed {stats['completed']}, node transitions {stats['node_transitions']}, "
          f"pauses ended {stats['pauses_ended']}")  # fmt: skip
    idle = journey_cost(idle_meter, idle_functions, label="event that moves no journey")
    return {
        **figures,
        "step_functions_cost_per_million_journeys": (transitions * STEP_FUNCTIONS_TRANSITION * 1e6, "USD"),
        "step_functions_express_cost_per_million_journeys": (express * 1e6, "USD"),
        "node_transitions_per_journey": (transitions, "transitions"),
        "express_executions_per_journey": (1 + wakes, "executions"),
        "idle_event_aws_requests": idle["aws_requests_per_journey"],
        "idle_event_lambda_invocations": idle["lambda_invocations_per_journey"],
        "idle_event_cost_per_million_events": idle["cost_per_million_journeys"],
    }  # fmt: skip


def journey_cost(
    meter: JourneyMeter, functions: LambdaMeter, label: str = "journey"
) -> dict[str, tuple[float, str]]:
    """Per-journey figures of what the meters counted over JOURNEYS journeys (or events),
    printed with the requests by operation and the cost's shares."""
    by_operation = meter.counts
    sqs = sum(n for name, n in by_operation.items() if name.startswith("sqs.")) / JOURNEYS
    write_units, read_units = meter.write_units / JOURNEYS, meter.read_units / JOURNEYS
    shares = {
        "dynamodb": write_units * DYNAMODB_WRITE_UNIT + read_units * DYNAMODB_READ_UNIT,
        "sqs": sqs * SQS_REQUEST,
        "lambda": functions.cost() / JOURNEYS,
        "api_gateway": functions.invocations["api"] * API_GATEWAY_REQUEST / JOURNEYS,
    }
    invocations = sum(functions.invocations.values()) / JOURNEYS
    batches = sum(n for name, n in functions.invocations.items() if name.startswith("handle_"))
    print(f"# welcome series, {JOURNEYS} journeys (half confirm): per {label}")
    print("#   AWS requests by operation (DynamoDB: with the capacity units they cost):")
    for name, count in by_operation.most_common():
        units = f", {meter.units[name] / JOURNEYS:.2f} units" if name in meter.units else ""
        print(f"#     {name}: {count / JOURNEYS:.2f}{units}")
    print(f"#   of the write units, the global indexes' copies: "
          f"{meter.index_write_units / JOURNEYS:.2f}")  # fmt: skip
    print(f"#   Lambda invocations and billed ms by function ({functions.messages / max(1, batches):.1f} "
          f"messages per SQS batch):")  # fmt: skip
    for name, count in functions.invocations.most_common():
        print(
            f"#     {name}: {count / JOURNEYS:.2f}, {functions.billed[name] / JOURNEYS * 1000:.1f} ms"
        )
    print(f"#   Lambda billed time {functions.billed_seconds / JOURNEYS * 1000:.1f} ms at "
          f"{LAMBDA_MEMORY_GB * 1024:.0f} MB, of which the stated AWS latency "
          f"{functions.latency_seconds / JOURNEYS * 1000:.1f} ms")  # fmt: skip
    print("#   cost per million: " + ", ".join(f"{k} ${v * 1e6:.2f}" for k, v in shares.items())
          + f", total ${sum(shares.values()) * 1e6:.2f}")  # fmt: skip
    return {
        "aws_requests_per_journey": (sum(by_operation.values()) / JOURNEYS, "requests"),
        "dynamodb_write_units_per_journey": (write_units, "WCU"),
        "dynamodb_read_units_per_journey": (read_units, "RCU"),
        "sqs_requests_per_journey": (sqs, "requests"),
        "lambda_invocations_per_journey": (invocations, "invocations"),
        "lambda_billed_ms_per_journey": (functions.billed_seconds / JOURNEYS * 1000, "ms"),
        **{f"{name}_cost_per_million_journeys": (v * 1e6, "USD") for name, v in shares.items()},
        "cost_per_million_journeys": (sum(shares.values()) * 1e6, "USD"),
    }


class CallCenter(ThreadingHTTPServer):
    """The welcome series' call-center API, on loopback: answers every call 200 `{}`."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def call_center() -> CallCenter:
    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_: Any) -> None:
            pass

    server = CallCenter(("127.0.0.1", 0), Answer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def scenarios_stats(scenario_id: str) -> dict[str, int]:
    from chalicelib.runtime.stats import scenario_stats

    figures = scenario_stats(scenario_id)
    pauses = [node for node, spec in welcome_nodes().items() if spec["type"] == "pause"]
    return {"completed": figures["completed"] + figures["exited"],
            "node_transitions": sum(n["entered"] for n in figures["nodes"].values()),
            "pauses_ended": sum(figures["nodes"].get(node, {}).get("entered", 0) for node in pauses)}  # fmt: skip


def welcome_nodes() -> dict[str, Any]:
    nodes: dict[str, Any] = json.loads((ROOT / "examples" / "welcome.json").read_text())["nodes"]
    return nodes


def campaign_figures() -> dict[str, tuple[float, str]]:
    """A daily segment campaign: fan-out per profile at each size, captures per member."""
    figures: dict[str, tuple[float, str]] = {}
    for size in CAMPAIGN_SIZES:
        # Loading and scanning 100,000 profiles in moto takes minutes: say what is going on.
        print(f"# campaign over {size} profiles: loading them into moto…", flush=True)
        with in_process_stack():
            from chalicelib.adapters.aws import count_requests
            from chalicelib.adapters.clock import VirtualClock, use_clock
            from chalicelib.adapters.queues import SqsQueues
            from chalicelib.local.stack import create_resources
            from chalicelib.runtime import scenarios, schedules, steps
            from chalicelib.runtime.messages import parse_scan, parse_step
            from chalicelib.runtime.unit_of_work import UnitOfWork

            sent = SentCaptures(SqsQueues())
            storage = bootstrap(queues=sent).storage
            create_resources()
            start = datetime(2026, 6, 1, 9, tzinfo=UTC)
            previous = use_clock(VirtualClock(start))
            try:
                storage.load_profiles("customers", {
                    f"p{n}": ({"tier": "gold" if n % 2 else "silver", "email": f"p{n}@example.com",
                               "consents": {"email": True}}, [])
                    for n in range(size)
                })  # fmt: skip
                meta = scenarios.create(campaign_document())
                scenarios.activate(meta["scenario_id"])
                scenario = storage.version(meta["scenario_id"], 1)
                run_at = start + timedelta(hours=1)
                with count_requests() as counted:
                    schedules.fan_out(scenario, run_at, trigger_id="daily")
                jobs = [parse_scan(m["Body"]) for m in receive_all("segments")]
                job_count = len(jobs)
                members, elapsed, requests = 0, 0.0, counted.total
                jobs = jobs[:SEGMENT_SAMPLE]  # moto reads its whole table for every Scan page
                scanned = size * len(jobs) // job_count
                sent.counting = True  # moto's SQS slows with queue length: count, keep a sample
                for job in jobs:
                    with count_requests() as counted:
                        began = time.perf_counter()
                        members += schedules.process_segment(job, run_at).matched
                        elapsed += time.perf_counter() - began
                    requests += counted.total
                sent.counting = False
                requests += sent.calls
                figures[f"campaign_{size}_fanout_us_per_profile"] = (elapsed / scanned * 1e6, "µs")
                figures[f"campaign_{size}_fanout_requests_per_1000_profiles"] = (
                    requests / scanned * 1000,
                    "requests",
                )
                print(
                    f"# campaign over {size} profiles: {len(jobs)} of {job_count} scan segments measured "
                    f"({scanned} profiles), {members} members, "
                    f"fan-out {elapsed:.1f} s, {requests} requests ({sent.calls} SendMessageBatch)"
                )
                if size == min(CAMPAIGN_SIZES):
                    bodies = [message.model_dump_json() for message in sent.sample]
                    batches = range(0, len(bodies), STEPS_BATCH)
                    with count_requests() as counted:
                        for first in batches:  # as handle_steps takes them
                            batch = bodies[first : first + STEPS_BATCH]
                            uow = UnitOfWork(buffered=True)
                            steps.read_ahead(uow, batch)
                            for body in batch:
                                steps.process(parse_step(body), uow)
                            uow.flush()
                    polled = 2 * len(batches)  # the event source mapping's receive and delete
                    figures["campaign_capture_requests_per_member"] = (
                        (counted.total + polled) / len(bodies),
                        "requests",
                    )
            finally:
                use_clock(previous)
    return figures


def campaign_document() -> dict[str, Any]:
    return {
        "name": "Gold members' newsletter",
        "profile_db": "customers",
        "reentry": "parallel",
        "triggers": [{"id": "daily", "type": "schedule", "daily": "10:00", "next": "letter",
                      "segment": {"field": "profile.tier", "op": "eq", "value": "gold"}}],
        "nodes": {"letter": {"type": "send", "channel": "email", "template": {"subject": "News"}}},
    }  # fmt: skip


class SentCaptures:
    """The stack's queues, except that while `counting` the captures of the fan-out are
    only counted (the SendMessageBatch calls they would make), the first ones kept for
    the per-member measurement."""

    def __init__(self, queues: Any) -> None:
        self.queues = queues
        self.counting = False
        self.calls = 0
        self.sample: list[Any] = []

    def send(self, queue: str, batch: Any) -> int:
        if not self.counting:
            return int(self.queues.send(queue, batch))
        calls = math.ceil(len(batch) / 10)
        self.calls += calls
        self.sample.extend(
            message for message, _ in batch[: max(0, CAPTURE_SAMPLE - len(self.sample))]
        )
        return calls


def receive_all(queue: str, most: int = 10_000) -> list[dict[str, Any]]:
    from chalicelib.adapters.aws import client
    from chalicelib.adapters.queues import queue_url

    messages: list[dict[str, Any]] = []
    while len(messages) < most:
        got = (
            client("sqs")
            .receive_message(QueueUrl=queue_url(queue), MaxNumberOfMessages=10)
            .get("Messages", [])
        )
        if not got:
            break
        messages.extend(got)
    return messages[:most]


def lateness_figures() -> dict[str, tuple[float, str]]:
    """How late pauses end on the local stack in real time (SPEC §5: within 1 s for pauses
    up to 15 minutes, within 60 s for longer ones, never early)."""
    figures: dict[str, tuple[float, str]] = {}
    with local_stack(precise_delays=True) as url:
        late = [x for x, _ in pause_lateness(url, SHORT_PAUSE, LATENCY_PROFILES)]
    figures.update(lateness_summary(f"wakeup_delay_path_{SHORT_PAUSE}s", late))
    with local_stack(precise_delays=False) as url:
        woken = pause_lateness(url, SWEPT_PAUSE, SWEPT_PROFILES)
    off_tick = [woke for _, woke in woken if woke.timestamp() % 60 > SWEEP_TICK_SLACK]
    if off_tick:  # then something other than the sweeper woke them: the figures would lie
        raise RuntimeError(f"{len(off_tick)} wake-ups came between the sweeper's ticks")
    figures.update(lateness_summary(f"wakeup_sweeper_path_{SWEPT_PAUSE}s", [x for x, _ in woken]))
    return figures


def lateness_summary(name: str, late: list[float]) -> dict[str, tuple[float, str]]:
    return {
        f"{name}_p50": (statistics.median(late), "s"),
        f"{name}_p95": (percentile(late, 0.95), "s"),
        f"{name}_max": (max(late), "s"),
        f"{name}_early": (sum(1 for x in late if x < 0), "wake-ups"),
    }


@contextmanager
def local_stack(precise_delays: bool) -> Iterator[str]:
    """`python -m chalicelib.local` on the real clock in a subprocess; its URL. Without
    precise delays every pause is left to the minute sweeper, however short."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "SCENARIA_CLOCK": "real", "SCENARIA_API_KEY": "bench",
           "SCENARIA_PRECISE_DELAYS": "1" if precise_delays else "0"}  # fmt: skip
    for name in ("SCENARIA_AWS_ENDPOINT", "SCENARIA_STAGE"):
        env.pop(name, None)
    with tempfile.TemporaryFile("w+") as output:  # a pipe nobody reads would fill and block it
        stack = subprocess.Popen([sys.executable, "-m", "chalicelib.local"], cwd=ROOT, env=env,
                                 stdout=output, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, stack)
            yield url
        except Exception:
            output.seek(0)
            print(output.read()[-4000:], file=sys.stderr)
            raise
        finally:
            stack.terminate()
            stack.wait(timeout=20)


def pause_lateness(url: str, seconds: int, profiles: int) -> list[tuple[float, datetime]]:
    """Start `profiles` journeys into pauses of `seconds` plus 0.0 to 0.9 s (ten scenarios,
    in turn: SQS delays come in whole seconds, a pause's end anywhere within one); for
    each, how late the pause ended (seconds past its due end) and when."""
    durations = [seconds + tenth / 10 for tenth in range(10)]
    scenario_ids = []
    for tenth in range(10):
        document = {"name": f"Pause {seconds}.{tenth}s", "profile_db": "bench", "reentry": "parallel", "entry": "wait",
                    "nodes": {"wait": {"type": "pause", "duration": f"PT{seconds}.{tenth}S", "next": "done"},
                              "done": {"type": "exit"}}}  # fmt: skip
        scenario_ids.append(api(url, "POST", "/scenarios", document)["id"])
        api(url, "POST", f"/scenarios/{scenario_ids[-1]}/activate")
    for n in range(profiles):
        api(url, "PUT", f"/profiles/bench/l{seconds}-{n}", {"fields": {}})
        api(
            url,
            "POST",
            f"/scenarios/{scenario_ids[n % 10]}/profiles",
            {"profile_id": f"l{seconds}-{n}"},
        )
    time.sleep(max(durations))  # the last pause is about due: no polling load before then
    deadline = time.time() + 150
    while True:
        woken: list[tuple[float, datetime]] = []
        for n in range(profiles):
            journey = api(url, "GET", f"/profiles/bench/l{seconds}-{n}/journeys")["journeys"][0]
            if journey["status"] == "active":
                break
            entered = datetime.fromisoformat(journey["entered_at"])  # the pause's due start
            woke = datetime.fromisoformat(journey["path"][1]["at"])
            woken.append(((woke - entered).total_seconds() - durations[n % 10], woke))
        if len(woken) == profiles:
            return woken
        if time.time() > deadline:
            raise RuntimeError(f"{seconds}s pauses had not all ended in time")
        time.sleep(2)


def api(url: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"X-Api-Key": "bench", "Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"null")


def wait_until_up(url: str, stack: subprocess.Popen[str]) -> None:
    for _ in range(120):
        if stack.poll() is not None:
            raise RuntimeError(f"the local stack exited with {stack.returncode}")
        try:
            api(url, "GET", "/scenarios?limit=1")
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the local stack did not start")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def main() -> int:
    figures: dict[str, tuple[float, str]] = {}
    figures.update(journeys_figures())
    figures.update(campaign_figures())
    if os.environ.get("BENCH_LATENCY", "1") == "1":
        figures.update(lateness_figures())
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name, (value, unit) in figures.items():
        print(f"{name}: {value:.2f} {unit}")
        results[name] = {"value": round(value, 3), "unit": unit}
    spend = figures["cost_per_million_journeys"][0]
    step_functions = figures["step_functions_cost_per_million_journeys"][0]
    print(f"cost_ratio_step_functions_to_scenaria: {step_functions / spend:.1f} x")
    results["cost_ratio_step_functions_to_scenaria"] = {
        "value": round(step_functions / spend, 2),
        "unit": "x",
    }
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
