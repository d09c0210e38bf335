"""Segment membership on the in-memory storage: evaluated after a profile's change, after
an event a segment counts, in a journey's `update_profile` step, by the daily run and
when a segment is defined again or deleted — each change announced once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.runtime import events, membership
from chalicelib.runtime.messages import EventMessage, ScanMembership
from chalicelib.runtime.unit_of_work import UnitOfWork
from tests.unit.runtime.test_use_cases import START, Stack, wired

BERLINERS = {
    "profile_db": "customers",
    "where": {"field": "profile.city", "op": "eq", "value": "Berlin"},
}
NEW = {
    "profile_db": "customers",
    "where": {"field": "profile.signed_up_at", "op": "gt", "value": {"now": "-P30D"}},
}
BUYERS = {
    "profile_db": "customers",
    "where": {"event_count": {"type": "order.created"}, "op": "gte", "value": 2},
}


class Members(Stack):
    def segment(self, segment_id: str, definition: dict[str, Any]) -> None:
        self.storage.define_segment(segment_id, definition)

    def members(self, profile_id: str = "ada") -> tuple[str, ...]:
        return self.storage.profiles[("customers", profile_id)].segments

    def upserted(self, profile_id: str = "ada", **fields: Any) -> None:
        """A profile's fields changed, then its `profile.imported` is consumed."""
        stored = self.storage.profiles[("customers", profile_id)]
        self.storage.put_profile("customers", profile_id, {**(stored.fields or {}), **fields})
        self.clock.advance(timedelta(seconds=1))
        self.event("profile.imported", profile_id, source="api")

    def announced(self) -> list[tuple[str, str | None, dict[str, Any]]]:
        """The membership events queued (and not yet consumed): type, id, data."""
        found = []
        for message, _ in self.queues.sent["events"]:
            assert isinstance(message, EventMessage)
            if message.event.type.startswith("segment."):
                found.append((message.event.type, message.event.id, message.event.data))
        return found

    def run(self) -> None:
        """Deliver the membership runs' messages."""
        for job in self.queues.take("segments"):
            assert isinstance(job, ScanMembership)
            membership.process_scan(self.storage, self.queues, job, self.clock.now())


@pytest.fixture
def stack() -> Iterator[Members]:
    yield from wired(Members)


def test_a_change_of_the_profile_enters_a_segment_once(stack: Members) -> None:
    stack.segment("berliners", BERLINERS)
    stack.storage.put_profile("customers", "ada", {"city": "Paris"})
    stack.upserted(city="Berlin")
    assert stack.members() == ("berliners",)
    assert stack.announced() == [
        (
            "segment.entered",
            "segment.entered:berliners:profile.imported-ada",
            {"segment": "berliners", "derived": True},
        )
    ]
    ((message, _),) = stack.queues.sent["events"]
    assert isinstance(message, EventMessage)
    assert message.row_id in stack.storage.rows

    stack.event("profile.imported", source="api")  # the same event again
    assert len(stack.announced()) == 1


def test_a_change_that_leaves_a_segment_announces_the_exit(stack: Members) -> None:
    stack.segment("berliners", BERLINERS)
    stack.storage.put_profile("customers", "ada", {"city": "Berlin"})
    stack.event("profile.imported", source="api")
    stack.queues.take("events")
    stack.storage.put_profile("customers", "ada", {"city": "Paris"})
    stack.clock.advance(timedelta(seconds=1))
    message = stack.event("profile.imported", source="import")
    assert message.event.id == "profile.imported-ada"
    assert stack.members() == ()
    assert [kind for kind, _, _ in stack.announced()] == ["segment.exited"]


def test_the_entered_event_starts_a_scenario_it_triggers(stack: Members) -> None:
    stack.segment("berliners", BERLINERS)
    stack.scenario(
        {"hello": {"type": "send", "channel": "email", "template": {"subject": "Hallo", "body": "x"}}},
        triggers=[
            {
                "id": "entered", "type": "event", "event": "segment.entered", "next": "hello",
                "where": {"field": "event.data.segment", "op": "eq", "value": "berliners"},
            }
        ],
    )  # fmt: skip
    stack.storage.put_profile(
        "customers",
        "ada",
        {"city": "Berlin", "email": "ada@example.com", "consents": {"email": True}},
    )
    stack.event("profile.imported", source="api")
    sent = stack.drain()
    (journey,) = stack.instances()
    assert journey.entry.type == "segment.entered"
    assert len(sent) == 1


def test_an_event_a_segment_counts_is_evaluated_and_others_cost_nothing(stack: Members) -> None:
    stack.segment("buyers", BUYERS)
    stack.storage.put_profile("customers", "ada", {})
    stack.event("page.visited")
    assert stack.storage.reads["profile"] == 0  # no segment counts it: no read
    for number in (1, 2):
        stack.clock.advance(timedelta(minutes=1))
        stack.event("order.created", order=number)
        assert stack.members() == (("buyers",) if number == 2 else ())
    assert [kind for kind, _, _ in stack.announced()] == ["segment.entered"]


def test_evaluating_reads_the_profile_and_the_definitions_once_per_unit_of_work(
    stack: Members,
) -> None:
    for number in range(10):
        stack.segment(
            f"s{number}", {**BERLINERS, "where": {**BERLINERS["where"], "value": f"c{number}"}}
        )
    stack.storage.put_profile("customers", "ada", {"city": "c3"})
    unit = UnitOfWork(buffered=True)
    before = dict(stack.storage.reads)
    for message in [stack_message("profile.imported"), stack_message("profile.field_changed")]:
        events.process(message, unit)
    unit.flush()
    # a city's segment reads no history: one read of the profile's item
    assert stack.storage.reads["profile fields"] - before.get("profile fields", 0) == 1
    assert stack.storage.reads["profile"] == before.get("profile", 0)
    assert stack.storage.reads["defined_segments"] - before.get("defined_segments", 0) == 1
    assert stack.members() == ("s3",)


def stack_message(event_type: str) -> EventMessage:
    from chalicelib.runtime.messages import EventBody
    from chalicelib.scenarios.facts import Event

    event = Event(event_type, START, {"source": "api"}, id=f"{event_type}-1")
    return EventMessage(profile_db="customers", profile_id="ada", event=EventBody.of(event))


def test_an_update_profile_step_changes_the_membership_in_its_own_commit(stack: Members) -> None:
    stack.segment("berliners", BERLINERS)
    stack.storage.put_profile("customers", "ada", {"city": "Berlin"})
    stack.event("profile.imported", source="api")
    stack.queues.take("events")
    stack.scenario(
        {
            "move": {
                "type": "update_profile",
                "ops": [{"field": "city", "op": "set", "value": "Rome"}],
            }
        }
    )
    stack.event("signup")
    (journey,) = stack.instances()
    assert stack.storage.profiles[("customers", "ada")].fields == {"city": "Rome"}
    assert stack.members() == ()
    ((kind, event_id, _),) = stack.announced()
    assert kind == "segment.exited"
    assert event_id.startswith(f"segment.exited:berliners:{journey.instance_id}:")


def test_the_daily_run_takes_out_a_profile_that_did_not_change(stack: Members) -> None:
    stack.segment("new", NEW)
    stack.segment("berliners", BERLINERS)
    stack.storage.put_profile(
        "customers", "ada", {"signed_up_at": "2026-06-10T09:00:00Z", "city": "Berlin"}
    )
    stack.event("profile.imported", source="api")
    assert stack.members() == ("berliners", "new")
    stack.queues.take("events")

    stack.clock.advance(timedelta(days=31))
    assert membership.daily(stack.storage, stack.queues, stack.clock.now(), parts=2)
    assert not membership.daily(stack.storage, stack.queues, stack.clock.now(), parts=2)
    stack.run()
    assert stack.members() == ("berliners",)
    assert [(kind, event_id) for kind, event_id, _ in stack.announced()] == [
        ("segment.exited", "segment.exited:new:daily:2026-07-11")
    ]
    stack.queues.take("events")
    job = ScanMembership(run_id="daily:2026-07-11", scan_segment=0, total_segments=1)
    membership.process_scan(stack.storage, stack.queues, job, stack.clock.now())  # redelivered
    assert stack.announced() == []


def test_no_daily_run_fans_out_without_a_segment_relative_to_now(stack: Members) -> None:
    stack.segment("berliners", BERLINERS)
    assert membership.daily(stack.storage, stack.queues, stack.clock.now(), parts=2)
    assert stack.queues.take("segments") == []


def test_a_segment_defined_again_and_deleted_reevaluates_its_members(stack: Members) -> None:
    stack.storage.put_profile("customers", "ada", {"city": "Berlin"})
    stack.storage.put_profile("customers", "bob", {"city": "Rome"})
    stack.storage.put_profile("other", "eve", {"city": "Berlin"})
    stack.segment("south", {**BERLINERS, "where": {**BERLINERS["where"], "value": "Rome"}})
    membership.redefined(stack.queues, "south", parts=3)
    stack.run()
    assert (stack.members("ada"), stack.members("bob")) == ((), ("south",))

    stack.segment("south", BERLINERS)  # now Berlin
    membership.redefined(stack.queues, "south", parts=3)
    stack.run()
    assert (stack.members("ada"), stack.members("bob")) == (("south",), ())
    assert stack.storage.profiles[("other", "eve")].segments == ()  # another database

    stack.storage.delete_segment("south")
    membership.redefined(stack.queues, "south", parts=3)
    stack.run()
    assert stack.members("ada") == ()
    kinds = [(kind, data["segment"]) for kind, _, data in stack.announced()]
    assert kinds.count(("segment.exited", "south")) == 2
    assert kinds.count(("segment.entered", "south")) == 2


def test_a_membership_written_meanwhile_is_read_again_not_announced_twice(stack: Members) -> None:
    stack.segment("berliners", BERLINERS)
    stack.storage.put_profile("customers", "ada", {"city": "Berlin"})
    unit = UnitOfWork()
    unit.profile("customers", "ada")  # read before another worker wrote the membership
    stack.event("profile.imported", source="api")
    stack.clock.advance(timedelta(seconds=1))
    from chalicelib.runtime.messages import EventBody
    from chalicelib.scenarios.facts import Event

    again = Event("profile.imported", stack.clock.now(), {"source": "import"}, id="other")
    events.process(
        EventMessage(profile_db="customers", profile_id="ada", event=EventBody.of(again)), unit
    )
    assert stack.members() == ("berliners",)
    assert len(stack.announced()) == 1
