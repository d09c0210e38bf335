"""A scenario version prepared for running: conditions compiled, settings parsed, once."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from markupsafe import escape
from pydantic import BaseModel

from chalicelib.scenarios.conditions import compile_condition, compile_path
from chalicelib.scenarios.durations import parse_clock_time, parse_duration, zone
from chalicelib.scenarios.facts import Predicate
from chalicelib.scenarios.model import (
    BestTimeNode,
    ConditionNode,
    EntryLimit,
    EventCount,
    MessageRule,
    MessageTemplate,
    Node,
    RateLimit,
    Scenario,
    ScheduleTrigger,
    SegmentRule,
    SendNode,
    SplitNode,
    Trigger,
    WaitForNode,
    WebhookNode,
)
from chalicelib.scenarios.templates import render
from chalicelib.scenarios.validation import validate_scenario

from .delivery import locale_key
from .effects import CountStat


@dataclass(frozen=True, slots=True)
class CompiledGoal:
    event: str
    where: Predicate


@dataclass(frozen=True, slots=True)
class CompiledConversion:
    """The scenario's `conversion`: a matching event within `within` of the entry."""

    event: str
    where: Predicate
    within: timedelta


@dataclass(frozen=True, slots=True)
class WindowLimit:
    """At most `max` per fixed window of length `window` (a rate or entry limit)."""

    max: int
    window: timedelta


class CompiledScenario:
    """One version of a scenario, ready for the engine. Build it once and reuse it."""

    def __init__(self, scenario: Scenario, scenario_id: str = "scenario", version: int = 1) -> None:
        self.model = scenario
        self.scenario_id = scenario_id
        self.version = version
        self.name = scenario.name
        self.template_scenario = {"id": scenario_id, "name": scenario.name, "version": version}
        self.nodes: dict[str, Node] = dict(scenario.nodes)
        self.triggers: dict[str, Trigger] = {t.id: t for t in scenario.triggers}
        self.tz = zone(scenario.timezone)
        self.actuality = _duration(scenario.actuality)
        self.goals = [CompiledGoal(g.event, compile_condition(g.where)) for g in scenario.exit_on]
        conversion = scenario.conversion
        self.conversion = (
            CompiledConversion(
                conversion.event,
                compile_condition(conversion.where),
                parse_duration(conversion.within),
            )
            if conversion
            else None
        )
        self.entry_limit = _window_limit(scenario.entry_limit)
        # Every send of a scenario with a rate limit is paced by the runtime against this
        # limit, in the order the sends were queued (SPEC §1.1 `rate_limit`).
        self.rate_limit = _window_limit(scenario.rate_limit)
        self.reentry_key = compile_path(scenario.reentry_key) if scenario.reentry_key else None
        self.trigger_where: dict[str, Predicate] = {}
        self.trigger_actuality: dict[str, timedelta | None] = {}
        for trigger in scenario.triggers:
            where = getattr(trigger, "where", None)
            if isinstance(trigger, ScheduleTrigger):
                where = trigger.segment
            self.trigger_where[trigger.id] = compile_condition(where)
            self.trigger_actuality[trigger.id] = _duration(trigger.actuality) or self.actuality
        # Node conditions: a condition node's `if`, a wait_for's `where` or `condition`,
        # and a split's branches, in order.
        self.conditions: dict[str, Predicate] = {}
        self.branches: dict[str, list[Predicate]] = {}
        for node_id, node in self.nodes.items():
            if isinstance(node, ConditionNode):
                self.conditions[node_id] = compile_condition(node.if_)
            elif isinstance(node, WaitForNode):
                self.conditions[node_id] = compile_condition(node.where or node.condition)
            elif isinstance(node, SplitNode):
                self.branches[node_id] = [compile_condition(b.if_) for b in node.branches]
        quiet = scenario.quiet_hours
        self.quiet_hours = (
            (parse_clock_time(quiet.start), parse_clock_time(quiet.end)) if quiet else None
        )
        self.frequency_cap = scenario.frequency_cap
        self.cap_window = _duration(scenario.frequency_cap.per) if scenario.frequency_cap else None
        # Effects are immutable: the per-node statistics are made once and shared.
        self.entered_stat = {node_id: CountStat("node_entered", node_id) for node_id in self.nodes}
        self.exited_stat = {node_id: CountStat("node_exited", node_id) for node_id in self.nodes}
        self._renderers: dict[tuple[str, bool], Renderer] = {}
        # Each send node's subject, body, html, title, url and from, ready to render; its
        # variants' (with their tag as written) by locale key; its recheck condition.
        self.send_renderers: dict[str, tuple[Renderer, ...]] = {}
        self.send_variants: dict[str, dict[str, tuple[str, tuple[Renderer, ...]]]] = {}
        self.rechecks: dict[str, Predicate] = {}
        sources: list[str | None] = []  # every template of the scenario
        for node_id, node in self.nodes.items():
            if isinstance(node, SendNode):
                self.send_renderers[node_id] = _send_renderers(node.template)
                self.send_variants[node_id] = {
                    locale_key(tag): (tag, _send_renderers(node.template, variant))
                    for tag, variant in node.variants.items()
                }
                if node.recheck is not None:
                    self.rechecks[node_id] = compile_condition(node.recheck)
                for parts in (node.template, *node.variants.values()):
                    sources += [parts.subject, parts.body, parts.html, parts.title, parts.url]
                    sources.append(parts.from_)
                sources.append(node.to)
            elif isinstance(node, WebhookNode):
                sources += [node.url, node.body, *node.headers.values()]
        roots = [template_roots(source) for source in sources]
        # The entry event's dict costs a datetime formatting: made only if a template reads it.
        self.templates_read_event = any(r is None or "event" in r for r in roots)
        self.reads_history = _reads_history(scenario)

    @classmethod
    def from_document(
        cls, document: Any, scenario_id: str = "scenario", version: int = 1
    ) -> CompiledScenario:
        """Validate a scenario document (raising ScenarioInvalid) and compile it."""
        return cls(validate_scenario(document), scenario_id, version)

    def render(self, source: str | None, context: dict[str, Any], html: bool = False) -> str | None:
        """`templates.render`, with templates that only look up fields rendered without Jinja."""
        if source is None:
            return None
        renderer = self._renderers.get((source, html))
        if renderer is None:
            renderer = self._renderers[source, html] = compile_template(source, html)
        return renderer(context)

    def actuality_for(self, trigger_id: str | None) -> timedelta | None:
        if trigger_id is None:
            return self.actuality
        return self.trigger_actuality.get(trigger_id, self.actuality)


def _reads_history(scenario: Scenario) -> bool:
    """Whether the engine looks at a profile's events or messages for this scenario: a
    frequency cap, a best_time node, or a condition that counts events, looks for a
    message or names a segment (whose definition may). Else its steps read the profile's
    fields only."""
    if scenario.frequency_cap is not None:
        return True
    pending: list[Any] = [scenario]
    while pending:
        value = pending.pop()
        if isinstance(value, EventCount | MessageRule | SegmentRule | BestTimeNode):
            return True
        if isinstance(value, BaseModel):
            pending.extend(getattr(value, name) for name in type(value).model_fields)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
    return False


def _duration(text: str | None) -> timedelta | None:
    return parse_duration(text) if text else None


def _window_limit(limit: RateLimit | EntryLimit | None) -> WindowLimit | None:
    return WindowLimit(limit.max, parse_duration(limit.per)) if limit else None


def _send_renderers(
    template: MessageTemplate, variant: MessageTemplate | None = None
) -> tuple[Renderer, ...]:
    """A send's subject, body, html, title, url and from renderers: the variant's parts,
    and the node's own template for the parts the variant leaves out."""
    parts = [
        ("subject", template.subject), ("body", template.body), ("html", template.html),
        ("title", template.title), ("url", template.url), ("from", template.from_),
    ]  # fmt: skip
    if variant is not None:
        given = variant.model_dump(by_alias=True)
        parts = [(name, given[name] if given[name] is not None else own) for name, own in parts]
    return tuple(compile_template(source, html=name == "html") for name, source in parts)


# --- templates ------------------------------------------------------------------------

Renderer = Callable[[dict[str, Any]], "str | None"]

# `{{ root.a.b }}` and nothing else: no filters, tests, calls, indexes or whitespace control.
_LOOKUP = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*\}\}")
_JINJA_SYNTAX = ("{{", "{%", "{#")
_DICT_ATTRIBUTES = frozenset(dir(dict))  # Jinja takes `d.items` as the method, not the key
_UNDEFINED: Any = object()


Piece = str | tuple[str, tuple[str, ...]]  # literal text, or (root, keys) to look up


def _lookups(source: str) -> list[Piece] | None:
    """The template as literal text and `{{ root.a.b }}` look-ups, or None when it uses
    anything else of Jinja (or something the look-ups would not render as Jinja does)."""
    if "\r" in source:  # Jinja normalises newlines: leave that to it
        return None
    text = source[:-1] if source.endswith("\n") else source  # Jinja drops one
    pieces: list[Piece] = []
    position = 0
    for match in _LOOKUP.finditer(text):
        literal = text[position : match.start()]
        if any(mark in literal for mark in _JINJA_SYNTAX) or literal.endswith("{"):
            return None
        root, *keys = match.group(1).split(".")
        if any(key in _DICT_ATTRIBUTES for key in keys):
            return None
        pieces.extend((literal, (root, tuple(keys))))
        position = match.end()
    literal = text[position:]
    if any(mark in literal for mark in _JINJA_SYNTAX):
        return None
    pieces.append(literal)
    return pieces


def template_roots(source: str | None) -> frozenset[str] | None:
    """The context entries a template may read; None when it may read any."""
    if source is None or "{" not in source:
        return frozenset()
    pieces = _lookups(source)
    if pieces is None:
        return None
    return frozenset(piece[0] for piece in pieces if not isinstance(piece, str))


def compile_template(source: str | None, html: bool = False) -> Renderer:
    """A renderer equal to `templates.render(source, context, html)`.

    Most message templates only put profile fields and vars into text. Those are
    rendered here by plain look-ups, as Jinja (sandboxed, ChainableUndefined, no
    autoescape for text, default options) renders them: a missing key renders empty,
    any other value as `str(value)` (escaped in HTML), and one trailing newline of the
    source is dropped. Anything else, or any value the plain look-up is not sure about
    (a key that is a dict method, a look-up into a non-dict, a root the context lacks),
    renders through Jinja itself.
    """
    if source is None:
        return lambda context: None
    if "{" not in source:  # templates.render returns static text as it is
        return lambda context: source
    fallback: Renderer = lambda context: render(source, context, html)  # noqa: E731
    pieces = _lookups(source)
    if pieces is None:
        return fallback
    convert: Callable[[Any], str] = (lambda value: str(escape(value))) if html else str
    # The literal text as a %-format with a `%s` for each look-up, filled in one step.
    text = "".join(piece.replace("%", "%%") if isinstance(piece, str) else "%s" for piece in pieces)
    lookups = [piece for piece in pieces if not isinstance(piece, str)]
    if len(lookups) == 1 and len(lookups[0][1]) == 1:  # the usual `{{ profile.first_name }}`
        [(root, (key,))] = lookups

        def render_lookup(context: dict[str, Any]) -> str | None:
            value = context.get(root)
            if type(value) is not dict:
                return fallback(context)
            value = value.get(key, _UNDEFINED)
            return text % ("" if value is _UNDEFINED else convert(value))

        return render_lookup

    def render_lookups(context: dict[str, Any]) -> str | None:
        values = []
        for root, keys in lookups:
            value = context.get(root, _UNDEFINED)
            if value is _UNDEFINED:
                return fallback(context)  # maybe a Jinja global
            for key in keys:
                if type(value) is not dict:
                    return fallback(context)
                value = value.get(key, _UNDEFINED)
                if value is _UNDEFINED:
                    break
            values.append("" if value is _UNDEFINED else convert(value))
        return text % tuple(values)

    return render_lookups
