"""Properties of the scenario checker and the pure engine (SPEC §1, DESIGN "The engine is pure").

1. `check_scenario` never raises: any JSON-ish document gets a list of problems.
2. On random *valid* scenario graphs and random event timelines the engine
   - never crashes and never mutates what it is given;
   - runs one node of an instance at a time: within a step, `node_entered` of a node
     only follows `node_exited` of the previous one, and an active instance is counted
     in exactly the node it stands on;
   - answers each stimulus at most once: a replayed or stale WakeUp, WebhookResult or
     PromoCodeResult changes nothing;
   - always stops: one call enters at most MAX_INSTANT_STEPS nodes, never ends in
     `loop_limit` when every loop waits a positive time, always leaves an active
     instance waiting on something with the request for it among the effects, and a
     journey driven by its own SetTimer / CallWebhook / TakePromoCode effects in
     virtual time makes a bounded number of calls.

Valid graphs are valid by construction (and checked with `check_scenario`): nodes
n0…nk link forward to any later node, and back only to waiting nodes, so every cycle
passes through one. "Zero waits" (a PT0S or negative pause, a past `until`, a
days-only pause, a wait_for whose condition already holds…) are valid too but can let
a loop go round without time passing; they are generated only where the property does
not depend on loops taking time; the tests at the end pin the zero-wait loops and the
documents that once crashed validation.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import event as tally
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from chalicelib.engine import (
    ACTIVE,
    CallWebhook,
    CompiledScenario,
    CountStat,
    EventArrived,
    Exit,
    Instance,
    PromoCodeResult,
    Send,
    SetTimer,
    Step,
    TakePromoCode,
    WakeUp,
    WebhookResult,
    advance,
    capture,
)
from chalicelib.engine.compiled import compile_template
from chalicelib.engine.interpreter import MAX_INSTANT_STEPS
from chalicelib.engine.state import EVENT, PROMO_CODE, TIMER, WEBHOOK
from chalicelib.scenarios.conditions import compile_condition
from chalicelib.scenarios.facts import Event, Message, Profile
from chalicelib.scenarios.model import Condition
from chalicelib.scenarios.templates import render
from chalicelib.scenarios.validation import check_scenario

# PROPERTY_SCALE=20 runs twenty times the examples (a deeper search, well over 30 s).
SCALE = float(os.environ.get("PROPERTY_SCALE", "1"))
START = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
HORIZON = timedelta(days=3)  # how far a journey is driven in virtual time
EXTERNAL_DELAY = timedelta(seconds=1)  # webhooks and promo codes answer after this
NODE_TYPES = (
    "send", "webhook", "pause", "best_time", "wait_for", "condition", "split", "ab_split",
    "update_profile", "promo_code", "jump", "exit",
)  # fmt: skip
WAITING = frozenset({"pause", "best_time", "wait_for"})
EVENT_TYPES = ("order.created", "subscription.confirmed", "page.viewed", "cart.updated")
CHANNELS = ("email", "sms", "push")
SEGMENTS = {
    "vip": compile_condition(
        TypeAdapter(Condition).validate_python(
            {"field": "profile.city", "op": "eq", "value": "Paris"}
        )
    )
}

# --- 1. any document: check_scenario lists problems, never raises --------------------

INTERESTING_STRINGS = (
    "", "a", "b", "n0", "n1", "missing", "a b", "send", "webhook", "pause", "best_time",
    "wait_for", "condition", "split", "ab_split", "update_profile", "promo_code", "jump",
    "exit", "event", "schedule", "P1D", "PT0S", "-P1D", "P1M", "PT", "P", "PX", "10:00",
    "25:00", "2026-06-01T10:00:00Z", "2026-13-01", "2026-06-01", "profile.city",
    "profile.", "event.data.x", "vars.x", "instance.entered_at", "instance.x", "entry",
    "email", "sms", "push", "fax", "eq", "between", "in", "on_day", "exists", "grant",
    "increment", "set", "{{ profile.first_name }}", "{{", "{% if %}", "{{ 1/0 }}",
    "0 10 * * mon", "* * *", "Europe/Berlin", "Mars/Base", "America", "mon", "never",
    "restart", "delay", "POST", "opened",
)  # fmt: skip
DOCUMENT_KEYS = (
    "name", "description", "tags", "group", "profile_db", "reentry", "exit_on",
    "keep_profiles_on_stop", "quiet_hours", "frequency_cap", "timezone", "actuality",
    "entry", "triggers", "nodes",
)  # fmt: skip
ELEMENT_KEYS = (
    "id", "event", "where", "limit", "actuality", "next", "cron", "daily", "weekly",
    "monthly", "once", "timezone", "until", "segment", "sample", "channel", "template",
    "to", "ttl", "url", "method", "headers", "body", "timeout", "save_as", "on_error",
    "duration", "until_field", "offset", "at", "days", "within", "fallback", "condition",
    "timeout_next", "if", "then", "else", "branches", "percent", "name", "ops", "field",
    "op", "value", "consent", "pool", "on_empty", "scenario", "node", "max", "per",
    "subject", "html", "title", "from", "start", "end", "on_cap", "granted", "exists",
    "member", "message", "event_count", "all", "any", "not", "status", "since", "ref",
    "now", "today", "day", "from_", "if_",
)  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-1000, 1000)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.sampled_from(INTERESTING_STRINGS)
)
keys = st.sampled_from(ELEMENT_KEYS) | st.text(max_size=6)


def _jsonish(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
        max_leaves=12,
    )


json_values = _jsonish(scalars)


def _junk_condition() -> st.SearchStrategy[Any]:
    rules = (
        st.fixed_dictionaries(
            {},
            optional={
                "field": st.sampled_from(INTERESTING_STRINGS) | scalars,
                "op": st.sampled_from(("eq", "in", "between", "exists", "on_day", "gt", "xx")),
                "value": json_values,
            },
        )
        | st.fixed_dictionaries(
            {"event_count": st.dictionaries(keys, json_values, max_size=4)},
            optional={"op": scalars, "value": scalars},
        )
        | st.fixed_dictionaries(
            {"message": st.dictionaries(keys, scalars, max_size=4)}, optional={"exists": scalars}
        )
        | st.fixed_dictionaries({"segment": scalars}, optional={"member": scalars})
        | st.fixed_dictionaries({"consent": scalars}, optional={"granted": scalars})
        | json_values
    )
    return st.recursive(
        rules,
        lambda inner: (
            st.fixed_dictionaries({"all": st.lists(inner, max_size=3) | inner})
            | st.fixed_dictionaries({"any": st.lists(inner, max_size=3)})
            | st.fixed_dictionaries({"not": inner})
        ),
        max_leaves=6,
    )


junk_conditions = _junk_condition()
node_refs = st.sampled_from(("a", "b", "c", "missing", "")) | scalars
element_values = node_refs | json_values | junk_conditions
junk_elements = st.builds(
    lambda kind, rest: {"type": kind[0], **rest} if kind else rest,
    st.none() | st.tuples(st.sampled_from((*NODE_TYPES, "event", "schedule", "nope")) | scalars),
    st.dictionaries(st.sampled_from(ELEMENT_KEYS), element_values, max_size=6),
)
junk_branches = st.lists(
    st.dictionaries(st.sampled_from(("name", "if", "next", "percent")), element_values, max_size=4),
    max_size=3,
)
junk_nodes = st.builds(
    lambda node, branches: {**node, "branches": branches} if branches else node,
    junk_elements,
    st.none() | junk_branches,
)
junk_documents = st.fixed_dictionaries(
    {},
    optional={
        "name": scalars,
        "entry": node_refs,
        "reentry": scalars,
        "triggers": st.lists(junk_elements | json_values, max_size=3) | json_values,
        "nodes": st.dictionaries(
            st.sampled_from(("a", "b", "c", "a b", "")) | st.text(max_size=5),
            junk_nodes | json_values,
            max_size=5,
        )
        | json_values,
        "exit_on": st.lists(
            st.fixed_dictionaries({}, optional={"event": scalars, "where": junk_conditions}),
            max_size=2,
        )
        | json_values,
        "quiet_hours": st.dictionaries(st.sampled_from(("start", "end")), scalars) | scalars,
        "frequency_cap": st.dictionaries(
            st.sampled_from(("max", "per", "channel", "on_cap")), scalars
        ),
        "timezone": scalars,
        "actuality": scalars,
        "tags": json_values,
        "surprise": json_values,
    },
) | st.dictionaries(st.sampled_from(DOCUMENT_KEYS) | st.text(max_size=5), json_values, max_size=6)


def _walk(value: Any) -> Any:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


_HUGE_NUMBER = re.compile(r"\d{10,}")


@settings(max_examples=int(300 * SCALE))
@given(document=junk_documents | json_values)
def test_check_scenario_lists_problems_and_never_raises(document: Any) -> None:
    scenario, problems = check_scenario(document)
    assert (scenario is None) == bool(problems)
    for problem in problems:
        assert problem.path.startswith("$")
        assert isinstance(problem.message, str)
        assert problem.message


# --- the engine's template fast path renders exactly as Jinja -----------------------

TEMPLATE_PIECES = (
    "Hi ", "{{ profile.first_name }}", "{{profile.first_name}}", "{{ vars.code }}",
    "{{ profile.address.city }}", "{{ profile.missing.deeper }}", "{{ profile.items }}",
    "{{ profile.first_name.upper }}", "{{ nothing }}", "{{ range }}", "{{ event.data.x }}",
    "{{ scenario.name }}", "{{ profile.n | default(1) }}", "{{- vars.code }}", "{{{ vars.code }}",
    "{% if vars.code %}yes{% endif %}", "{# note #}", "{", "}", "}}", "{x}", " & <b>",
    "\n", "\r\n", '{"phone": "', '"}', "{{ profile.tags }}", "{{ none }}", "{{ vars.none }}",
    "100%", "%s", "%%", "{{ scenario.name.x }}",
)  # fmt: skip
template_values = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
template_values = template_values | st.lists(template_values, max_size=2)
template_contexts = st.fixed_dictionaries(
    {
        "profile": st.dictionaries(
            st.sampled_from(("first_name", "address", "tags", "items", "n")),
            template_values | st.fixed_dictionaries({"city": template_values}),
        ),
        "vars": st.dictionaries(st.sampled_from(("code", "none")), template_values),
        "event": st.fixed_dictionaries({"data": st.dictionaries(st.just("x"), template_values)}),
        "scenario": st.just({"name": "Welcome <series>", "id": "s1", "version": 2}),
    }
)


@settings(max_examples=int(200 * SCALE))
@given(
    pieces=st.lists(st.sampled_from(TEMPLATE_PIECES), max_size=5),
    context=template_contexts,
    html=st.booleans(),
)
def test_the_engines_template_fast_path_renders_as_jinja(
    pieces: list[str], context: dict[str, Any], html: bool
) -> None:
    source = "".join(pieces)
    assert compile_template(source, html)(context) == render(source, context, html)


# --- 2. valid scenario graphs --------------------------------------------------------

POSITIVE_DURATIONS = ("PT1H", "PT2H", "PT6H", "P1D", "P2D")
ZERO_DURATIONS = ("PT0S", "-PT1H")
CLOCKS = ("00:00", "09:30", "10:00", "21:00", "23:59")
PATHS = (
    "profile.city", "profile.age", "profile.first_name", "profile.last_order_at",
    "profile.tags", "profile.n", "profile.profile_id", "profile.address.city",
    "profile.consents.email", "event.type", "event.data.x", "event.occurred_at",
    "entry.data.order_id", "vars.resp", "vars.promo_code", "instance.entered_at",
)  # fmt: skip
LITERALS = (
    0, 1, 18, 30, 2.5, -3, "Paris", "Berlin", "10", "a", True, False,
    "2026-05-01T00:00:00Z", "2026-06-02", {"now": "-P30D"}, {"now": "PT1H"},
    {"today": 0}, {"today": -1}, {"ref": "profile.city"}, {"ref": "event.data.x"},
)  # fmt: skip
TEMPLATES = (
    "Hello", "Hi {{ profile.first_name }}", "Code {{ vars.promo_code }}",
    "{{ event.data.x | default('-') }}", "{{ 1 / 0 }}", "{% for t in profile.tags %}{{ t }}{% endfor %}",
    "{{ scenario.name }} v{{ scenario.version }}", "{{ profile.missing.deeper }}",
)  # fmt: skip


def _field_rule() -> st.SearchStrategy[dict[str, Any]]:
    literal = st.sampled_from(LITERALS)

    def value_for(op: str) -> st.SearchStrategy[Any]:
        if op in ("in", "not_in"):
            return st.lists(literal, max_size=3)
        if op == "between":
            return st.lists(literal, min_size=2, max_size=2)
        return literal

    ops = st.sampled_from(
        ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "not_contains",
         "starts_with", "ends_with", "between", "on_day")
    )  # fmt: skip
    with_value = ops.flatmap(
        lambda op: st.fixed_dictionaries(
            {"field": st.sampled_from(PATHS), "op": st.just(op), "value": value_for(op)}
        )
    )
    presence = st.fixed_dictionaries(
        {"field": st.sampled_from(PATHS), "op": st.sampled_from(("exists", "not_exists"))}
    )
    return with_value | presence


def _conditions() -> st.SearchStrategy[dict[str, Any]]:
    since = st.sampled_from(("entry", "P7D", "PT1H", "-P1D"))
    leaves = (
        _field_rule()
        | st.fixed_dictionaries(
            {
                "event_count": st.fixed_dictionaries(
                    {"type": st.sampled_from(EVENT_TYPES)},
                    optional={"since": since, "where": _field_rule()},
                ),
                "op": st.sampled_from(("eq", "ne", "gt", "gte", "lt", "lte")),
                "value": st.integers(0, 3),
            }
        )
        | st.fixed_dictionaries(
            {
                "message": st.fixed_dictionaries(
                    {},
                    optional={
                        "channel": st.sampled_from(CHANNELS),
                        "status": st.sampled_from(("sent", "opened", "clicked")),
                        "node": st.sampled_from(("n0", "n1", "n2")),
                        "since": since,
                    },
                )
            },
            optional={"exists": st.booleans()},
        )
        | st.fixed_dictionaries(
            {"segment": st.sampled_from(("vip", "unknown"))}, optional={"member": st.booleans()}
        )
        | st.fixed_dictionaries(
            {"consent": st.sampled_from(CHANNELS)}, optional={"granted": st.booleans()}
        )
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.fixed_dictionaries({"all": st.lists(inner, min_size=1, max_size=3)})
            | st.fixed_dictionaries({"any": st.lists(inner, min_size=1, max_size=3)})
            | st.fixed_dictionaries({"not": inner})
        ),
        max_leaves=4,
    )


conditions = _conditions()


def _waiting_node(draw: st.DrawFn, kind: str, zero_waits: bool) -> tuple[dict[str, Any], bool]:
    """A waiting node and whether it always waits a positive time (so it may head a loop
    that external calls go round in)."""
    duration = st.sampled_from(POSITIVE_DURATIONS)
    if kind == "best_time":
        node: dict[str, Any] = {"type": "best_time"}
        windows = ("PT1H", "PT12H", "P1D", "P2D") + (("PT0S",) if zero_waits else ())
        if draw(st.booleans()):
            node["within"] = draw(st.sampled_from(windows))
        if draw(st.booleans()):
            node["fallback"] = draw(st.sampled_from(CLOCKS))
        return node, node.get("within") != "PT0S"
    if kind == "pause":
        variants = ["duration", "at"] + (
            ["zero", "until", "until_field", "days"] if zero_waits else []
        )
        variant = draw(st.sampled_from(variants))
        node = {"type": "pause"}
        if variant == "duration":
            node["duration"] = draw(duration)
        elif variant == "zero":
            node["duration"] = draw(st.sampled_from(ZERO_DURATIONS))
        elif variant == "until":
            node["until"] = (
                START + draw(st.sampled_from((-1, 0, 2, 30))) * timedelta(hours=1)
            ).isoformat()
        elif variant == "until_field":
            node["until_field"] = draw(
                st.sampled_from(("profile.birthday", "event.data.delivery_date", "vars.resp.date"))
            )
            if draw(st.booleans()):
                node["offset"] = draw(st.sampled_from(("PT2H", "-P1D", "PT0S")))
        if variant == "at" or draw(st.booleans()):
            node["at"] = draw(st.sampled_from(CLOCKS))
        if variant == "days" or draw(st.booleans()):
            node["days"] = draw(
                st.lists(
                    st.sampled_from(("mon", "tue", "wed", "thu", "fri", "sat", "sun")),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            )
        positive = variant in ("duration", "at")  # a days-only pause passes all day
        return node, positive
    # wait_for
    if zero_waits and draw(st.booleans()):
        node = {"type": "wait_for", "condition": draw(conditions)}
        if draw(st.booleans()):
            node["timeout"] = draw(duration | st.sampled_from(ZERO_DURATIONS))
        return node, False
    node = {"type": "wait_for", "event": draw(st.sampled_from(EVENT_TYPES))}
    if draw(st.booleans()):
        node["where"] = draw(conditions)
    if draw(st.booleans()):
        node["timeout"] = draw(
            duration | st.sampled_from(ZERO_DURATIONS) if zero_waits else duration
        )
    return node, node.get("timeout") not in ZERO_DURATIONS


def _other_node(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    template = st.sampled_from(TEMPLATES)
    if kind == "send":
        channel = draw(st.sampled_from(CHANNELS))
        parts = draw(
            st.dictionaries(
                st.sampled_from(("subject", "body", "html", "title", "url", "from")), template
            )
        )
        node = {"type": "send", "channel": channel, "template": parts}
        if channel != "push" and draw(st.integers(0, 4)) == 0:
            node["to"] = draw(st.sampled_from(("boss@example.com", "{{ profile.manager }}", " ")))
        if channel == "push" and draw(st.booleans()):
            node["ttl"] = draw(st.sampled_from(("PT1H", "PT72H")))
        return node
    if kind == "webhook":
        node = {
            "type": "webhook",
            "url": draw(
                st.sampled_from(
                    ("https://x.example/h", "https://x.example/{{ profile.profile_id }}")
                )
            ),
            "method": draw(st.sampled_from(("GET", "POST"))),
        }
        if draw(st.booleans()):
            node["headers"] = {"X-City": draw(template)}
        if draw(st.booleans()):
            node["body"] = draw(template)
        if draw(st.booleans()):
            node["save_as"] = "resp"
        return node
    if kind == "condition":
        return {"type": "condition", "if": draw(conditions)}
    if kind == "split":
        count = draw(st.integers(1, 3))
        return {
            "type": "split",
            "branches": [
                {"if": draw(conditions), **({"name": f"b{i}"} if draw(st.booleans()) else {})}
                for i in range(count)
            ],
        }
    if kind == "ab_split":
        count = draw(st.integers(1, 3))
        cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=count - 1, max_size=count - 1)))
        bounds = [0, *cuts, 100]
        return {
            "type": "ab_split",
            "branches": [{"percent": bounds[i + 1] - bounds[i]} for i in range(count)],
        }
    if kind == "update_profile":
        fields = st.sampled_from(
            ("n", "city", "first_name", "email", "timezone", "birthday", "consents")
        )
        values = st.sampled_from((1, 2.5, "Paris", "Mars/Base", "x@y.co", "2026-06-02T08:00:00Z"))
        field_op = (
            st.fixed_dictionaries({"field": fields, "op": st.just("set"), "value": values})
            | st.fixed_dictionaries({"field": fields, "op": st.sampled_from(("clear", "now"))})
            | st.fixed_dictionaries(
                {"field": fields, "op": st.sampled_from(("increment", "decrement"))},
                optional={"value": st.integers(1, 5) | st.just(0.5)},
            )
        )
        consent_op = st.fixed_dictionaries(
            {"consent": st.sampled_from(CHANNELS), "op": st.sampled_from(("grant", "revoke"))}
        )
        return {
            "type": "update_profile",
            "ops": draw(st.lists(field_op | consent_op, min_size=1, max_size=3)),
        }
    if kind == "promo_code":
        node = {"type": "promo_code", "pool": "WELCOME10"}
        if draw(st.booleans()):
            node["save_as"] = "code"
        return node
    if kind == "jump":
        node = {"type": "jump", "scenario": "other"}
        if draw(st.booleans()):
            node["node"] = "n0"
        return node
    return {"type": "exit"}


# The links each node type has, by the key they sit under.
_LINKS = {
    "send": ("next",),
    "webhook": ("next", "on_error"),
    "pause": ("next",),
    "best_time": ("next",),
    "wait_for": ("next", "timeout_next"),
    "condition": ("then", "else"),
    "split": ("else",),
    "ab_split": (),
    "update_profile": ("next",),
    "promo_code": ("next", "on_empty"),
    "jump": (),
    "exit": (),
}


@st.composite
def scenario_documents(draw: st.DrawFn, zero_waits: bool) -> dict[str, Any]:
    """A valid scenario: forward links anywhere later, back links only to waiting nodes
    (with `zero_waits` False: only to waiting nodes that always wait a positive time)."""
    count = draw(st.integers(1, 8))
    ids = [f"n{i}" for i in range(count)]
    kinds = draw(st.lists(st.sampled_from(NODE_TYPES), min_size=count, max_size=count))
    nodes: dict[str, dict[str, Any]] = {}
    loop_heads: list[int] = []
    for index, (node_id, kind) in enumerate(zip(ids, kinds, strict=True)):
        if kind in WAITING:
            node, positive = _waiting_node(draw, kind, zero_waits)
            if positive or zero_waits:
                loop_heads.append(index)
        else:
            node = _other_node(draw, kind)
        targets = [ids[j] for j in range(index + 1, count)] + [ids[j] for j in loop_heads]
        link = st.none() | st.sampled_from(targets) if targets else st.none()
        for key in _LINKS[kind]:
            target = draw(link)
            if target is not None:
                node[key] = target
        for branch in node.get("branches", ()):
            target = draw(link)
            if target is not None:
                branch["next"] = target
        nodes[node_id] = node
    document: dict[str, Any] = {
        "name": "property",
        "entry": draw(st.sampled_from(ids)),
        "reentry": draw(st.sampled_from(("never", "when_finished", "restart", "parallel"))),
        "nodes": nodes,
    }
    triggers = []
    for index in range(draw(st.integers(0, 2))):
        trigger: dict[str, Any] = {
            "id": f"t{index}",
            "type": "event",
            "event": draw(st.sampled_from(EVENT_TYPES)),
            "next": draw(st.sampled_from(ids)),
        }
        if draw(st.booleans()):
            trigger["where"] = draw(conditions)
        if draw(st.integers(0, 3)) == 0:
            trigger["limit"] = {
                "max": draw(st.integers(1, 2)),
                "per": draw(st.sampled_from(("profile", "event.data.order_id"))),
                **({"within": "P1D"} if draw(st.booleans()) else {}),
            }
        if draw(st.integers(0, 3)) == 0:
            trigger["actuality"] = draw(st.sampled_from(("PT1H", "P1D")))
        triggers.append(trigger)
    if triggers:
        document["triggers"] = triggers
    if draw(st.booleans()):
        document["exit_on"] = [
            {"event": draw(st.sampled_from(EVENT_TYPES))}
            | ({"where": draw(conditions)} if draw(st.booleans()) else {})
        ]
    if draw(st.integers(0, 3)) == 0:
        document["quiet_hours"] = {
            "start": draw(st.sampled_from(CLOCKS)),
            "end": draw(st.sampled_from(CLOCKS)),
        }
    if draw(st.integers(0, 3)) == 0:
        document["frequency_cap"] = {
            "max": draw(st.integers(1, 3)),
            "per": draw(st.sampled_from(("PT1H", "P1D"))),
            "on_cap": draw(st.sampled_from(("skip", "delay"))),
        } | ({"channel": draw(st.sampled_from(CHANNELS))} if draw(st.booleans()) else {})
    if draw(st.booleans()):
        document["timezone"] = draw(
            st.sampled_from(("Europe/London", "America/New_York", "Asia/Kathmandu"))
        )
    if draw(st.integers(0, 3)) == 0:
        document["actuality"] = draw(st.sampled_from(("PT1H", "P1D", "P3D")))
    return document


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    optional = {
        "first_name": st.sampled_from(("Ada", "", "{{ x }}")),
        "email": st.sampled_from(("ada@example.com", "not-an-email", "")),
        "phone": st.sampled_from(("+14155550100", "12345")),
        "timezone": st.sampled_from(("Europe/London", "Asia/Tokyo", "Mars/Base", "America")),
        "consents": st.dictionaries(st.sampled_from(CHANNELS), st.booleans() | st.just("yes"))
        | st.sampled_from(("all", ["email"])),
        "push": st.just(
            [
                {"endpoint": "https://push.example/1", "keys": {"p256dh": "p", "auth": "a"}},
                {"no": "endpoint"},
            ]
        ),
        "city": st.sampled_from(("Paris", "Berlin")),
        "age": st.sampled_from((17, 30, "40", None)),
        "last_order_at": st.sampled_from(("2026-05-25T10:00:00Z", "yesterday")),
        "birthday": st.sampled_from(("2026-06-02T00:00:00Z", "2026-05-01", "never")),
        "n": st.sampled_from((0, 5, "x")),
        "tags": st.lists(st.sampled_from(("a", "b")), max_size=2),
        "address": st.just({"city": "Paris"}),
    }
    fields = draw(st.fixed_dictionaries({}, optional=optional))
    messages = []
    for index in range(draw(st.integers(0, 2))):
        at = START - timedelta(days=2, hours=draw(st.integers(0, 30)))
        messages.append(
            Message(f"old-{index}", "property", "n0", "email", at, {"sent": at, "opened": at})
        )
    return Profile("p1", fields, [], messages)


@dataclass(frozen=True)
class TimelineItem:
    offset: timedelta  # when it happened, after START
    delay: timedelta  # how much later it arrives
    type: str
    data: dict[str, Any]


timelines = st.lists(
    st.builds(
        TimelineItem,
        offset=st.integers(0, 3 * 24 * 4).map(lambda quarter: timedelta(minutes=15 * quarter)),
        delay=st.sampled_from((timedelta(0), timedelta(0), timedelta(hours=5), timedelta(days=1))),
        type=st.sampled_from(EVENT_TYPES),
        data=st.fixed_dictionaries(
            {},
            optional={
                "x": st.sampled_from((1, "a", "Paris")),
                "order_id": st.sampled_from(("o1", "o2")),
                "delivery_date": st.sampled_from(("2026-06-02T10:00:00Z", "bad")),
            },
        ),
    ),
    max_size=5,
)


# --- the driver: in-memory ports, virtual time, and the checks of every call ---------


@dataclass
class Driver:
    """Runs the journeys of one profile through one scenario in virtual time, answering
    the engine's own requests, and checks every engine call."""

    scenario: CompiledScenario
    profile: Profile
    outcomes: Any  # hypothesis `data`, for webhook and promo code answers
    loops_take_time: bool
    instances: dict[str, Instance] = field(default_factory=dict)
    queue: list[tuple[datetime, int, str, Any]] = field(default_factory=list)
    order: itertools.count = field(default_factory=itertools.count)
    timers: list[tuple[str, int]] = field(default_factory=list)  # every (instance, step) set
    max_calls_per_instance: int | None = None
    calls: int = 0
    calls_of: dict[str, int] = field(default_factory=dict)

    def schedule(self, at: datetime, kind: str, payload: Any) -> None:
        heapq.heappush(self.queue, (at, next(self.order), kind, payload))

    def run(self, timeline: list[TimelineItem], max_calls: int) -> None:
        for index, item in enumerate(timeline):
            event = Event(item.type, START + item.offset, dict(item.data), id=f"e{index}")
            self.schedule(event.occurred_at + item.delay, "event", event)
        self.schedule(START, "capture", Event("api", START, {}, id="api"))
        while self.queue and self.queue[0][0] <= START + HORIZON and self.calls < max_calls:
            now, _, kind, payload = heapq.heappop(self.queue)
            if kind == "capture":
                self.capture(payload, None, now)
            elif kind == "event":
                self.profile.events.append(payload)
                for instance in list(self.instances.values()):
                    if instance.active:
                        self.advance(instance.instance_id, EventArrived(payload), now)
                for trigger_id, trigger in self.scenario.triggers.items():
                    if getattr(trigger, "event", None) == payload.type:
                        self.capture(payload, trigger_id, now)
            else:
                instance_id, stimulus = payload
                self.advance(instance_id, stimulus, now)
                self.replay_old_timer(instance_id, now)
        for instance in self.instances.values():
            tally(f"ended {instance.status} {instance.reason}")
            tally(f"took {max(0, instance.step - 1) // 5 * 5}+ steps")
        tally(f"{len(self.instances)} instance(s)")

    # --- engine calls ---

    def capture(self, event: Event, trigger_id: str | None, now: datetime) -> None:
        existing = list(self.instances.values())
        before = copy.deepcopy((existing, self.profile))
        admission = capture(
            self.scenario,
            self.profile,
            event,
            instance_id=f"i{len(self.instances)}",
            now=now,
            trigger_id=trigger_id,
            existing=existing,
            segments=SEGMENTS,
        )
        assert (existing, self.profile) == before, "capture changed what it was given"
        assert (admission.refused is None) == bool(admission.steps)
        old = {i.instance_id: i for i in existing}
        for step in admission.steps:
            self.apply(old.get(step.instance.instance_id), step, now)

    def advance(self, instance_id: str, stimulus: Any, now: datetime) -> None:
        instance = self.instances[instance_id]
        before = copy.deepcopy((instance, self.profile))
        step = advance(self.scenario, instance, self.profile, stimulus, now, SEGMENTS)
        assert (instance, self.profile) == before, "advance changed what it was given"
        self.apply(instance, step, now)
        if step.effects and isinstance(stimulus, WakeUp | WebhookResult | PromoCodeResult):
            # at-least-once delivery: the same stimulus again is a no-op
            again = advance(self.scenario, step.instance, self.profile, stimulus, now, SEGMENTS)
            assert again.effects == [], f"{stimulus} answered twice"
            assert again.instance == step.instance

    def replay_old_timer(self, instance_id: str, now: datetime) -> None:
        """A stale wake-up (an earlier step's timer, delivered late) changes nothing."""
        instance = self.instances[instance_id]
        old = [s for i, s in self.timers if i == instance_id and s != instance.step]
        if not old:
            return
        step_number = old[self.outcomes.draw(st.integers(0, len(old) - 1), label="old timer")]
        step = advance(self.scenario, instance, self.profile, WakeUp(step_number), now)
        assert step.effects == []
        assert step.instance == instance

    def apply(self, before: Instance | None, step: Step, now: datetime) -> None:
        self.calls += 1
        check_step(self.scenario, before, step, now, loops_take_time=self.loops_take_time)
        instance = step.instance
        self.instances[instance.instance_id] = instance
        if step.profile is not None:
            self.profile = step.profile
        if before is not None and before.active:
            calls = self.calls_of[instance.instance_id] = (
                self.calls_of.get(instance.instance_id, 0) + 1
            )
            limit = self.max_calls_per_instance
            assert limit is None or calls <= limit, f"{instance.instance_id}: {calls} calls"
        for effect in step.effects:
            if isinstance(effect, SetTimer):
                self.timers.append((instance.instance_id, effect.step))
                self.schedule(
                    effect.wake_at, "stimulus", (instance.instance_id, WakeUp(effect.step))
                )
            elif isinstance(effect, CallWebhook):
                ok = self.outcomes.draw(st.booleans(), label="webhook ok")
                body = {"date": "2026-06-02T12:00:00Z"} if ok else None
                result = WebhookResult(effect.step, ok, 200 if ok else 500, body)
                self.schedule(now + EXTERNAL_DELAY, "stimulus", (instance.instance_id, result))
            elif isinstance(effect, TakePromoCode):
                code = self.outcomes.draw(st.sampled_from(("CODE-1", None)), label="promo code")
                result = PromoCodeResult(effect.step, code)
                self.schedule(now + EXTERNAL_DELAY, "stimulus", (instance.instance_id, result))


def check_step(
    scenario: CompiledScenario,
    before: Instance | None,
    step: Step,
    now: datetime,
    *,
    loops_take_time: bool,
) -> None:
    """The invariants of one engine call's answer."""
    instance = step.instance
    was_active = before is not None and before.active
    inside = before.node if was_active and before is not None else None
    entered = exits = 0
    for effect in step.effects:
        if isinstance(effect, CountStat) and effect.name == "node_entered":
            assert inside is None, f"entered {effect.node} while still in {inside}"
            assert effect.node in scenario.nodes
            inside = effect.node
            entered += 1
        elif isinstance(effect, CountStat) and effect.name == "node_exited":
            assert inside == effect.node, f"left {effect.node} while in {inside}"
            inside = None
        elif isinstance(effect, Exit):
            exits += 1
            assert effect.instance_id == instance.instance_id
            assert effect.status == instance.status
        elif isinstance(effect, SetTimer):
            assert effect.wake_at > now, "a timer for now or the past would spin"
            assert effect.instance_id == instance.instance_id
        elif isinstance(effect, Send):
            assert effect.deliver_at is None or effect.deliver_at > now
    assert entered <= MAX_INSTANT_STEPS
    assert exits <= 1
    if before is None:
        assert step.effects[0] == CountStat("entered", group="treatment")
    elif not was_active:
        assert step.effects == [], "an ended instance moved"
        assert instance == before, "an ended instance moved"
    if loops_take_time:
        assert instance.reason != "loop_limit", "an instant loop ran to the engine's limit"
    if instance.active:
        assert exits == 0
        assert inside == instance.node, "an active instance is counted in its node"
        assert instance.node in scenario.nodes
        assert instance.path[-1]["node"] == instance.node
        assert instance.waiting in (TIMER, EVENT, WEBHOOK, PROMO_CODE), "active but not waiting"
        if instance.waiting == TIMER:
            assert instance.wake_at is not None
        if entered:  # it moved in this call: the request it waits for was just made
            requests = {
                TIMER: SetTimer,
                WEBHOOK: CallWebhook,
                PROMO_CODE: TakePromoCode,
                EVENT: SetTimer,
            }
            if instance.waiting != EVENT or instance.wake_at is not None:
                kind = requests[instance.waiting]
                made = [e for e in step.effects if isinstance(e, kind)]
                assert made, f"waits for {instance.waiting} without asking for it"
                assert made[-1].step == instance.step
    else:
        assert inside is None, "an ended instance is still counted in a node"
        assert instance.waiting is None
        assert instance.wake_at is None
        if was_active or before is None:
            assert exits == 1
        assert instance.status != ACTIVE


def _compile(document: dict[str, Any]) -> CompiledScenario:
    _, problems = check_scenario(document)
    assert problems == [], f"the generator made an invalid scenario: {problems}"
    return CompiledScenario.from_document(document, "property", 1)


@settings(max_examples=int(110 * SCALE))
@given(
    document=scenario_documents(zero_waits=True),
    profile=profiles(),
    timeline=timelines,
    outcomes=st.data(),
)
def test_engine_runs_one_node_at_a_time_and_answers_once(
    document: dict[str, Any], profile: Profile, timeline: list[TimelineItem], outcomes: Any
) -> None:
    """Any valid graph, zero waits included: no crash, no overlap, no double answer, and
    no call goes past MAX_INSTANT_STEPS."""
    driver = Driver(_compile(document), profile, outcomes, loops_take_time=False)
    driver.run(timeline, max_calls=300)


@settings(max_examples=int(110 * SCALE))
@given(
    document=scenario_documents(zero_waits=False),
    profile=profiles(),
    timeline=timelines,
    outcomes=st.data(),
)
def test_journeys_always_stop(
    document: dict[str, Any], profile: Profile, timeline: list[TimelineItem], outcomes: Any
) -> None:
    """When every loop passes a node that waits a positive time, no call ends in
    loop_limit, and in virtual time each instance makes a bounded number of calls."""
    nodes = len(document["nodes"])
    laps = HORIZON // timedelta(minutes=30) + 1  # every loop waits about an hour or more
    per_instance = laps * (nodes + 1) + len(timeline) + 1
    driver = Driver(
        _compile(document),
        profile,
        outcomes,
        loops_take_time=True,
        max_calls_per_instance=per_instance,
    )
    driver.run(timeline, max_calls=per_instance * (2 * len(timeline) + 2))


# --- regressions: bugs the properties found -----------------------------------------

NOW = datetime(2026, 6, 1, 10, tzinfo=UTC)  # a Monday
ADA = Profile("ada", {"email": "ada@example.com", "consents": {"email": True}, "a": "2026-01-01"})
DIGEST = {"type": "send", "channel": "email", "template": {"body": "digest"}, "next": "a"}


def _loop(loop_head: dict[str, Any]) -> CompiledScenario:
    """`a` (the loop head) → `b` (a send) → back to `a`."""
    document = {"name": "s", "entry": "a", "nodes": {"a": loop_head, "b": DIGEST}}
    return CompiledScenario.from_document(document)


def _start(scenario: CompiledScenario, now: datetime = NOW) -> Step:
    """Capture ADA by an event of NOW, arriving at `now`."""
    event = Event("api", NOW, {}, id="e")
    return capture(scenario, ADA, event, instance_id="i", now=now).steps[-1]


def _sends(step: Step) -> int:
    return sum(isinstance(effect, Send) for effect in step.effects)


@pytest.mark.parametrize(
    "loop_head",
    [
        {"type": "pause", "at": "10:00", "next": "b"},
        {"type": "pause", "days": ["mon", "thu"], "next": "b"},
        {"type": "pause", "at": "10:00", "days": ["mon"], "next": "b"},
        {"type": "pause", "duration": "PT0S", "at": "10:00", "next": "b"},
        {"type": "pause", "until": "2026-01-01T00:00:00Z", "at": "10:00", "next": "b"},
        {"type": "best_time", "within": "P1D", "fallback": "10:00", "next": "b"},
    ],
)
def test_a_loop_through_a_clock_aligned_wait_waits_for_the_next_occurrence(
    loop_head: dict[str, Any],
) -> None:
    """Found by test_engine_runs_one_node_at_a_time_and_answers_once: 'every day at
    10:00 send a digest' came back to its pause at 10:00, passed it at once and sent
    500 messages in one call before ending in loop_limit."""
    scenario = _loop(loop_head)
    step = _start(scenario)
    assert _sends(step) == 1
    assert step.instance.waiting == TIMER
    assert step.instance.node == "a"
    wake_at = step.instance.wake_at
    assert wake_at is not None
    assert wake_at - NOW >= timedelta(hours=23)
    woken = advance(scenario, step.instance, ADA, WakeUp(step.instance.step), wake_at)
    assert _sends(woken) == 1
    assert woken.instance.waiting == TIMER
    assert woken.instance.wake_at is not None
    assert woken.instance.wake_at - wake_at >= timedelta(hours=23)


def test_a_backdated_daily_loop_catches_up_one_day_at_a_time() -> None:
    """The journey clock still catches up (SPEC §1.5): one send per missed day."""
    scenario = _loop({"type": "pause", "at": "10:00", "next": "b"})
    step = _start(scenario, NOW + timedelta(days=3, hours=1))
    assert _sends(step) == 4
    assert step.instance.wake_at == NOW + timedelta(days=4)


def test_advance_leaves_the_given_instance_as_it_was() -> None:
    """Found by the properties: Instance.copy() shares the path entries, and leaving a
    node wrote the outcome into the caller's last entry (an optimistic-lock retry or
    the simulator then saw a changed history)."""
    scenario = CompiledScenario.from_document(
        {"name": "s", "entry": "a", "nodes": {"a": {"type": "pause", "duration": "PT1H"}}}
    )
    instance = _start(scenario).instance
    before = copy.deepcopy(instance)
    assert instance.wake_at is not None
    advance(scenario, instance, ADA, WakeUp(instance.step), instance.wake_at)
    assert instance == before


@pytest.mark.parametrize("consents", ["yes", 1, ["email"], None])
def test_a_consent_op_on_a_profile_whose_consents_are_not_a_map(consents: Any) -> None:
    """Found by the properties: `dict(fields["consents"])` raised for free-form values."""
    scenario = CompiledScenario.from_document(
        {
            "name": "s",
            "entry": "a",
            "nodes": {"a": {"type": "update_profile", "ops": [{"consent": "sms", "op": "grant"}]}},
        }
    )
    profile = Profile("p", {"consents": consents})
    step = capture(scenario, profile, Event("api", NOW), instance_id="i", now=NOW).steps[-1]
    assert step.instance.status == "completed"
    assert step.profile is not None
    assert step.profile.fields["consents"] == {"sms": True}


@pytest.mark.parametrize(
    "document",
    [
        {"name": "x", "nodes": {"a": {"type": ["send"]}}},
        {"name": "x", "nodes": {"a": {"type": {"x": 1}}}},
        {"name": "x", "nodes": {"a": {"type": "send", "template": {"type": []}}}},
    ],
)
def test_check_scenario_with_an_unhashable_type(document: dict[str, Any]) -> None:
    _, problems = check_scenario(document)
    assert problems


@pytest.mark.parametrize(
    "node",
    [
        {"type": "pause", "duration": "P9999999999D"},
        {"type": "wait_for", "event": "x", "timeout": "PT99999999999H"},
        {
            "type": "condition",
            "if": {"field": "profile.a", "op": "gt", "value": {"now": "P99999999999W"}},
        },
    ],
)
def test_check_scenario_with_a_huge_duration(node: dict[str, Any]) -> None:
    _, problems = check_scenario({"name": "x", "entry": "a", "nodes": {"a": node}})
    assert problems


@pytest.mark.parametrize(
    "node",
    [
        {"type": "pause", "duration": "P999999999D"},
        {"type": "wait_for", "event": "x", "timeout": "P999999999D"},
        {
            "type": "condition",
            "if": {"field": "profile.a", "op": "gt", "value": {"now": "P999999999D"}},
        },
        {
            "type": "condition",
            "if": {"field": "profile.a", "op": "on_day", "value": {"today": 10**10}},
        },
    ],
)
def test_a_valid_scenario_with_a_huge_duration_is_refused_or_runs(node: dict[str, Any]) -> None:
    document = {"name": "x", "entry": "a", "nodes": {"a": node}}
    if check_scenario(document)[1]:
        return  # refused by validation: fixed that way
    _start(CompiledScenario.from_document(document))


@pytest.mark.parametrize(
    "loop_head",
    [
        {"type": "pause", "duration": "PT0S", "next": "b"},
        {"type": "pause", "duration": "-PT1H", "next": "b"},
        {"type": "pause", "until": "2026-01-01T00:00:00Z", "next": "b"},
        {"type": "pause", "until_field": "profile.missing", "next": "b"},
        {"type": "best_time", "within": "PT0S", "next": "b"},
        {"type": "wait_for", "event": "x", "timeout": "PT0S", "next": "b"},
        {"type": "wait_for", "condition": {"consent": "email"}, "next": "b"},
    ],
)
def test_a_loop_through_a_zero_length_wait_is_refused_or_stops(loop_head: dict[str, Any]) -> None:
    document = {"name": "x", "entry": "a", "nodes": {"a": loop_head, "b": DIGEST}}
    if check_scenario(document)[1]:
        return  # refused by validation: fixed that way
    step = _start(CompiledScenario.from_document(document))
    assert step.instance.reason != "loop_limit"
    assert _sends(step) <= 1
