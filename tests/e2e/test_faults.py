"""Fault injection (SPEC §5, DESIGN "Consistency"): crashes between commit and dispatch,
crashes after the work and before the queue delete, duplicate deliveries, and two
workers moving one instance at once. Nothing is lost and nothing happens twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from chalice.test import Client
from harness import Stack, at, email, on_event, person, scenario
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from app import app
from chalicelib.adapters import store
from chalicelib.adapters.aws import client
from chalicelib.adapters.dynamo import to_item
from chalicelib.adapters.queues import queue_url, send
from chalicelib.bootstrap import services
from chalicelib.runtime import channels, events, schedules, steps
from chalicelib.runtime.commit import Commit
from chalicelib.runtime.messages import EventBody, EventMessage, parse_channel
from chalicelib.runtime.storage import StoredInstance
from chalicelib.runtime.unit_of_work import UnitOfWork


class Crash(RuntimeError):
    """The injected failure."""


class Faults:
    """Make a function fail once: before it runs, or after it did its work."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.injected: list[str] = []

    def fail_once(self, owner: Any, name: str, *, after_work: bool = False) -> None:
        original: Callable[..., Any] = getattr(owner, name)
        armed = [True]

        def failing(*args: Any, **kwargs: Any) -> Any:
            if armed[0] and not after_work:
                armed[0] = False
                self.injected.append(name)
                raise Crash(f"{name} crashed before doing anything")
            result = original(*args, **kwargs)
            if armed[0]:
                armed[0] = False
                self.injected.append(name)
                raise Crash(f"{name} crashed after doing its work")
            return result

        self.monkeypatch.setattr(owner, name, failing)


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Faults:
    """Failures to inject; a failed message comes back at once instead of after a second
    (the pumps hand it back with a visibility timeout of 1 s, real time)."""
    sqs = client("sqs")
    hand_back = sqs.change_message_visibility

    def at_once(**arguments: Any) -> Any:
        return hand_back(**{**arguments, "VisibilityTimeout": 0})

    monkeypatch.setattr(sqs, "change_message_visibility", at_once)
    return Faults(monkeypatch)


def hello_on_signup(**settings: Any) -> dict[str, Any]:
    return scenario({"hello": email("Hello")}, [on_event("signup", "hello")], **settings)


def pending_rows() -> list[dict[str, Any]]:
    return [row for row in store.messages.scan() if "pending_shard" in row]


def test_a_crash_between_commit_and_dispatch_is_repaired_by_the_sweeper(
    stack: Stack, faults: Faults
) -> None:
    stack.create(hello_on_signup())
    stack.upsert("ada", person("ada"))
    stack.drain()
    faults.fail_once(UnitOfWork, "dispatch")

    stack.event("signup", "ada")
    stack.drain()  # committed, not dispatched; the redelivered event finds its instance
    assert faults.injected == ["dispatch"]
    assert not stack.sent()
    assert stack.instance("ada").status == "completed"
    assert [row["kind"] for row in pending_rows()] == ["message"]

    stack.advance("PT16M")  # the sweeper re-dispatches the outbox row
    (hello,) = stack.sent()
    assert (hello["node"], hello["at"]) == ("hello", "2026-06-10T10:15:00Z")
    assert pending_rows() == []
    stack.advance("PT2H")
    assert len(stack.sent()) == 1


def test_a_dispatched_message_lost_from_its_queue_is_sent_again(stack: Stack) -> None:
    stack.create(hello_on_signup())
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    (events_pump,) = [pump for pump in stack.runtime.pumps if pump.queue == "events"]
    events_pump.run_once()  # the capture commits and dispatches the e-mail message ...
    client("sqs").purge_queue(QueueUrl=queue_url("email"))  # ... which the queue then loses
    stack.drain()
    assert not stack.sent()

    stack.advance("PT16M")
    assert len(stack.sent()) == 1
    stack.advance("PT1H")
    assert len(stack.sent()) == 1


def test_redelivery_after_the_work_was_done_repeats_nothing(stack: Stack, faults: Faults) -> None:
    stack.create(
        scenario(
            {
                "hello": email("Hello", "wait"),
                "wait": {"type": "pause", "duration": "PT1H", "next": "bye"},
                "bye": email("Bye"),
            },
            [on_event("signup", "hello")],
        )
    )
    stack.upsert("ada", person("ada"))
    stack.drain()
    faults.fail_once(events, "process", after_work=True)
    faults.fail_once(steps, "process", after_work=True)
    faults.fail_once(channels, "deliver", after_work=True)

    stack.event("signup", "ada")
    stack.advance("PT2H")

    assert sorted(faults.injected) == ["deliver", "process", "process"]
    assert [m["node"] for m in stack.sent()] == ["hello", "bye"]
    journey = stack.instance("ada")
    assert (journey.status, [p["node"] for p in journey.path]) == (
        "completed",
        ["hello", "wait", "bye"],
    )
    assert stack.stats(journey.scenario_id)["entered"] == 1


def test_the_same_event_delivered_twice_is_processed_once(stack: Stack) -> None:
    scenario_id = stack.create(hello_on_signup(reentry="parallel"))
    stack.upsert("ada", person("ada"))
    stack.drain()

    assert stack.event("signup", "ada", event_id="evt-1") == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [],
    }
    assert stack.event("signup", "ada", event_id="evt-1")["duplicates"] == 1
    url = queue_url("events")
    (queued,) = client("sqs").receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    stack.drain()
    send("events", json.loads(queued["Body"]))  # the raw SQS message, delivered again
    send("events", json.loads(queued["Body"]))
    stack.drain()

    assert len(stack.instances("ada", scenario_id)) == 1
    assert len(stack.sent()) == 1
    history = store.profiles.query(
        "pk = :pk AND begins_with(sk, :e)",
        values={":pk": store.profile_partition("customers", "ada"), ":e": "E#"},
    )
    assert [item["id"] for item in history if item["type"] == "signup"] == ["evt-1"]


def test_a_channel_message_delivered_twice_is_sent_once(stack: Stack) -> None:
    stack.create(hello_on_signup())
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.drain()
    (row,) = [row for row in store.messages.scan() if row["kind"] == "message"]

    for _ in range(2):
        send(row["queue"], row["payload"])
    stack.drain()
    assert len(stack.sent()) == 1

    threads = [
        threading.Thread(target=channels.deliver, args=(parse_channel(row["payload"]),))
        for _ in "ab"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stack.sent()) == 1


class Lockstep:
    """Once armed, two threads' first commits wait for each other (so both have read the
    same state), then run one after the other. `outcomes` records every commit attempt."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.outcomes: list[str] = []
        self.original = UnitOfWork.commit

    def arm(self) -> None:
        barrier = threading.Barrier(2, timeout=10)
        serial = threading.Lock()
        waited: set[int] = set()
        original = self.original

        def apply(uow: UnitOfWork, commit: Commit, profile: Any = None) -> None:
            if threading.get_ident() not in waited:
                waited.add(threading.get_ident())
                barrier.wait()
            with serial:
                try:
                    original(uow, commit, profile)
                except Exception as error:
                    self.outcomes.append(type(error).__name__)
                    raise
                self.outcomes.append("ok")

        self.monkeypatch.setattr(UnitOfWork, "commit", apply)

    def disarm(self) -> None:
        self.monkeypatch.setattr(UnitOfWork, "commit", self.original)


@pytest.fixture
def lockstep(monkeypatch: pytest.MonkeyPatch) -> Lockstep:
    return Lockstep(monkeypatch)


def in_parallel(*calls: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        try:
            call()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors


def stored_instance(instance_id: str) -> StoredInstance:
    found = services().storage.instance(instance_id)
    assert found is not None
    return found


def event_values(event_type: str, event_id: str, profile_id: str = "ada") -> EventMessage:
    event = EventBody(id=event_id, type=event_type, occurred_at="2026-06-10T10:05:00Z")
    return EventMessage(profile_db="customers", profile_id=profile_id, event=event)


def test_two_events_for_one_instance_at_once_are_both_applied(
    stack: Stack, lockstep: Lockstep
) -> None:
    nodes = {
        "first": {"type": "wait_for", "event": "ping", "next": "second"},
        "second": {"type": "wait_for", "event": "ping", "next": "done"},
        "done": email("Done"),
    }
    stack.create(scenario(nodes, [on_event("signup", "first")]))
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.drain()
    journey = stack.instance("ada")
    rev_before = stored_instance(journey.instance_id).rev
    stack.advance_to(at(10, 10, 5))

    lockstep.arm()
    in_parallel(
        lambda: events.process(event_values("ping", "ping-1")),
        lambda: events.process(event_values("ping", "ping-2")),
    )
    lockstep.disarm()
    stack.drain()

    # the loser's commit failed on the revision; it read the instance again and retried
    assert lockstep.outcomes == ["ok", "Conflict", "ok"]
    found = stored_instance(journey.instance_id)
    instance, rev, seen = found.instance, found.rev, found.seen
    assert rev == rev_before + 2
    assert {"ping-1", "ping-2"} <= set(seen)
    assert instance.status == "completed"
    assert [(p["node"], p["outcome"]) for p in instance.path] == [
        ("first", "event"),
        ("second", "event"),
        ("done", "sent"),
    ]
    assert len(stack.sent()) == 1


def test_two_captures_at_once_respect_the_reentry_mode(stack: Stack, lockstep: Lockstep) -> None:
    scenario_id = stack.create(
        scenario(
            {"wait": {"type": "pause", "duration": "P1D", "next": "hello"}, "hello": email("Hi")},
            [on_event("signup", "wait")],
            reentry="when_finished",
        )
    )
    stack.upsert("ada", person("ada"))
    stack.drain()

    lockstep.arm()
    in_parallel(
        lambda: events.process(event_values("signup", "signup-1")),
        lambda: events.process(event_values("signup", "signup-2")),
    )
    lockstep.disarm()
    stack.advance("P2D")

    assert lockstep.outcomes == ["ok", "Conflict"]  # the loser then saw it was in
    journeys = stack.instances("ada", scenario_id)
    assert [j.status for j in journeys] == ["completed"]
    assert len(stack.sent()) == 1


def test_a_webhook_call_whose_result_was_lost_still_moves_the_journey(
    stack: Stack, faults: Faults
) -> None:
    call = {"type": "webhook", "method": "POST", "url": f"{stack.crm.url}/hook", "next": "after"}
    stack.create(scenario({"call": call, "after": email("After")}, [on_event("signup", "call")]))
    stack.upsert("ada", person("ada"))
    stack.drain()
    faults.fail_once(channels, "announce_result")  # the call is made, announcing its result fails

    stack.event("signup", "ada")
    stack.drain()

    assert faults.injected == ["announce_result"]
    assert sorted(m["node"] for m in stack.sent()) == ["after", "call"]  # each once
    assert stack.instance("ada").status == "completed"


def test_a_timer_expired_by_ttl_wakes_its_instance_without_the_sweeper(stack: Stack) -> None:
    stack.create(
        scenario(
            {"wait": {"type": "pause", "duration": "PT1H", "next": "hello"}, "hello": email("Hi")},
            [on_event("signup", "wait")],
        )
    )
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.drain()
    timer = store.timers.get({"instance_id": stack.instance("ada").instance_id})
    assert timer is not None
    stack.clock.set(at(10, 11, 30))  # the sweeper never ran; DynamoDB's TTL deleted the timer

    def removal(by_ttl: bool) -> dict[str, Any]:
        identity = {"type": "Service", "principalId": "dynamodb.amazonaws.com"} if by_ttl else None
        return {
            "eventName": "REMOVE",
            "userIdentity": identity,
            "dynamodb": {
                "Keys": to_item({"instance_id": timer["instance_id"]}),
                "OldImage": to_item(timer),
            },
        }

    woken = Client(app).lambda_.invoke(
        "timer_expired", {"Records": [removal(False), removal(True)]}
    )
    assert woken.payload == {"woken": 1}  # a deletion by anyone else is not an expiry
    stack.drain()
    assert [(m["node"], m["at"]) for m in stack.sent()] == [("hello", "2026-06-10T11:30:00Z")]
    assert stack.instance("ada").status == "completed"


def test_a_schedule_tick_that_crashes_before_fanning_out_loses_no_run(
    stack: Stack, faults: Faults
) -> None:
    trigger = {"id": "daily", "type": "schedule", "daily": "19:30", "next": "offer"}
    scenario_id = stack.create(scenario({"offer": email("Tonight")}, [trigger]))
    stack.upsert("ada", person("ada"))
    faults.fail_once(schedules, "fan_out")

    stack.advance_to(at(10, 19, 30))  # the first tick at 19:30 crashes, the next one runs it
    assert faults.injected == ["fan_out"]
    assert [(m["profile_id"], m["at"]) for m in stack.sent()] == [("ada", "2026-06-10T19:30:00Z")]
    stack.advance_to(at(11, 12))
    assert len(stack.instances("ada", scenario_id)) == 1


@pytest.mark.parametrize(
    ("owner", "name", "after_work"),
    [
        (channels, "_claim_if_due", False),  # before the claim
        (channels, "_claim_if_due", True),  # after the claim: the worker died holding it
        (channels.email, "send_email", True),  # after SES accepted the e-mail
        (channels, "_finish", True),  # after the row was recorded sent
    ],
    ids=["before claim", "after claim", "after SES accepted", "after recording"],
)
def test_an_email_worker_crash_at_any_boundary_sends_it_once(
    stack: Stack, faults: Faults, owner: Any, name: str, after_work: bool
) -> None:
    stack.create(hello_on_signup())
    stack.upsert("ada", person("ada"))
    stack.drain()
    faults.fail_once(owner, name, after_work=after_work)

    stack.event("signup", "ada")
    stack.advance("PT40M")  # past the lease, twice: the sweeper hands back what was left

    assert faults.injected == [name]
    assert len(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages) == 1
    (row,) = [row for row in store.messages.scan() if row["kind"] == "message"]
    assert row["status"] == "sent"
    assert stack.stats(row["scenario_id"])["channels"]["email"]["sent"] == 1
    assert len(stack.sent()) == 1


def test_a_send_that_renders_too_much_ends_its_journey_with_an_error(stack: Stack) -> None:
    """A message too large for its outbox row fails its node, not the commit: the event is
    processed (not dead-lettered) and the journey ends with an error the stats count."""
    bio = "x" * 210_000  # a field a profile may hold; twice it is more than a DynamoDB item
    mail = {
        "type": "send",
        "channel": "email",
        "template": {"subject": "Hi", "body": "{{ profile.bio }}", "html": "{{ profile.bio }}"},
    }
    scenario_id = stack.create(scenario({"mail": mail}, [on_event("signup", "mail")]))
    stack.upsert("ada", person("ada", bio=bio))

    stack.event("signup", "ada")
    stack.drain()

    dead = client("sqs").receive_message(QueueUrl=queue_url("events-dlq"), MaxNumberOfMessages=10)
    assert dead.get("Messages", []) == []
    (instance,) = stack.instances("ada", scenario_id)
    assert (instance.status, instance.reason) == ("error", "render_limit")
    assert instance.path[-1]["node"] == "mail"
    assert instance.path[-1]["outcome"].startswith("error: ")
    totals = stack.stats(scenario_id)
    assert (totals["entered"], totals["errors"], totals["active"]) == (1, 1, 0)
    assert stack.sent() == []
