"""The runtime's use cases on the in-memory storage: capture, feed an event, wake, sweep,
take a promo code — what they write, what they send, and how often they read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from chalicelib.adapters.clock import VirtualClock, use_clock
from chalicelib.adapters.memory_storage import MemoryQueues, MemoryStorage
from chalicelib.bootstrap import bootstrap
from chalicelib.engine import reacts_to
from chalicelib.engine.compiled import CompiledScenario
from chalicelib.runtime import events, steps, sweeper
from chalicelib.runtime.commit import Commit
from chalicelib.runtime.journeys import capture_profile
from chalicelib.runtime.messages import (
    Capture,
    EventBody,
    EventMessage,
    PromoRequest,
    QueueMessage,
    StepMessage,
    Wake,
    parse_event,
)
from chalicelib.runtime.storage import (
    CaptureGuard,
    Changes,
    Conflict,
    Dispatch,
    OutboxRow,
    SignalSettings,
)
from chalicelib.runtime.unit_of_work import UnitOfWork
from chalicelib.scenarios.facts import Event

START = datetime(2026, 6, 10, 10, tzinfo=UTC)


class Stack:
    """The use cases wired to memory, on a virtual clock, with the queues delivered by hand."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.storage = MemoryStorage()
        self.queues = MemoryQueues()
        bootstrap(self.storage, self.queues)

    def scenario(self, nodes: dict[str, Any], **settings: Any) -> str:
        scenario_id = f"s{len(self.storage.metas) + 1}"
        document = {
            "name": scenario_id,
            "profile_db": "customers",
            "entry": next(iter(nodes)),
            "triggers": [
                {"id": "signup", "type": "event", "event": "signup", "next": next(iter(nodes))}
            ],
            "nodes": nodes,
            **settings,
        }
        self.storage.put_scenario(CompiledScenario.from_document(document, scenario_id, 1))
        return scenario_id

    def event(self, event_type: str, profile_id: str = "ada", **data: Any) -> EventMessage:
        event = Event(event_type, self.clock.now(), data, id=f"{event_type}-{profile_id}")
        message = EventMessage(
            profile_db="customers", profile_id=profile_id, event=EventBody.of(event)
        )
        events.process(message)
        return message

    def drain(self) -> list[QueueMessage]:
        """Deliver the steps and events queues until both are empty; what else was sent."""
        others: list[QueueMessage] = []
        while self.queues.sent["steps"] or self.queues.sent["events"]:
            for message in self.queues.take("events"):
                assert isinstance(message, EventMessage)
                events.process(message)
            for step in self.queues.take("steps"):
                steps.process(step)  # type: ignore[arg-type]
        for queue in ("email", "sms", "push", "webhook"):
            others.extend(self.queues.take(queue))
        return others

    def advance(self, by: timedelta) -> None:
        self.clock.advance(by)
        sweeper.sweep(self.clock.now())
        self.drain()

    def instances(self, profile_id: str = "ada") -> list[Any]:
        return [s.instance for s in self.storage.instances_of_profile("customers", profile_id)]


S = TypeVar("S", bound=Stack)


def wired(kind: type[S]) -> Iterator[S]:
    """A stack of this kind on a virtual clock from START, for a fixture to yield from;
    the default wiring and clock are put back after it."""
    clock = VirtualClock(START)
    previous = use_clock(clock)
    try:
        yield kind(clock)
    finally:
        use_clock(previous)
        bootstrap()


def email(subject: str, next_node: str | None = None) -> dict[str, Any]:
    node = {"type": "send", "channel": "email", "template": {"subject": subject, "body": "Hi"}}
    return {**node, "next": next_node} if next_node else node


ADA = {"first_name": "Ada", "email": "ada@example.com", "consents": {"email": True}}


def test_an_event_captures_and_the_journey_waits_then_goes_on_when_the_timer_is_due(
    stack: Stack,
) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    stack.scenario(
        {
            "hello": email("Hello", "wait"),
            "wait": {"type": "pause", "duration": "PT1H", "next": "bye"},
            "bye": email("Bye"),
        }
    )
    stack.event("signup")
    sent = stack.drain()
    (journey,) = stack.instances()
    assert (journey.status, journey.node) == ("active", "wait")
    assert len(sent) == 1
    assert journey.instance_id in stack.storage.timers

    stack.advance(timedelta(minutes=30))
    assert stack.instances()[0].node == "wait"
    stack.advance(timedelta(minutes=31))
    (journey,) = stack.instances()
    assert journey.status == "completed"
    assert [p["node"] for p in journey.path] == ["hello", "wait", "bye"]
    assert journey.instance_id not in stack.storage.timers
    subjects = [stack.storage.rows[m.message_id].row.values["subject"] for m in sent]  # type: ignore[union-attr]
    assert subjects == ["Hello"]
    assert len(stack.storage.profiles[("customers", "ada")].messages) == 2  # in its history


def test_one_event_reads_the_profile_once_however_many_journeys_it_moves(stack: Stack) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    waiting = {"type": "wait_for", "event": "clicked", "timeout": "P1D", "next": "done"}
    for _ in range(3):
        stack.scenario({"wait": waiting, "done": {"type": "exit"}})
    stack.event("signup")
    assert [i.node for i in stack.instances()] == ["wait"] * 3

    stack.storage.reads.clear()
    stack.event("clicked")
    assert stack.storage.reads["profile fields"] == 1  # no condition here reads its history
    assert stack.storage.reads["profile"] == 0
    assert stack.storage.reads["instances_of_profile"] == 1
    assert stack.storage.reads["instance"] == 0  # the unit of work had read them all
    assert [i.status for i in stack.instances()] == ["completed"] * 3


def test_an_event_delivered_again_changes_nothing(stack: Stack) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    counter = {"type": "update_profile", "ops": [{"field": "n", "op": "increment", "value": 1}]}
    stack.scenario({"count": counter}, reentry="parallel")
    message = stack.event("signup")
    events.process(message)  # SQS delivers at least once
    stack.drain()
    assert len(stack.instances()) == 1
    assert stack.storage.profiles[("customers", "ada")].fields["n"] == 1  # type: ignore[index]


def test_two_journeys_of_one_event_update_the_profile_from_each_other(stack: Stack) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    counter = {"type": "update_profile", "ops": [{"field": "n", "op": "increment", "value": 1}]}
    stack.scenario({"count": counter})
    stack.scenario({"count": counter})
    stack.event("signup")
    stack.drain()
    assert stack.storage.profiles[("customers", "ada")].fields["n"] == 2  # type: ignore[index]


def test_a_step_that_loses_a_race_is_tried_again_on_what_won(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    stack.scenario({"wait": {"type": "pause", "duration": "PT1H", "next": "done"},
                    "done": {"type": "exit"}})  # fmt: skip
    stack.event("signup")
    (journey,) = stack.instances()
    real = MemoryStorage.commit
    lost: list[int] = []

    def first_loses(storage: MemoryStorage, changes: Any) -> None:
        if not lost:
            lost.append(1)
            raise Conflict("another worker moved it first")
        real(storage, changes)

    monkeypatch.setattr(MemoryStorage, "commit", first_loses)
    stack.clock.advance(timedelta(hours=1))
    steps.process(Wake(instance_id=journey.instance_id, step=journey.step))
    assert lost == [1]
    assert stack.instances()[0].status == "completed"


def test_a_batch_of_wake_ups_reads_its_instances_and_scenario_in_one_request(
    stack: Stack,
) -> None:
    scenario_id = stack.scenario({"wait": {"type": "pause", "duration": "PT1H", "next": "done"},
                                  "done": {"type": "exit"}})  # fmt: skip
    for name in ("ada", "bob", "cy"):
        stack.storage.put_profile("customers", name, {**ADA, "first_name": name})
        stack.event("signup", name)
    stack.clock.advance(timedelta(hours=1))
    sweeper.sweep(stack.clock.now())
    wakes = stack.queues.take("steps")
    assert len(wakes) == 3
    stack.storage.reads.clear()
    uow = UnitOfWork()
    steps.read_ahead(uow, [message.wire() for message in wakes])
    for message in wakes:
        steps.process(message, uow)  # type: ignore[arg-type]
    assert [getattr(message, "scenario_id", None) for message in wakes] == [scenario_id] * 3
    reads = stack.storage.reads
    assert (reads["read_ahead"], reads["instance"], reads["scenario"]) == (1, 0, 0)
    for name in ("ada", "bob", "cy"):
        assert [i.status for i in stack.instances(name)] == ["completed"]


def test_a_batch_of_sign_ups_reads_what_their_captures_ask_in_two_requests(stack: Stack) -> None:
    scenario_id = stack.scenario({"hello": email("Hello")}, reentry="never")
    names = ("ada", "bob", "cy")
    for name in names:
        stack.storage.put_profile("customers", name, {**ADA, "first_name": name})
    batch = [
        EventMessage(
            profile_db="customers", profile_id=name,
            event=EventBody.of(Event("signup", START, {}, id=f"signup-{name}")),
        ).model_dump_json()
        for name in names
    ]  # fmt: skip
    stack.storage.reads.clear()
    uow = UnitOfWork(buffered=True)
    events.read_ahead(uow, batch)
    for body in batch:
        events.process(parse_event(body), uow)
    uow.flush()
    reads = stack.storage.reads
    assert reads["read_ahead"] == 2  # aliases, listeners, triggers; then scenario and guards
    for one_by_one in ("capture_guard", "scenario", "control_percent", "scenarios_for_event"):
        assert reads[one_by_one] == 0, one_by_one
    assert [len(stack.instances(name)) for name in names] == [1, 1, 1]
    assert {stack.storage.capture_guard("customers", n, scenario_id) for n in names} == {
        CaptureGuard(1, stack.instances(n)[0].instance_id) for n in names
    }


def test_a_batch_of_a_campaigns_captures_reads_their_guards_in_one_request(stack: Stack) -> None:
    scenario_id = stack.scenario({"hello": email("Hello")}, reentry="never")
    names = ("ada", "bob", "cy")
    for name in names:
        stack.storage.put_profile("customers", name, {**ADA, "first_name": name})
    event = EventBody.of(Event("segment.entered", START, {}, id="run-1"))
    batch = [
        Capture(scenario_id=scenario_id, profile_db="customers", profile_id=name, event=event)
        for name in names
    ]
    stack.storage.reads.clear()
    uow = UnitOfWork(buffered=True)
    steps.read_ahead(uow, [message.wire() for message in batch])
    for message in batch:
        steps.process(message, uow)
    uow.flush()
    reads = stack.storage.reads
    assert (reads["read_ahead"], reads["capture_guard"], reads["scenario"]) == (1, 0, 0)
    assert [len(stack.instances(name)) for name in names] == [1, 1, 1]


def test_a_guard_read_ahead_that_another_capture_changed_is_read_again(stack: Stack) -> None:
    scenario_id = stack.scenario({"hello": email("Hello")}, reentry="never")
    stack.storage.put_profile("customers", "ada", ADA)
    body = EventMessage(
        profile_db="customers", profile_id="ada",
        event=EventBody.of(Event("signup", START, {}, id="signup-late")),
    ).model_dump_json()  # fmt: skip
    uow = UnitOfWork(buffered=True)
    events.read_ahead(uow, [body])  # no guard yet
    stack.event("signup")  # meanwhile another worker captures her
    events.process(parse_event(body), uow)  # its commit expects no guard: read again, refused
    uow.flush()
    assert len(stack.instances()) == 1
    guard = stack.storage.capture_guard("customers", "ada", scenario_id)
    assert guard is not None
    assert guard.captures == 1


def test_a_stale_wake_up_changes_nothing_and_drops_no_live_timer(stack: Stack) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    stack.scenario({"wait": {"type": "pause", "duration": "PT1H", "next": "done"},
                    "done": {"type": "exit"}})  # fmt: skip
    stack.event("signup")
    (journey,) = stack.instances()
    steps.process(Wake(instance_id=journey.instance_id, step=journey.step - 1))
    steps.process(Wake(instance_id=journey.instance_id, step=journey.step))  # early
    assert stack.instances() == [journey]
    assert journey.instance_id in stack.storage.timers


def test_a_promo_code_is_taken_once_per_request(stack: Stack) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    stack.storage.add_codes("SPRING", ["A", "B"])
    stack.scenario({"code": {"type": "promo_code", "pool": "SPRING", "next": "mail"},
                    "mail": email("{{ vars.promo_code }}")})  # fmt: skip
    stack.event("signup")
    (request,) = stack.queues.sent["steps"]
    message: StepMessage = request[0]  # type: ignore[assignment]
    assert isinstance(message, PromoRequest)
    steps.process(message)
    steps.process(message)  # delivered again: the same code, and the journey moved once
    (journey,) = stack.instances()
    assert (journey.status, journey.vars["promo_code"]) == ("completed", "A")
    assert stack.storage.codes["SPRING"] == ["B"]
    assert message.row_id not in stack.storage.rows  # consumed


def test_the_sweeper_sends_again_what_a_crash_left_in_the_outbox(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    stack.scenario({"hello": email("Hello")})

    def crash(uow: UnitOfWork, commit: Commit) -> None:
        raise RuntimeError("crashed after the commit")

    monkeypatch.setattr(UnitOfWork, "dispatch", crash)
    with pytest.raises(RuntimeError):
        stack.event("signup")
    monkeypatch.undo()
    assert stack.drain() == []  # nothing was sent
    stack.clock.advance(timedelta(minutes=14))
    assert sweeper.sweep(stack.clock.now()).redispatched == 0
    stack.clock.advance(timedelta(minutes=2))
    assert sweeper.sweep(stack.clock.now()).redispatched == 1
    (message,) = stack.queues.take("email")
    assert message.row_id in stack.storage.rows  # pending until the worker takes it out


def test_a_new_profile_updated_by_two_steps_of_one_capture_is_created_once(stack: Stack) -> None:
    ops = [{"field": "a", "op": "set", "value": 1}]
    more = [{"field": "b", "op": "set", "value": 2}]
    stack.scenario(
        {"first": {"type": "update_profile", "ops": ops, "next": "second"},
         "second": {"type": "update_profile", "ops": more}},
        reentry="restart",
    )  # fmt: skip
    stack.event("signup", "newcomer")
    assert stack.storage.profiles[("customers", "newcomer")].fields == {"a": 1, "b": 2}


def test_a_batch_of_events_of_one_type_looks_up_their_scenarios_once(stack: Stack) -> None:
    scenario_id = stack.scenario({"hello": email("Hello")})
    batch = UnitOfWork(buffered=True)
    stack.storage.reads.clear()
    for profile_id in ("ada", "bob", "cy"):
        event = Event("signup", stack.clock.now(), {}, id=f"signup-{profile_id}")
        body = EventBody.of(event)
        events.process(
            EventMessage(profile_db="customers", profile_id=profile_id, event=body), batch
        )
    batch.flush()
    assert stack.storage.reads["scenarios_for_event"] == 1
    assert all(stack.instances(p)[0].scenario_id == scenario_id for p in ("ada", "bob", "cy"))


def test_an_event_no_journey_reacts_to_reads_no_profile(stack: Stack) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    waiting = {"type": "wait_for", "event": "clicked", "timeout": "P1D", "next": "done"}
    stack.scenario({"wait": waiting, "done": {"type": "exit"}}, exit_on=[{"event": "order"}])
    stack.event("signup")
    stack.storage.reads.clear()
    stack.event("page.viewed")
    assert stack.storage.reads["profile"] == 0
    assert stack.storage.reads["scenario"] == 0
    assert stack.instances()[0].node == "wait"
    stack.event("order")  # a goal is an event the journey reacts to
    assert stack.instances()[0].reason == "goal"


@pytest.mark.parametrize(
    ("node", "event_type", "reacts"),
    [
        ({"type": "wait_for", "event": "clicked", "timeout": "P1D", "next": "done"}, "clicked", True),
        ({"type": "wait_for", "event": "clicked", "timeout": "P1D", "next": "done"}, "opened", False),
        ({"type": "wait_for", "condition": {"field": "profile.vip", "op": "eq", "value": True},
          "timeout": "P1D", "next": "done"}, "anything", True),
        ({"type": "pause", "duration": "P1D", "next": "done"}, "clicked", False),
        ({"type": "pause", "duration": "P1D", "next": "done"}, "order", True),  # the goal
    ],
)  # fmt: skip
def test_which_events_a_waiting_journey_reacts_to(
    stack: Stack, node: dict[str, Any], event_type: str, reacts: bool
) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    scenario_id = stack.scenario(
        {"wait": node, "done": {"type": "exit"}}, exit_on=[{"event": "order"}]
    )
    stack.event("signup")
    (journey,) = stack.instances()
    scenario = stack.storage.version(scenario_id, 1)
    assert reacts_to(scenario, journey, event_type) is reacts


def test_a_capture_that_lost_a_race_decides_again_on_every_instance_of_the_profile(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    twice = {"id": "signup", "type": "event", "event": "signup", "next": "hello",
             "limit": {"max": 2, "per": "profile"}}  # fmt: skip
    document = {"name": "twice", "profile_db": "customers", "reentry": "parallel",
                "triggers": [twice], "nodes": {"hello": email("Hello")}}  # fmt: skip
    stack.storage.put_scenario(CompiledScenario.from_document(document, "s1", 1))

    def signup(n: int) -> None:
        event = Event("signup", stack.clock.now() + timedelta(seconds=n), {}, id=f"signup-{n}")
        message = EventMessage(profile_db="customers", profile_id="ada", event=EventBody.of(event))
        events.process(message)

    signup(1)
    real = MemoryStorage.commit
    lost: list[int] = []

    def first_loses(storage: MemoryStorage, changes: Any) -> None:
        if not lost:  # another capture commits between this one's reads and its write
            lost.append(1)
            signup(2)
            raise Conflict("another capture came first")
        real(storage, changes)

    monkeypatch.setattr(MemoryStorage, "commit", first_loses)
    uow = UnitOfWork()
    uow.instances_of_profile("customers", "ada")  # read before the first try
    third = Event("signup", stack.clock.now() + timedelta(seconds=3), {}, id="signup-3")
    captured = capture_profile(uow, "s1", "customers", "ada", third, trigger_id="signup")
    assert lost == [1]
    assert captured.refused is not None  # both instances still count against the limit
    assert len(stack.instances()) == 2


def test_the_profile_keeps_the_balance_and_hears_when_it_goes_negative(stack: Stack) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    stack.scenario({"hello": email("Top up?")})  # on signup: not these
    events_sent = stack.queues.sent["events"]

    stack.event("balance.changed", balance=25, delta=25)
    assert stack.storage.profiles[("customers", "ada")].fields["balance"] == 25  # type: ignore[index]
    assert events_sent == []

    message = stack.event("balance.changed", balance=-5, delta=-30)
    events.process(message)  # delivered again: the same balance, the same derived event
    assert stack.storage.profiles[("customers", "ada")].fields["balance"] == -5  # type: ignore[index]
    negatives = [m for m, _ in events_sent if m.event.type == "balance.negative"]  # type: ignore[union-attr]
    assert len({m.event.id for m in negatives}) == 1  # type: ignore[union-attr]
    assert negatives[0].event.data == {"balance": -5, "derived": True}  # type: ignore[union-attr]

    stack.event("balance.changed", delta=-1)  # no balance given: nothing kept, nothing derived
    assert stack.storage.profiles[("customers", "ada")].fields["balance"] == -5  # type: ignore[index]


def test_a_balance_for_a_profile_never_upserted_creates_it(stack: Stack) -> None:
    stack.event("balance.changed", "newcomer", balance=3)
    assert stack.storage.profiles[("customers", "newcomer")].fields == {"balance": 3}


def test_captures_past_the_entry_limit_of_the_window_are_refused_until_the_next_one(
    stack: Stack,
) -> None:
    stack.scenario({"hello": email("Hello")}, entry_limit={"max": 2, "per": "P1D"})
    for name in ("ada", "bob", "cy"):
        stack.storage.put_profile("customers", name, {**ADA, "email": f"{name}@example.com"})
        stack.event("signup", name)
    assert [len(stack.instances(name)) for name in ("ada", "bob", "cy")] == [1, 1, 0]
    assert stack.storage.entries_in_window("s1", (datetime(2026, 6, 10, tzinfo=UTC), START)) == 2

    stack.clock.advance(timedelta(days=1))
    stack.storage.put_profile("customers", "dan", ADA)
    stack.event("signup", "dan")
    assert len(stack.instances("dan")) == 1


def test_two_captures_at_once_cannot_both_take_the_last_place(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.runtime.journeys import capture_profile

    scenario_id = stack.scenario({"hello": email("Hello")}, entry_limit={"max": 1, "per": "P1D"})
    first = capture_profile(UnitOfWork(), scenario_id, "customers", "ada", Event("signup", START, {}, id="e1"), "signup")  # fmt: skip
    real = MemoryStorage.entries_in_window
    stale = [0]  # bob's capture read the count before ada's was committed

    def read(storage: MemoryStorage, *args: Any) -> int:
        return stale.pop() if stale else real(storage, *args)

    monkeypatch.setattr(MemoryStorage, "entries_in_window", read)
    second = capture_profile(UnitOfWork(), scenario_id, "customers", "bob", Event("signup", START, {}, id="e2"), "signup")  # fmt: skip
    assert first.refused is None
    assert stale == []
    assert second.refused == "entry_limit"
    assert stack.instances("bob") == []
    assert not any(row.row.profile_id == "bob" for row in stack.storage.rows.values())


def test_points_pending_until_a_future_moment_become_available_then_once(stack: Stack) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    events_sent = stack.queues.sent["events"]
    later = START + timedelta(days=3)

    message = stack.event(
        "balance.changed", balance=100, delta=40, pending=40, available_at="2026-06-13T10:00:00Z"
    )
    events.process(message)  # the cause delivered again: still one timer
    assert events_sent == []
    assert list(stack.storage.event_timers) == ["balance.changed-ada:points.available"]

    stack.clock.advance(later - START - timedelta(seconds=1))
    assert sweeper.sweep(stack.clock.now()).timers == 0
    stack.clock.advance(timedelta(seconds=1))
    assert sweeper.sweep(stack.clock.now()).timers == 1
    assert sweeper.sweep(stack.clock.now()).timers == 0  # fired once: the timer went
    ((available, delay),) = events_sent
    assert isinstance(available, EventMessage)
    assert (available.event.id, available.event.type, delay) == (
        "balance.changed-ada:points.available", "points.available", 0,
    )  # fmt: skip
    assert available.event.occurred_at == "2026-06-13T10:00:00Z"
    assert available.event.data == {
        "points": 40, "available_at": "2026-06-13T10:00:00Z", "derived": True,
    }  # fmt: skip


def test_points_available_already_are_announced_at_once_and_nothing_else_is(
    stack: Stack,
) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    events_sent = stack.queues.sent["events"]

    stack.event("balance.changed", balance=10, pending=5, available_at="2026-06-01T00:00:00Z")
    ((available, _),) = events_sent
    assert available.event.type == "points.available"  # type: ignore[union-attr]
    assert available.event.occurred_at == "2026-06-10T10:00:00Z"  # type: ignore[union-attr]  # accrued now
    assert stack.storage.event_timers == {}

    events_sent.clear()
    for data in (
        {"pending": 5},  # no moment
        {"pending": 0, "available_at": "2026-06-20T00:00:00Z"},
        {"pending": "5", "available_at": "2026-06-20T00:00:00Z"},
        {"pending": 5, "available_at": "next week"},
    ):
        stack.event("balance.changed", "bob", **data)
    assert events_sent == []
    assert stack.storage.event_timers == {}


# --- orders ---


def order(event_type: str, event_id: str, at: datetime, **data: Any) -> EventMessage:
    event = Event(event_type, at, {"order_id": "o-1", **data}, id=event_id)
    return EventMessage(profile_db="customers", profile_id="ada", event=EventBody.of(event))


def line(item_id: str, status: str, **values: Any) -> dict[str, Any]:
    return {"item_id": item_id, "product_id": f"sku-{item_id}", "quantity": 1, "price": 5,
            "status": status, **values}  # fmt: skip


def derived_sent(stack: Stack) -> list[EventMessage]:
    return [m for m in stack.queues.take("events") if isinstance(m, EventMessage)]


def test_an_order_is_kept_and_its_signals_are_sent_once_however_often_it_comes(
    stack: Stack,
) -> None:
    created = order("order.created", "c1", START, status="placed", items=[line("1", "placed")])
    events.process(created)
    events.process(created)  # delivered again: applied already
    sent = derived_sent(stack)
    assert [(m.event.type, m.event.data["scope"]) for m in sent] == [
        ("order.status_changed", "order"), ("order.status_changed", "any_item"),
        ("order.status_changed", "all_items"),
    ]  # fmt: skip
    assert all(m.row_id and m.event.occurred_at == created.event.occurred_at for m in sent)
    stored = stack.storage.order("customers", "ada", "o-1")
    assert stored is not None
    assert (stored.rev, stored.state.status) == (1, "placed")
    assert stack.storage.last_ordered_at("customers", "ada", "sku-1") == START
    for message in sent:  # each derived event takes its outbox row out once handled
        events.process(message)
    assert stack.storage.rows == {}
    history = stack.storage.profile("customers", "ada").view.events
    assert [e.type for e in history].count("order.status_changed") == 3


def test_a_backdated_update_older_than_the_latest_change_derives_nothing(stack: Stack) -> None:
    events.process(
        order("order.created", "c1", START, status="placed", items=[line("1", "placed")])
    )
    events.process(order("order.updated", "u2", START + timedelta(hours=2), status="shipped"))
    derived_sent(stack)
    late = order("order.updated", "u1", START + timedelta(hours=1), status="cancelled",
                 items=[line("1", "cancelled")])  # fmt: skip
    events.process(late)
    assert derived_sent(stack) == []
    stored = stack.storage.order("customers", "ada", "o-1")
    assert stored is not None
    assert (stored.rev, stored.state.status, stored.state.items[0].status) == (
        2,
        "shipped",
        "placed",
    )
    assert "u1" in [e.id for e in stack.storage.profile("customers", "ada").view.events]


def test_derived_order_events_lost_in_a_crash_are_sent_by_the_sweeper_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(queues: MemoryQueues, queue: str, batch: Any) -> int:
        raise RuntimeError("the function died before sending")

    monkeypatch.setattr(MemoryQueues, "send", refused)
    delivered = order("order.created", "c1", START, status="delivered",
                      items=[line("1", "delivered")])  # fmt: skip
    with pytest.raises(RuntimeError):
        events.process(delivered)
    monkeypatch.undo()
    events.process(delivered)  # its redelivery: applied already, nothing sent again
    assert derived_sent(stack) == []
    stack.clock.advance(timedelta(minutes=16))
    sweeper.sweep(stack.clock.now())
    again = derived_sent(stack)
    assert sorted(m.event.type for m in again) == [
        "order.item_delivered", *["order.status_changed"] * 3
    ]  # fmt: skip
    assert len({m.event.id for m in again}) == 4


def test_two_updates_of_one_order_at_once_both_apply(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    events.process(order("order.created", "c1", START, items=[line("1", "placed"),
                                                               line("2", "placed")]))  # fmt: skip
    derived_sent(stack)
    real = MemoryStorage.commit
    raced: list[int] = []

    def other_update_first(storage: MemoryStorage, changes: Any) -> None:
        if changes.orders and not raced:  # the other update commits between read and write
            raced.append(1)
            events.process(order("order.updated", "u2", START + timedelta(hours=1),
                                 items=[line("2", "delivered")]))  # fmt: skip
        real(storage, changes)

    monkeypatch.setattr(MemoryStorage, "commit", other_update_first)
    events.process(order("order.updated", "u1", START + timedelta(hours=1),
                         items=[line("1", "delivered")]))  # fmt: skip
    stored = stack.storage.order("customers", "ada", "o-1")
    assert stored is not None
    assert [item.status for item in stored.state.items] == ["delivered", "delivered"]
    all_items = [m for m in derived_sent(stack) if m.event.data.get("scope") == "all_items"]
    assert [m.event.id for m in all_items] == ["u1:order.status_changed:all_items:delivered"]


def test_a_session_ends_once_when_its_time_without_activity_is_up(stack: Stack) -> None:
    visit = Event("page.visited", START, {"url": "/"}, id="p1")
    events.process(
        EventMessage(profile_db="customers", profile_id="ada", event=EventBody.of(visit))
    )
    stack.clock.advance(timedelta(minutes=29))
    sweeper.sweep(stack.clock.now())
    assert stack.queues.sent["steps"] == []
    stack.clock.advance(timedelta(minutes=2))
    sweeper.sweep(stack.clock.now())
    (timeout,) = stack.queues.take("steps")
    steps.process(timeout)  # type: ignore[arg-type]
    steps.process(timeout)  # type: ignore[arg-type]  # delivered again: ended already
    (ended,) = derived_sent(stack)
    assert (ended.event.type, ended.event.occurred_at) == ("session.ended", "2026-06-10T10:30:00Z")
    assert ended.event.data["pages"] == 1
    assert stack.storage.session("customers", "ada") is None
    sweeper.sweep(stack.clock.now())
    assert stack.queues.take("steps") == []


def test_a_session_lasts_the_stacks_session_timeout(stack: Stack) -> None:
    stack.storage.set_signal_settings(SignalSettings(session_timeout="PT10M"), START)
    visit = Event("page.visited", START, {"url": "/"}, id="p1")
    events.process(
        EventMessage(profile_db="customers", profile_id="ada", event=EventBody.of(visit))
    )
    stack.clock.advance(timedelta(minutes=11))
    sweeper.sweep(stack.clock.now())
    (timeout,) = stack.queues.take("steps")
    steps.process(timeout)  # type: ignore[arg-type]
    (ended,) = derived_sent(stack)
    assert (ended.event.type, ended.event.occurred_at) == ("session.ended", "2026-06-10T10:10:00Z")


# --- a profile's past -----------------------------------------------------------------------


def arrive(stack: Stack, event_type: str, event_id: str, **data: Any) -> EventMessage:
    """Process an event of Ada's now, with its own id (a redelivery: the same id)."""
    event = Event(event_type, stack.clock.now(), data, id=event_id)
    message = EventMessage(profile_db="customers", profile_id="ada", event=EventBody.of(event))
    events.process(message)
    stack.drain()
    return message


def test_what_an_event_reads_of_a_profiles_journeys_does_not_grow_with_its_past(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    stack.scenario({"hello": email("Hello")}, reentry="parallel")
    stack.scenario(
        {"wait": {"type": "wait_for", "event": "order.created", "timeout": "P1D"}},
        reentry="parallel",
        conversion={"event": "order.created", "within": "P7D"},
    )
    for week in range(30):  # thirty journeys of each, out of their conversion windows
        arrive(stack, "signup", f"signup-{week}")
        stack.advance(timedelta(days=1))  # the wait times out
        stack.advance(timedelta(days=7))
    arrive(stack, "signup", "signup-today")  # one waiting (converting for a week), one ended
    read: list[int] = []
    reading = stack.storage.instances_of_profile

    def counted(*args: Any, **options: Any) -> list[Any]:
        found = reading(*args, **options)
        read.append(len(found))
        return found

    monkeypatch.setattr(stack.storage, "instances_of_profile", counted)
    arrive(stack, "page.visited", "visit")
    assert read == []  # no journey listens to visits: none is read
    arrive(stack, "order.created", "order-1", total=10)
    assert read[0] == 2  # of 62 journeys: today's two (one waiting, one just ended)
    stack.advance(timedelta(days=3))  # the wait went on: its conversion window is open
    read.clear()
    arrive(stack, "order.created", "order-2", total=10)
    assert read
    assert set(read) == {1}
    converted = [i for i in stack.instances() if "conversion" in i.measured]
    assert [i.entry.id for i in converted] == ["signup-today"]


def test_a_redelivered_event_captures_once_long_after_its_journey_ended(stack: Stack) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    stack.scenario({"hello": email("Hello")}, reentry="parallel")
    message = arrive(stack, "signup", "signup-1")
    stack.advance(timedelta(days=60))
    events.process(message)  # the same event again (a redrive of its dead-letter queue)
    stack.drain()
    assert len(stack.instances()) == 1


def test_reentry_never_refuses_a_profile_whose_only_journey_ended_a_year_ago(
    stack: Stack,
) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    stack.scenario({"hello": email("Hello")}, reentry="never")
    arrive(stack, "signup", "signup-1")
    stack.advance(timedelta(days=365))
    arrive(stack, "signup", "signup-2")
    assert len(stack.instances()) == 1


def test_a_trigger_limit_within_a_span_counts_the_journeys_entered_in_it(stack: Stack) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    trigger = {"id": "signup", "type": "event", "event": "signup", "next": "hello",
               "limit": {"max": 1, "per": "profile", "within": "P30D"}}  # fmt: skip
    stack.scenario({"hello": email("Hello")}, reentry="parallel", triggers=[trigger])
    arrive(stack, "signup", "signup-1")
    stack.advance(timedelta(days=20))
    arrive(stack, "signup", "signup-2")  # 20 days after the first: refused
    stack.advance(timedelta(days=20))
    arrive(stack, "signup", "signup-3")  # 40 days after it: captured
    assert [i.entry.id for i in stack.instances()] == ["signup-1", "signup-3"]


def test_a_batch_takes_its_handled_messages_outbox_rows_out_at_its_end(stack: Stack) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    dispatch = Dispatch("events", EventMessage(profile_db="customers", profile_id="ada",
                        event=EventBody.of(Event("visited", START, {}))), START, START)  # fmt: skip
    rows = [OutboxRow(f"row-{n}", "event", START, "customers", "ada", None, {}, dispatch)
            for n in range(3)]  # fmt: skip
    stack.storage.commit(Changes(rows=rows))
    uow = UnitOfWork(buffered=True)
    for n in range(2):  # the third one's message failed: its row stays for the sweeper
        visit = Event("visited", START, {}, id=f"visit-{n}")
        message = EventMessage(profile_db="customers", profile_id="ada",
                               event=EventBody.of(visit), row_id=f"row-{n}")  # fmt: skip
        events.process(message, uow)
    assert set(stack.storage.rows) == {"row-0", "row-1", "row-2"}
    uow.flush()
    assert set(stack.storage.rows) == {"row-2"}


def written_histories(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The ids of the events of each `record_events` call from now on."""
    calls: list[list[str]] = []
    write = stack.storage.record_events

    def record_events(recorded: list[tuple[str, str, Event]]) -> None:
        calls.append([event.id or "" for _, _, event in recorded])
        write(recorded)

    monkeypatch.setattr(stack.storage, "record_events", record_events)
    return calls


def visit(stack: Stack, event_id: str) -> EventMessage:
    """A visit of Ada's now."""
    body = EventBody.of(Event("visited", stack.clock.now(), {}, id=event_id))
    return EventMessage(profile_db="customers", profile_id="ada", event=body)


def history(stack: Stack) -> list[str]:
    """The ids of Ada's events as stored."""
    return [e.id or "" for e in stack.storage.profile("customers", "ada").view.events]


def test_a_batch_writes_its_events_history_at_its_end_in_one_call(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    calls = written_histories(stack, monkeypatch)
    visits = []
    for n in range(3):
        visits.append(visit(stack, f"visit-{n}"))
        stack.clock.advance(timedelta(seconds=1))  # each a second after the one before
    uow = UnitOfWork(buffered=True)
    for message in (visits[0], visits[1], visits[1], visits[2]):  # visit-1 delivered twice
        events.process(message, uow)
    assert calls == []
    assert history(stack) == []  # nothing written before the batch's end
    assert [e.id for e in uow.profile("customers", "ada").view.events] == [
        "visit-0", "visit-1", "visit-2"
    ]  # fmt: skip
    uow.flush()
    assert calls == [["visit-0", "visit-1", "visit-2"]]
    assert history(stack) == ["visit-0", "visit-1", "visit-2"]


def test_an_event_outside_a_batch_is_in_the_history_at_once(stack: Stack) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    uow = UnitOfWork()
    events.process(visit(stack, "visit-0"), uow)
    assert history(stack) == ["visit-0"]  # before any flush
    uow.flush()
    assert history(stack) == ["visit-0"]


def test_a_condition_counting_events_sees_the_batchs_earlier_ones_and_its_own(
    stack: Stack,
) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    thrice = {"event_count": {"type": "visited", "since": "P30D"}, "op": "gte", "value": 3}
    stack.scenario(
        {
            "check": {"type": "condition", "if": thrice, "then": "loyal", "else": "new"},
            "loyal": {"type": "exit"},
            "new": {"type": "exit"},
        },
        triggers=[{"id": "visit", "type": "event", "event": "visited", "next": "check"}],
        reentry="parallel",
    )
    stack.event("visited")  # written: the batch reads it with its own
    uow = UnitOfWork(buffered=True)
    for event_id in ("visit-0", "visit-1"):
        stack.clock.advance(timedelta(seconds=1))
        events.process(visit(stack, event_id), uow)
    uow.flush()
    # visit-0 counts on a read of the history with the batch's unwritten visit added,
    # visit-1 on the view the batch kept, with visit-1 added
    journeys = sorted(stack.instances(), key=lambda instance: instance.entry.occurred_at)
    assert [journey.node for journey in journeys] == ["new", "new", "loyal"]


VISITED_TWICE = {"event_count": {"type": "visited", "since": "P30D"}, "op": "gte", "value": 2}


def test_a_step_reads_the_profiles_history_only_when_its_version_looks_at_it(
    stack: Stack,
) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    waiting = {"type": "wait_for", "event": "clicked", "timeout": "P1D", "next": "after"}
    stack.scenario({"wait": waiting, "after": {"type": "exit"}})
    counting = stack.scenario(
        {
            "wait": waiting,
            "after": {"type": "condition", "if": VISITED_TWICE, "then": "loyal", "else": "new"},
            "loyal": {"type": "exit"},
            "new": {"type": "exit"},
        }
    )
    for n in range(2):
        arrive(stack, "visited", f"visit-{n}")
    arrive(stack, "signup", "signup-1")
    stack.storage.reads.clear()
    arrive(stack, "clicked", "click-1")
    # one unit of work: the fields for the first journey, read again with the history
    # for the second, whose condition counts the visits
    assert stack.storage.reads["profile"] == 1
    assert stack.storage.reads["profile fields"] <= 1
    (journey,) = [i for i in stack.instances() if i.scenario_id == counting]
    assert journey.node == "loyal"


BERLIN_OR_MAILED = {
    "any": [
        {"field": "profile.city", "op": "eq", "value": "Berlin"},
        {"message": {"channel": "email"}, "exists": True},
    ]
}


@pytest.mark.parametrize(
    ("settings", "reads"),
    [
        ({}, False),
        ({"frequency_cap": {"max": 1, "per": "P1D"}}, True),
        ({"nodes": {"hello": {"type": "best_time", "within": "P1D"}}}, True),
        (
            {
                "nodes": {
                    "hello": email("Hello", "check"),
                    "check": {"type": "condition", "if": BERLIN_OR_MAILED, "then": "bye"},
                    "bye": {"type": "exit"},
                }
            },
            True,
        ),
        ({"exit_on": [{"event": "order.created", "where": {"segment": "vip"}}]}, True),
    ],
)
def test_which_versions_read_the_profiles_history(settings: dict[str, Any], reads: bool) -> None:
    document = {
        "name": "s",
        "profile_db": "customers",
        "entry": "hello",
        "triggers": [{"id": "signup", "type": "event", "event": "signup", "next": "hello"}],
        "nodes": {"hello": email("Hello")},
        **settings,
    }
    assert CompiledScenario.from_document(document).reads_history is reads
