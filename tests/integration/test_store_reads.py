"""The DynamoDB storage adapter's reads on moto: the engine's profile view and instances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters import dynamodb_storage, store
from chalicelib.adapters.codec import instance_from_values, instance_to_values
from chalicelib.adapters.dynamodb_storage import DynamoStorage
from chalicelib.engine import Instance
from chalicelib.engine.state import BranchTaken
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event

pytestmark = pytest.mark.usefixtures("aws_stack")

T0 = datetime(2026, 6, 10, 10, tzinfo=UTC)
PARTITION = store.profile_partition("customers", "ada")
storage = DynamoStorage()
record = storage.record_event


def load_profile(profile_db: str, profile_id: str) -> tuple[Any, bool]:
    found = storage.profile(profile_db, profile_id)
    return found.view, found.exists


def put_message(number: int) -> None:
    at = T0 + timedelta(hours=number)
    store.profiles.put(
        {
            "pk": PARTITION,
            "sk": f"M#{format_datetime(at)}#m{number}",
            "message_id": f"m{number}",
            "scenario_id": "s1",
            "instance_id": "i1",
            "node": f"send_{number}",
            "channel": "email",
            "at": format_datetime(at),
            "statuses": {"sent": format_datetime(at), "opened": format_datetime(at + timedelta(1))},
        }
    )


def put_profile(fields: dict[str, Any]) -> None:
    store.profiles.put(
        {
            "pk": PARTITION,
            "sk": "P",
            "profile_db": "customers",
            "profile_id": "ada",
            "fields": fields,
        }
    )


def test_the_view_holds_fields_events_and_messages_oldest_first() -> None:
    put_profile({"first_name": "Ada", "score": 2.5, "consents": {"email": True}})
    for number in (3, 1, 2):
        record(
            "customers",
            "ada",
            Event("page.visited", T0 + timedelta(hours=number), {"n": number}, id=f"e{number}"),
        )
        put_message(number)
    store.profiles.put({"pk": PARTITION, "sk": "C#s1", "captures": 1})
    record("customers", "bob", Event("page.visited", T0, {}, id="not-ada"))

    view, exists = load_profile("customers", "ada")

    assert exists
    assert view.fields == {"first_name": "Ada", "score": 2.5, "consents": {"email": True}}
    assert (view.profile_id, view.profile_db) == ("ada", "customers")
    assert [(e.id, e.type, e.data, e.occurred_at) for e in view.events] == [
        ("e1", "page.visited", {"n": 1}, T0 + timedelta(hours=1)),
        ("e2", "page.visited", {"n": 2}, T0 + timedelta(hours=2)),
        ("e3", "page.visited", {"n": 3}, T0 + timedelta(hours=3)),
    ]
    assert [m.message_id for m in view.messages] == ["m1", "m2", "m3"]
    first = view.messages[0]
    assert (first.scenario_id, first.node, first.channel, first.instance_id) == (
        "s1",
        "send_1",
        "email",
        "i1",
    )
    assert first.statuses == {
        "sent": T0 + timedelta(hours=1),
        "opened": T0 + timedelta(days=1, hours=1),
    }


def test_the_view_keeps_the_newest_events_and_messages_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dynamodb_storage, "EVENT_LIMIT", 3)
    monkeypatch.setattr(dynamodb_storage, "MESSAGE_LIMIT", 2)
    put_profile({"first_name": "Ada"})
    for number in range(8):
        record(
            "customers", "ada", Event("page.visited", T0 + timedelta(hours=number), id=f"e{number}")
        )
    for number in range(1, 6):
        put_message(number)

    view, _ = load_profile("customers", "ada")
    assert view.fields == {"first_name": "Ada"}
    assert [m.message_id for m in view.messages] == ["m4", "m5"]
    assert [e.id for e in view.events] == ["e5", "e6", "e7"]  # many messages crowd out no event


def test_a_profile_never_stored_has_an_empty_view() -> None:
    record("customers", "ghost", Event("page.visited", T0, id="e1"))
    view, exists = load_profile("customers", "ghost")
    assert not exists
    assert view.fields == {}
    assert [e.id for e in view.events] == ["e1"]


def instance(number: int, **changes: Any) -> Instance:
    values: dict[str, Any] = {
        "instance_id": f"i{number}",
        "scenario_id": "s1",
        "version": 2,
        "profile_id": "ada",
        "profile_db": "customers",
        "entry": Event("signup", T0, {"plan": "gold", "items": [1, 2.5]}, id=f"evt{number}"),
        "trigger_id": "signup",
        "limit_key": "profile",
        "node": "wait",
        "node_entered_at": T0 + timedelta(minutes=number),
        "waiting": "timer",
        "wake_at": T0 + timedelta(days=1, microseconds=250),
        "step": 4,
        "vars": {"promo_code": "A1", "score": 0.5},
        "codes": {"code": "A1"},
        "path": [{"at": format_datetime(T0), "node": "wait", "outcome": "waiting"}],
        "group": "holdout",
        "reentry_key": "cart-7",
        "branches": {"test": BranchTaken("B", T0 + timedelta(seconds=1))},
        "measured": {"conversion": T0 + timedelta(hours=2)},
    }
    values.update(changes)
    return Instance(**values)


def test_an_instance_round_trips_with_its_revision_and_seen_events() -> None:
    waiting = instance(1)
    seen = [f"event-{n}" for n in range(25)]
    store.instances.put(instance_to_values(waiting, 3, seen))

    loaded = storage.instance("i1")
    assert loaded is not None
    again, rev, kept = loaded.instance, loaded.rev, loaded.seen
    assert again == waiting
    assert rev == 3
    assert kept == seen[-20:]  # the newest twenty
    assert instance_from_values(instance_to_values(waiting, 3, seen))[0] == waiting
    assert storage.instance("missing") is None


def test_only_active_instances_are_found_by_node_and_by_scenario() -> None:
    store.instances.put(instance_to_values(instance(1), 1, []))
    store.instances.put(instance_to_values(instance(2), 1, []))
    ended = instance(
        3, status="completed", node="hello", waiting=None, wake_at=None, ended_at=T0 + timedelta(1)
    )
    store.instances.put(instance_to_values(ended, 5, []))
    other = instance(4, scenario_id="s2")
    store.instances.put(instance_to_values(other, 1, []))

    assert sorted(storage.active_instance_ids("s1")) == ["i1", "i2"]
    assert storage.instances_at_node("s1", "wait") == ["i1", "i2"]  # by time entered
    assert storage.instances_at_node("s1", "hello") == []
    first, _ = storage.node_page("s1", "wait", 1, None)
    assert [at.instance_id for at in first] == ["i1"]

    mine = storage.instances_of_profile("customers", "ada", "s1")
    assert sorted(s.instance.instance_id for s in mine) == ["i1", "i2", "i3"]
    assert len(storage.instances_of_profile("customers", "ada")) == 4
    assert storage.instances_of_profile("customers", "bob") == []
