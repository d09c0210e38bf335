"""SPEC §5: bad input gets a 4xx with a clear `detail` and changes nothing.

One stack is seeded for the module (an active, a stopped, a trashed, a draft and two
invalid scenarios, a profile in a journey with a message sent, a segment, a promo pool)
and left idle. Every mutating call below is bad in one way — malformed JSON, wrong types, unknown
node types, oversized batches, unknown ids, an invalid scenario on activation, a bad hook
signature, a bad pagination token, a missing key — and must answer its 4xx problem
document while every item of every table, every queue's depth and the clock stay as
they were.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.adapters.aws import client
from chalicelib.adapters.queues import queue_url
from chalicelib.config import QUEUES, settings
from chalicelib.runtime.commit import epoch
from chalicelib.runtime.hooks import sign
from infra.resources import TABLES
from tests.e2e.harness import API_KEY, Stack, email, on_event, pause, person, scenario
from tests.http.support import UNSET, assert_problem, journey, send

DEPTHS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def snapshot(stack: Stack) -> dict[str, Any]:
    """Every item of every table (a consistent Scan), every queue's depth, and the clock."""
    dynamodb, sqs = client("dynamodb"), client("sqs")
    tables = {}
    for table in TABLES:
        items: list[str] = []
        pages = dynamodb.get_paginator("scan").paginate(
            TableName=settings().table(table.name), ConsistentRead=True
        )
        for page in pages:
            items.extend(json.dumps(item, sort_keys=True) for item in page["Items"])
        tables[table.name] = sorted(items)
    queues = {}
    for name in QUEUES:  # their dead-letter queues fill only by redrive, after 5 receives
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url(name), AttributeNames=DEPTHS)
        queues[name] = attributes["Attributes"]
    return {"tables": tables, "queues": queues, "now": stack.now.isoformat()}


@pytest.fixture(scope="module")
def seeded(shared_stack: Stack) -> dict[str, str]:
    """Ids of what the module's stack holds, once every queue is drained."""
    stack = shared_stack
    small = scenario(  # small documents keep the Scans of the scenarios table quick
        {"hello": email("Hello", "wait"), "wait": pause("P1D")},
        [on_event("signup", "hello"), {"id": "crm", "type": "webhook", "next": "hello"}],
    )
    active = stack.create({**small, "name": "Active"})
    stopped = stack.create({**small, "name": "Stopped"})
    stack.post(f"/scenarios/{stopped}/deactivate")
    trashed = stack.create({"name": "Trashed"}, activate=False)
    stack.delete(f"/scenarios/{trashed}")
    broken = {"name": "Invalid", "entry": "a", "nodes": {"a": {"type": "teleport"}}}
    invalid = stack.create(broken, activate=False)
    draft = stack.create({"name": "Draft"}, activate=False)
    long_event = {**small, "name": "Long event", "triggers": [on_event("e" * 201, "hello")]}
    long = stack.create(long_event, activate=False)

    where = {"field": "profile.vip", "op": "eq", "value": True}
    stack.put("/segments/vips", {"profile_db": "customers", "where": where})
    stack.put("/promo-pools/SPRING", {"codes": ["A", "B"]})
    stack.upsert("ada", person("ada", vip=True))
    stack.post(f"/scenarios/{active}/profiles", {"profile_id": "ada"}, status=201)
    stack.event("page.visited", "ada", event_id="seen-1")
    stack.drain()
    (message,) = stack.sent()
    return {
        "active": active,
        "stopped": stopped,
        "trashed": trashed,
        "invalid": invalid,
        "draft": draft,
        "long": long,
        "message": message["message_id"],
        "secret": stack.get(f"/scenarios/{active}")["webhook_secret"],
        "stopped_secret": stack.get(f"/scenarios/{stopped}")["webhook_secret"],
    }


@dataclass(frozen=True)
class Bad:
    """One bad call: `path` and `body` may name seeded ids as `{active}`, `{message}`...

    `sign`: a hook call signed with the scenario's secret (`valid`), another secret
    (`wrong`), a timestamp 301 s old (`stale`) or `{stopped}`'s secret (`stopped`)."""

    method: str
    path: str
    body: Any = UNSET
    raw: bytes | None = None
    status: int = 400
    named: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    key: str | None = API_KEY
    sign: str | None = None


EVENT = {"type": "signup", "profile_db": "customers", "profile_id": "ada"}
BIG = "x" * 70_000  # more than the 64 KiB an event's data or a condition may take


def token(key: dict[str, str]) -> str:
    """A page token as the API encodes one, of a key of string attributes."""
    wire = {name: {"S": value} for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(wire).encode()).decode()


NESTED: dict[str, Any] = {"v": 1}
for _ in range(30):
    NESTED = {"v": NESTED}
UNKNOWN_NODE = journey()
UNKNOWN_NODE["nodes"]["wait"] = {"type": "teleport", "next": "bye"}
DANGLING = journey()
DANGLING["nodes"]["bye"]["next"] = "nowhere"

CASES: dict[str, Bad] = {
    # --- the key ---
    "create without a key": Bad("POST", "/scenarios", journey(), status=401, key=None),
    "erase with a wrong key": Bad(
        "DELETE", "/profiles/customers/ada", status=401, named=("X-Api-Key",), key="wrong"
    ),
    "clear with a wrong key": Bad("POST", "/scenarios/{active}/clear", status=401, key="x"),
    # --- scenarios: create / replace ---
    "create malformed JSON": Bad("POST", "/scenarios", raw=b'{"name": "x",', named=("JSON",)),
    "create without a body": Bad("POST", "/scenarios", named=("JSON body",)),
    "create a list": Bad("POST", "/scenarios", ["name"], named=("$",)),
    "create without a name": Bad("POST", "/scenarios", {"nodes": {}}, named=("$.name",)),
    "create an empty name": Bad("POST", "/scenarios", {"name": ""}, named=("$.name",)),
    "create a numeric name": Bad("POST", "/scenarios", {"name": 7}, named=("$.name",)),
    "create a name too long": Bad("POST", "/scenarios", {"name": "x" * 201}, named=("$.name",)),
    "create a huge number": Bad(
        "POST", "/scenarios", raw=b'{"name": "x", "n": 1e400}', named=("$.n",)
    ),
    "create a 39-digit number": Bad(
        "POST", "/scenarios", raw=b'{"name": "x", "n": 123456789012345678901234567890123456789}'
    ),
    "create a lone surrogate": Bad(
        "POST", "/scenarios", raw=b'{"name": "x\\ud800"}', named=("$.name",)
    ),
    "create an empty key": Bad("POST", "/scenarios", {"name": "x", "": 1}, named=("keys",)),
    "create nested too deep": Bad("POST", "/scenarios", {"name": "x", "n": NESTED}),
    "create a document over 128 KiB": Bad(
        "POST", "/scenarios", {"name": "x", "description": BIG * 2}, named=("$", "bytes")
    ),
    "create wrong content": Bad(
        "POST", "/scenarios", raw=b"name=x", status=415, headers={"Content-Type": "text/plain"}
    ),
    "replace active with an unknown node type": Bad(
        "PUT", "/scenarios/{active}", UNKNOWN_NODE, status=422, named=("$.nodes.wait",)
    ),
    "replace active with a dangling next": Bad(
        "PUT", "/scenarios/{active}", DANGLING, status=422, named=("$.nodes.bye.next",)
    ),
    "replace active with an event type too long": Bad(
        "PUT",
        "/scenarios/{active}",
        journey(on_event("e" * 201, "hello", "long")),
        status=422,
        named=("$.triggers[2].event",),
    ),
    "replace malformed JSON": Bad("PUT", "/scenarios/{active}", raw=b"{", named=("JSON",)),
    "replace a draft with a numeric name": Bad(
        "PUT", "/scenarios/{draft}", {"name": ["x"]}, named=("$.name",)
    ),
    "replace unknown": Bad("PUT", "/scenarios/nosuch", journey(), status=404, named=("nosuch",)),
    "replace trashed": Bad(
        "PUT", "/scenarios/{trashed}", journey(), status=409, named=("trashed",)
    ),
    "replace with a too long id": Bad(
        "PUT", "/scenarios/" + "x" * 201, journey(), named=("scenario_id",)
    ),
    # --- lifecycle ---
    "activate invalid": Bad("POST", "/scenarios/{invalid}/activate", status=422, named=("$.",)),
    "activate an event type too long": Bad(
        "POST", "/scenarios/{long}/activate", status=422, named=("$.triggers[0].event",)
    ),
    "activate unknown": Bad("POST", "/scenarios/nosuch/activate", status=404, named=("nosuch",)),
    "activate trashed": Bad("POST", "/scenarios/{trashed}/activate", status=409),
    "deactivate keep_profiles a string": Bad(
        "POST", "/scenarios/{active}/deactivate", {"keep_profiles": "yes"}, named=("keep_profiles",)
    ),
    "deactivate keep_profiles a number": Bad(
        "POST", "/scenarios/{active}/deactivate", {"keep_profiles": 1}, named=("keep_profiles",)
    ),
    "deactivate an unknown field": Bad(
        "POST", "/scenarios/{active}/deactivate", {"keep": True}, named=("$.keep",)
    ),
    "deactivate malformed JSON": Bad(
        "POST", "/scenarios/{active}/deactivate", raw=b"{keep", named=("JSON",)
    ),
    "deactivate a list": Bad("POST", "/scenarios/{active}/deactivate", [True], named=("$",)),
    "deactivate unknown": Bad("POST", "/scenarios/nosuch/deactivate", status=404),
    "deactivate a draft": Bad("POST", "/scenarios/{draft}/deactivate", status=409),
    "clone unknown": Bad("POST", "/scenarios/nosuch/clone", status=404, named=("nosuch",)),
    "trash active": Bad("DELETE", "/scenarios/{active}", status=409, named=("deactivate",)),
    "trash trashed": Bad("DELETE", "/scenarios/{trashed}", status=409),
    "trash unknown": Bad("DELETE", "/scenarios/nosuch", status=404),
    "restore active": Bad("POST", "/scenarios/{active}/restore", status=409),
    "restore unknown": Bad("POST", "/scenarios/nosuch/restore", status=404),
    "clear unknown": Bad("POST", "/scenarios/nosuch/clear", status=404, named=("nosuch",)),
    "unknown method": Bad("PATCH", "/scenarios/{active}", {"name": "x"}, status=405),
    # --- simulate (stores nothing even when it works) ---
    "simulate an unknown node type": Bad(
        "POST",
        "/scenarios/simulate",
        {"scenario": UNKNOWN_NODE},
        status=422,
        named=("$.scenario.nodes.wait",),
    ),
    "simulate unknown": Bad(
        "POST", "/scenarios/simulate", {"scenario_id": "nosuch"}, status=404, named=("nosuch",)
    ),
    "simulate neither": Bad("POST", "/scenarios/simulate", {}, named=("scenario_id",)),
    "simulate both": Bad(
        "POST",
        "/scenarios/simulate",
        {"scenario": journey(), "scenario_id": "{active}"},
        named=("scenario_id",),
    ),
    "simulate starting in year 1": Bad(
        "POST",
        "/scenarios/simulate",
        {"scenario": journey(), "start": "0001-01-01T00:00:00+14:00"},
        named=("$.start",),
    ),
    "simulate a bad until": Bad(
        "POST", "/scenarios/simulate", {"scenario": journey(), "until": 3}, named=("$.until",)
    ),
    # --- profiles in and out ---
    "capture without profile_id": Bad(
        "POST", "/scenarios/{active}/profiles", {}, named=("$.profile_id",)
    ),
    "capture a numeric profile_id": Bad(
        "POST", "/scenarios/{active}/profiles", {"profile_id": 1}, named=("$.profile_id",)
    ),
    "capture data a list": Bad(
        "POST", "/scenarios/{active}/profiles", {"profile_id": "ada", "data": []}, named=("$.data",)
    ),
    "capture data over 64 KiB": Bad(
        "POST",
        "/scenarios/{active}/profiles",
        {"profile_id": "ada", "data": {"big": BIG}},
        named=("$.data",),
    ),
    "capture an unknown profile": Bad(
        "POST",
        "/scenarios/{active}/profiles",
        {"profile_id": "ghost"},
        status=404,
        named=("$.profile_id", "ghost"),
    ),
    "capture a profile already in": Bad(
        "POST", "/scenarios/{active}/profiles", {"profile_id": "ada"}, status=409, named=("ada",)
    ),
    "capture into unknown": Bad(
        "POST", "/scenarios/nosuch/profiles", {"profile_id": "ada"}, status=404
    ),
    "capture into a stopped one": Bad(
        "POST", "/scenarios/{stopped}/profiles", {"profile_id": "ada"}, status=409
    ),
    "send an unknown segment": Bad(
        "POST",
        "/scenarios/{active}/send-segment",
        {"segment": "nosuch"},
        status=404,
        named=("$.segment", "nosuch"),
    ),
    "send a numeric segment": Bad(
        "POST", "/scenarios/{active}/send-segment", {"segment": 5}, named=("$.segment",)
    ),
    "send a bad condition": Bad(
        "POST",
        "/scenarios/{active}/send-segment",
        {"segment": {"field": "profile.vip", "op": "almost", "value": 1}},
        named=("$.segment",),
    ),
    "send a condition over 64 KiB": Bad(
        "POST",
        "/scenarios/{active}/send-segment",
        {"segment": {"field": "profile.vip", "op": "eq", "value": BIG}},
        named=("$.segment",),
    ),
    "send to a draft": Bad(
        "POST", "/scenarios/{draft}/send-segment", {"segment": "vips"}, status=409
    ),
    "remove from unknown": Bad("DELETE", "/scenarios/nosuch/profiles/ada", status=404),
    "remove at a node of unknown": Bad(
        "DELETE", "/scenarios/nosuch/nodes/wait/profiles", status=404
    ),
    # --- events ---
    "events malformed JSON": Bad("POST", "/events", raw=b'{"type": ', named=("JSON",)),
    "events a list": Bad("POST", "/events", [EVENT], named=("$",)),
    "events a number": Bad("POST", "/events", 5, named=("$",)),
    "events not a list": Bad("POST", "/events", {"events": EVENT}, named=("$.events",)),
    "events 501": Bad(
        "POST",
        "/events",
        {"events": [{**EVENT, "id": f"x-{n}"} for n in range(501)]},
        named=("$.events", "500"),
    ),
    "event without profile_id": Bad("POST", "/events", {"type": "signup"}, named=("$.profile_id",)),
    "event a bad occurred_at": Bad(
        "POST", "/events", {**EVENT, "occurred_at": "yesterday"}, named=("$.occurred_at",)
    ),
    "event a naive occurred_at": Bad(
        "POST", "/events", {**EVENT, "occurred_at": "2026-06-10T10:00:00"}, named=("occurred_at",)
    ),
    "order event an empty order_id": Bad(
        "POST",
        "/events",
        {**EVENT, "type": "order.created", "data": {"order_id": "", "items": []}},
        named=("$.data", "order_id"),
    ),
    "order event an item without item_id": Bad(
        "POST",
        "/events",
        {**EVENT, "type": "order.updated", "data": {"order_id": "o-1", "items": [{"status": "x"}]}},
        named=("$.data", "items[0].item_id"),
    ),
    "event data over 64 KiB": Bad(
        "POST", "/events", {**EVENT, "data": {"b": BIG}}, named=("$.data",)
    ),
    "event in year 1": Bad(
        "POST",
        "/events",
        {**EVENT, "occurred_at": "0001-01-01T00:00:00+14:00"},
        named=("occurred_at",),
    ),
    "event in year 9999": Bad(
        "POST", "/events", {**EVENT, "occurred_at": "9999-12-31T23:59:59Z"}, named=("occurred_at",)
    ),
    "event data a string": Bad("POST", "/events", {**EVENT, "data": "x"}, named=("$.data",)),
    "event an unknown field": Bad("POST", "/events", {**EVENT, "extra": 1}, named=("$.extra",)),
    # --- profiles ---
    "upsert malformed JSON": Bad("PUT", "/profiles/customers/ada", raw=b"{]", named=("JSON",)),
    "upsert fields a list": Bad(
        "PUT", "/profiles/customers/ada", {"fields": []}, named=("$.fields",)
    ),
    "upsert an unknown source": Bad(
        "PUT",
        "/profiles/customers/ada",
        {"fields": {"vip": False}, "source": "fax"},
        named=("$.source",),
    ),
    "upsert a huge number": Bad(
        "PUT", "/profiles/customers/ada", raw=b'{"fields": {"n": -1e999}}', named=("$.fields.n",)
    ),
    "upsert an unknown field": Bad(
        "PUT", "/profiles/customers/ada", {"fields": {}, "extra": 1}, named=("$.extra",)
    ),
    "upsert a number beyond 1E+125": Bad(
        "PUT", "/profiles/customers/ada", {"fields": {"n": 1e200}}, named=("$.fields.n",)
    ),
    "upsert fields over 256 KiB": Bad(
        "PUT", "/profiles/customers/ada", {"fields": {"b": BIG * 4}}, named=("$.fields",)
    ),
    "upsert a too long id": Bad(
        "PUT", "/profiles/customers/" + "x" * 201, {"fields": {}}, named=("profile_id",)
    ),
    "import 1001": Bad(
        "POST",
        "/profiles/customers/import",
        {"profiles": [{"profile_id": f"p{n}", "fields": {}} for n in range(1001)]},
        named=("$.profiles",),
    ),
    "import none": Bad("POST", "/profiles/customers/import", {"profiles": []}),
    "import one bad among good": Bad(
        "POST",
        "/profiles/customers/import",
        {"profiles": [{"profile_id": "new", "fields": {}}, {"profile_id": "bad", "fields": 1}]},
        named=("$.profiles[1].fields",),
    ),
    "import an empty profile_id": Bad(
        "POST",
        "/profiles/customers/import",
        {"profiles": [{"profile_id": "", "fields": {}}]},
        named=("$.profiles[0].profile_id",),
    ),
    "import the same id twice, too big together": Bad(
        "POST",
        "/profiles/customers/import",
        {
            "profiles": [
                {"profile_id": "ada", "fields": {"b": BIG * 3}},
                {"profile_id": "ada", "fields": {"c": BIG * 3}},
            ]
        },
        named=("$.profiles[0].fields",),
    ),
    "erase unknown": Bad("DELETE", "/profiles/customers/nobody", status=404, named=("nobody",)),
    "erase in an unknown database": Bad("DELETE", "/profiles/elsewhere/ada", status=404),
    # --- segments and promo pools ---
    "segment a bad operator": Bad(
        "PUT",
        "/segments/vips",
        {"where": {"field": "profile.vip", "op": "almost", "value": 1}},
        named=("$.where",),
    ),
    "segment an unknown condition": Bad(
        "PUT", "/segments/vips", {"where": {"teleport": True}}, named=("$.where",)
    ),
    "segment a condition over 64 KiB": Bad(
        "PUT",
        "/segments/vips",
        {"where": {"field": "profile.vip", "op": "eq", "value": BIG}},
        named=("$.where",),
    ),
    "segment without where": Bad("PUT", "/segments/new", {}, named=("$.where",)),
    "segment an empty profile_db": Bad(
        "PUT",
        "/segments/vips",
        {"where": {"field": "profile.vip", "op": "exists"}, "profile_db": ""},
        named=("$.profile_db",),
    ),
    "segment malformed JSON": Bad("PUT", "/segments/vips", raw=b"where", named=("JSON",)),
    "promo codes empty": Bad("PUT", "/promo-pools/SPRING", {"codes": []}, named=("$.codes",)),
    "promo codes a number": Bad(
        "PUT", "/promo-pools/SPRING", {"codes": ["C", 5]}, named=("$.codes[1]",)
    ),
    "promo code of 201 characters": Bad(
        "PUT", "/promo-pools/SPRING", {"codes": ["c" * 201]}, named=("$.codes[0]",)
    ),
    "promo codes 10001": Bad(
        "PUT", "/promo-pools/SPRING", {"codes": [f"c{n}" for n in range(10_001)]}
    ),
    # --- hooks ---
    "hook a wrong secret": Bad(
        "POST",
        "/hooks/{active}/crm",
        {"profile_id": "ada", "profile": {"vip": False}},
        status=401,
        named=("X-Signature",),
        sign="wrong",
    ),
    "hook a stale timestamp": Bad(
        "POST",
        "/hooks/{active}/crm",
        {"profile_id": "ada", "profile": {"vip": False}},
        status=401,
        named=("X-Timestamp",),
        sign="stale",
    ),
    "hook unsigned": Bad(
        "POST", "/hooks/{active}/crm", {"profile_id": "bob"}, status=401, named=("X-Signature",)
    ),
    "hook a signature for another body": Bad(
        "POST",
        "/hooks/{active}/crm",
        {"profile_id": "bob"},
        status=401,
        sign="valid",
        headers={"X-Signature": "sha256=" + "0" * 64},
    ),
    "hook signed without profile_id": Bad(
        "POST", "/hooks/{active}/crm", {"data": {}}, named=("$.profile_id",), sign="valid"
    ),
    "hook signed, profile a list": Bad(
        "POST",
        "/hooks/{active}/crm",
        {"profile_id": "bob", "profile": []},
        named=("$.profile",),
        sign="valid",
    ),
    "hook signed malformed JSON": Bad(
        "POST", "/hooks/{active}/crm", raw=b'{"profile_id": ', named=("JSON",), sign="valid"
    ),
    "hook an Idempotency-Key too long": Bad(
        "POST",
        "/hooks/{active}/crm",
        {"profile_id": "bob", "profile": {"vip": True}},
        named=("Idempotency-Key",),
        sign="valid",
        headers={"Idempotency-Key": "k" * 201},
    ),
    "hook an unknown trigger": Bad(
        "POST",
        "/hooks/{active}/nosuch",
        {"profile_id": "bob"},
        status=404,
        named=("nosuch",),
        sign="valid",
    ),
    "hook an event trigger": Bad(
        "POST", "/hooks/{active}/start", {"profile_id": "bob"}, status=404, sign="valid"
    ),
    "hook an unknown scenario": Bad(
        "POST", "/hooks/nosuch/crm", {"profile_id": "bob"}, status=404, sign="valid"
    ),
    "hook a stopped scenario": Bad(
        "POST",
        "/hooks/{stopped}/crm",
        {"profile_id": "bob", "profile": {"vip": True}},
        status=409,
        named=("stopped",),
        sign="stopped",
    ),
    # --- feedback ---
    "feedback an unknown message": Bad(
        "POST", "/feedback", {"message_id": "nosuch", "status": "opened"}, status=404
    ),
    "feedback an unknown status": Bad(
        "POST", "/feedback", {"message_id": "{message}", "status": "read"}, named=("$.status",)
    ),
    "feedback a naive time": Bad(
        "POST",
        "/feedback",
        {"message_id": "{message}", "status": "opened", "at": "2026-06-10T10:00:00"},
        named=("$.at",),
    ),
    "feedback without message_id": Bad(
        "POST", "/feedback", {"status": "opened"}, named=("$.message_id",)
    ),
    "feedback a message_id too long": Bad(
        "POST", "/feedback", {"message_id": "m" * 201, "status": "opened"}, named=("$.message_id",)
    ),
    "feedback malformed JSON": Bad("POST", "/feedback", raw=b"{{", named=("JSON",)),
    # --- pagination tokens (reads, but a bad token must not be an error either) ---
    "list a garbage token": Bad("GET", "/scenarios?next_token=garbage", named=("next_token",)),
    "list a token of another shape": Bad(
        "GET", "/scenarios?next_token=eyJhIjoxfQ==", named=("next_token",)
    ),
    "versions a garbage token": Bad(
        "GET", "/scenarios/{active}/versions?next_token=%%", named=("next_token",)
    ),
    "at node a garbage token": Bad(
        "GET", "/scenarios/{active}/nodes/wait/profiles?next_token=e30", named=("next_token",)
    ),
    "journeys a garbage token": Bad(
        "GET", "/profiles/customers/ada/journeys?next_token=abc", named=("next_token",)
    ),
    "list a token without sk": Bad(
        "GET", "/scenarios?next_token=" + token({"pk": "S#x"}), named=("next_token",)
    ),
    "versions a token of another scenario": Bad(
        "GET",
        "/scenarios/{active}/versions?next_token=" + token({"pk": "S#other", "sk": "V#000001"}),
        named=("next_token",),
    ),
    "at node a token of another node": Bad(
        "GET",
        "/scenarios/{active}/nodes/wait/profiles?next_token="
        + token({"instance_id": "i", "node_key": "x#y", "node_entered_at": "2026"}),
        named=("next_token",),
    ),
    "list a limit of 0": Bad("GET", "/scenarios?limit=0", named=("limit",)),
    # --- the local stack's clock ---
    "clock backwards": Bad("POST", "/local/clock", {"set": "2026-01-01T00:00:00Z"}),
    "clock a bad duration": Bad("POST", "/local/clock", {"advance": "soon"}, named=("advance",)),
    "clock neither": Bad("POST", "/local/clock", {}),
    # --- commerce ---
    "product a price as text": Bad("PUT", "/products/p1", {"price": "10"}, named=("$.price",)),
    "product a negative price": Bad("PUT", "/products/p1", {"price": -1}, named=("$.price",)),
    "product availability as 1": Bad(
        "PUT", "/products/p1", {"available": 1}, named=("$.available",)
    ),
    "product an unknown key": Bad("PUT", "/products/p1", {"stock": 3}, named=("$.stock",)),
    "product a region's bad price": Bad(
        "PUT", "/products/p1", {"regions": {"eu": {"price": "x"}}}, named=("$.regions.eu.price",)
    ),
    "product import not a list": Bad(
        "POST", "/products/import", {"products": {"product_id": "p1"}}, named=("$.products",)
    ),
    "product import too many": Bad(
        "POST",
        "/products/import",
        {"products": [{"product_id": f"p{i}"} for i in range(1001)]},
        named=("1000",),
    ),
    "list a quantity of 0": Bad(
        "PUT",
        "/profiles/customers/ada/lists/cart",
        {"items": [{"product_id": "p1", "quantity": 0}]},
        named=("$.items[0].quantity",),
    ),
    "list without items": Bad("PUT", "/profiles/customers/ada/lists/cart", {}, named=("$.items",)),
    "signals a bad duration": Bad(
        "PUT", "/settings/signals", {"session_timeout": "soon"}, named=("$.session_timeout",)
    ),
    "signals a negative duration": Bad(
        "PUT",
        "/settings/signals",
        {"cart_abandoned_after": "-PT1H"},
        named=("$.cart_abandoned_after",),
    ),
    "signals two schedules": Bad(
        "PUT",
        "/settings/signals",
        {"price_check": {"daily": "10:00", "cron": "0 9 * * *"}},
        named=("price_check",),
    ),
    "signals an unknown check": Bad(
        "PUT", "/settings/signals", {"price_check": "hourly"}, named=("price_check",)
    ),
}


def _resolve(value: Any, ids: dict[str, str]) -> Any:
    """The body with each string that is exactly `{name}` replaced by that seeded id."""
    if isinstance(value, str):
        placeholder = re.fullmatch(r"\{(\w+)\}", value)
        return ids[placeholder.group(1)] if placeholder else value
    if isinstance(value, dict):
        return {key: _resolve(inner, ids) for key, inner in value.items()}
    if isinstance(value, list):
        return [_resolve(inner, ids) for inner in value]
    return value


def call(stack: Stack, bad: Bad, ids: dict[str, str]) -> Any:
    """Make the bad call, signing it as `bad.sign` says."""
    path = bad.path.format(**ids)
    raw = bad.raw
    if raw is None and bad.body is not UNSET:
        raw = json.dumps(_resolve(bad.body, ids)).encode()
    headers = dict(bad.headers)
    if bad.sign is not None:
        secret = {"valid": ids["secret"], "stale": ids["secret"], "stopped": ids["stopped_secret"]}
        stamp = str(epoch(stack.now) - (301 if bad.sign == "stale" else 0))
        signature = sign(secret.get(bad.sign, "wrong-secret"), stamp, raw or b"")
        headers = {"X-Timestamp": stamp, "X-Signature": signature, **headers}
    return send(stack, bad.method, path, raw=raw or b"", key=bad.key, headers=headers)


@pytest.fixture(scope="module")
def last_seen(seeded: dict[str, str]) -> dict[str, Any]:
    """The snapshot the previous case left: nothing runs between two cases, so it is the
    next case's `before` (one Scan of everything per case instead of two)."""
    return {}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_a_4xx_and_changes_nothing(
    shared_stack: Stack, seeded: dict[str, str], last_seen: dict[str, Any], name: str
) -> None:
    bad = CASES[name]
    before = last_seen.get("snapshot") or snapshot(shared_stack)
    response = call(shared_stack, bad, seeded)
    after = last_seen["snapshot"] = snapshot(shared_stack)
    assert_problem(response, bad.status, *bad.named)
    assert after["queues"] == before["queues"]
    for table, items in before["tables"].items():
        assert after["tables"][table] == items, f"{name} changed the {table} table"
    assert after == before


def test_the_seeded_stack_is_what_the_cases_expect(
    shared_stack: Stack, seeded: dict[str, str]
) -> None:
    """The cases are only meaningful against this state (and the state is idle)."""
    statuses = {
        name: shared_stack.get(f"/scenarios/{seeded[name]}")["status"]
        for name in ("active", "stopped", "trashed", "invalid", "draft", "long")
    }
    assert statuses == {
        "active": "active",
        "stopped": "stopped",
        "trashed": "trashed",
        "invalid": "draft",
        "draft": "draft",
        "long": "draft",
    }
    assert [i.status for i in shared_stack.instances("ada")] == ["active"]
    assert shared_stack.get("/segments/vips/count")["members"] == 1
    assert shared_stack.get("/promo-pools/SPRING")["left"] == 2
    before = snapshot(shared_stack)
    assert all(depth == "0" for q in before["queues"].values() for depth in q.values())
    assert snapshot(shared_stack) == before
