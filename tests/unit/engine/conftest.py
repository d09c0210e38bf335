"""Shared builders for the engine tests: a clock, profiles, events, scenarios."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.engine import Admission, CompiledScenario, Step, capture
from chalicelib.engine.effects import Effect
from chalicelib.scenarios.facts import Event, Message, Profile

# Wednesday 10 June 2026, 10:00 UTC: the engine tests' "now".
NOW = datetime(2026, 6, 10, 10, tzinfo=UTC)

ADA = {
    "first_name": "Ada",
    "email": "ada@example.com",
    "phone": "+14155550100",
    "consents": {"email": True, "sms": True, "push": True},
}

_event_ids = itertools.count(1)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def make_profile() -> Callable[..., Profile]:
    """A profile with Ada's address and consents; keyword fields override them (None drops one)."""

    def build(
        profile_id: str = "ada",
        *,
        events: Iterable[Event] = (),
        messages: Iterable[Message] = (),
        **fields: Any,
    ) -> Profile:
        merged = {**ADA, **fields}
        return Profile(
            profile_id,
            {key: value for key, value in merged.items() if value is not None},
            list(events),
            list(messages),
        )

    return build


@pytest.fixture
def make_event() -> Callable[..., Event]:
    """An event at `at` (default NOW) with a fresh unique id unless one is given."""

    def build(
        type: str = "signup",
        at: datetime = NOW,
        data: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> Event:
        return Event(type, at, dict(data or {}), id=id or f"evt-{next(_event_ids)}")

    return build


@pytest.fixture
def make_scenario() -> Callable[..., CompiledScenario]:
    """Compile `nodes` (entry: the first node unless given) with the scenario settings."""

    def build(
        nodes: dict[str, Any],
        *,
        scenario_id: str = "s1",
        version: int = 1,
        **settings: Any,
    ) -> CompiledScenario:
        document = {"name": "Test scenario", "entry": next(iter(nodes)), **settings}
        document["nodes"] = nodes
        return CompiledScenario.from_document(document, scenario_id=scenario_id, version=version)

    return build


@pytest.fixture
def enter(make_event: Callable[..., Event]) -> Callable[..., Admission]:
    """The default capture (or through `trigger_id`) at NOW, by a fresh `signup` event."""

    def run(
        scenario: CompiledScenario,
        profile: Profile,
        event: Event | None = None,
        *,
        now: datetime = NOW,
        instance_id: str = "i1",
        **options: Any,
    ) -> Admission:
        return capture(
            scenario,
            profile,
            event or make_event(),
            instance_id=instance_id,
            now=now,
            **options,
        )

    return run


def effects_of(step: Step | Sequence[Effect], kind: type[Any]) -> list[Any]:
    effects = step.effects if isinstance(step, Step) else step
    return [effect for effect in effects if isinstance(effect, kind)]


@pytest.fixture
def pick() -> Callable[[Step | Sequence[Effect], type[Any]], list[Any]]:
    """`pick(step, Send)`: the effects of one kind, in order."""
    return effects_of


def outcomes(step: Step) -> list[tuple[str, str | None]]:
    return [(entry["node"], entry["outcome"]) for entry in step.instance.path]


@pytest.fixture
def path_of() -> Callable[[Step], list[tuple[str, str | None]]]:
    """`path_of(step)`: the instance's path as (node, outcome) pairs."""
    return outcomes
