"""Calls that race or are retried, through the HTTP API on moto (SPEC §5): concurrent
changes to one profile are never lost, and an event, hook call or quick-send is processed
once however often it arrives — but a call that failed half-way is processed when retried.

moto serialises requests, so a race is staged: another write lands between a call's read
and its write, from inside the read (`after_reads`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters import store
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.bootstrap import services
from chalicelib.runtime import feedback
from chalicelib.runtime import hooks as runtime_hooks
from chalicelib.runtime.commit import epoch
from chalicelib.runtime.journeys import capture_profile
from chalicelib.runtime.unit_of_work import UnitOfWork
from chalicelib.scenarios.facts import Event
from tests.e2e.harness import Stack, email, on_event, person, scenario
from tests.http.support import assert_problem, journey, send, signed_hook


def after_reads(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, race: Callable[[], None], times: int
) -> list[int]:
    """Run `race` right after each of the first `times` calls of `owner.name` (not after
    the calls the race itself makes); the list counts the races run."""
    original = getattr(owner, name)
    raced: list[int] = []
    inside = threading.local()

    def read_then_race(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        if not getattr(inside, "racing", False) and len(raced) < times:
            raced.append(len(raced) + 1)
            inside.racing = True
            try:
                race()
            finally:
                inside.racing = False
        return found

    monkeypatch.setattr(owner, name, read_then_race)
    return raced


def before_profile_writes(
    monkeypatch: pytest.MonkeyPatch, race: Callable[[], None], times: int
) -> list[int]:
    """Run `race` right before each of the first `times` PutItem or UpdateItem calls on a
    profile item (`P`), not before the writes the race makes itself."""
    raced: list[int] = []
    inside = threading.local()

    def racing(original: Callable[..., Any]) -> Callable[..., Any]:
        def race_then_write(target: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            outer = not getattr(inside, "racing", False)
            if target.get("sk") == "P" and outer and len(raced) < times:
                raced.append(len(raced) + 1)
                inside.racing = True
                try:
                    race()
                finally:
                    inside.racing = False
            return original(target, *args, **kwargs)

        return race_then_write

    for name in ("put", "update"):
        monkeypatch.setattr(store.profiles, name, racing(getattr(store.profiles, name)))
    return raced


def failing_once(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, after: int = 0
) -> list[str]:
    """Make `owner.name` raise once, on its call after the first `after` ones, as a queue
    refusing a batch or a table refusing a write would."""
    original = getattr(owner, name)
    calls: list[str] = []
    failed: list[str] = []

    def fail_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        if len(calls) == after + 1:
            failed.append(name)
            raise RuntimeError(f"{name} was refused")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, fail_once)
    return failed


# --- quick-sends -----------------------------------------------------------------------------


def vip_segment(stack: Stack) -> str:
    scenario_id = stack.create(journey(reentry="parallel"))
    stack.upsert("ada", person("ada", vip=True))
    stack.put(
        "/segments/vips",
        {"profile_db": "customers", "where": {"field": "profile.vip", "op": "eq", "value": True}},
    )
    return scenario_id


def test_two_quick_sends_in_the_same_second_are_two_runs(stack: Stack) -> None:
    scenario_id = vip_segment(stack)
    path = f"/scenarios/{scenario_id}/send-segment"
    first = stack.post(path, {"segment": "vips"}, status=202)
    second = stack.post(path, {"segment": "vips"}, status=202)  # the clock has not moved
    assert first["run_id"] != second["run_id"]
    stack.drain()
    assert len(stack.instances("ada", scenario_id)) == 2
    assert len(stack.sent(node="hello")) == 2


def test_a_quick_send_retried_under_its_idempotency_key_runs_once(stack: Stack) -> None:
    scenario_id = vip_segment(stack)
    path = f"/scenarios/{scenario_id}/send-segment"
    key = {"Idempotency-Key": "campaign-7"}
    first = stack.post(path, {"segment": "vips"}, status=202, headers=key)
    again = stack.post(path, {"segment": "vips"}, status=202, headers=key)
    assert again == first
    other = send(
        stack, "POST", path, {"segment": {"field": "profile.vip", "op": "exists"}}, headers=key
    )
    assert_problem(other, 422, "Idempotency-Key")
    stack.drain()
    assert len(stack.instances("ada", scenario_id)) == 1
    assert len(stack.sent(node="hello")) == 1


# --- events and upserts whose queueing failed -------------------------------------------------


def test_an_event_batch_retried_after_queueing_failed_is_processed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario_id = stack.create(journey(reentry="parallel"))
    stack.upsert("ada", person("ada"))
    stack.drain()
    failed = failing_once(monkeypatch, services().queues, "send")
    event = {"type": "signup", "profile_db": "customers", "profile_id": "ada"}
    batch = {"events": [{**event, "id": f"order-{n}"} for n in range(3)]}

    assert send(stack, "POST", "/events", batch).status_code >= 500
    assert failed
    assert stack.post("/events", batch, status=202) == {
        "accepted": 3,
        "duplicates": 0,
        "rejected": [],
    }
    stack.drain()
    assert len(stack.instances("ada", scenario_id)) == 3
    again = stack.post("/events", batch, status=202)
    assert (again["accepted"], again["duplicates"]) == (0, 3)


def test_an_upsert_whose_events_the_queue_refused_still_announces_them(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.create(scenario({"hello": email("Welcome")}, [on_event("profile.created", "hello")]))
    failed = failing_once(monkeypatch, services().queues, "send")
    response = send(stack, "PUT", "/profiles/customers/ada", {"fields": person("ada")})
    if response.status_code >= 500:  # a client retries what failed
        response = send(stack, "PUT", "/profiles/customers/ada", {"fields": person("ada")})
    assert response.status_code == 200, response.body
    assert failed
    stack.advance("PT1M")  # the sweeper sends what the queue refused
    assert [m["node"] for m in stack.sent(profile_id="ada")] == ["hello"]
    assert not [row for row in store.messages.scan() if "pending_shard" in row]


# --- concurrent changes of one profile --------------------------------------------------------


def test_an_upsert_raced_between_its_read_and_write_keeps_every_field(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.upsert("ada", {"n0": 0})

    def other_upsert() -> None:
        number = len(raced)
        stack.upsert("ada", {f"n{number}": number})

    raced = after_reads(monkeypatch, store.profiles, "get", other_upsert, times=5)
    answer = stack.put("/profiles/customers/ada", {"fields": {"mine": True}})
    assert raced
    expected = {"n0": 0, "mine": True, **{f"n{n}": n for n in raced}}
    assert answer["fields"] == expected
    assert stack.fields("ada") == expected


def test_an_upsert_that_keeps_colliding_is_a_503_with_retry_after(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.upsert("ada", {"a": 1})

    def collide(*args: Any, **kwargs: Any) -> Any:
        raise ConditionFailed("another writer")

    monkeypatch.setattr(store.profiles, "put", collide)
    monkeypatch.setattr(store.profiles, "update", collide)
    response = send(stack, "PUT", "/profiles/customers/ada", {"fields": {"b": 2}})
    assert_problem(response, 503)
    assert {k.lower(): v for k, v in response.headers.items()}["retry-after"] == "1"


def test_an_import_raced_by_upserts_keeps_their_fields(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.upsert("ada", {"a": 1})

    def upserts_of_both() -> None:
        stack.upsert("ada", {"racer": 1})
        stack.upsert("bob", {"racer": 2})  # bob did not exist when the import read

    raced = after_reads(monkeypatch, store.profiles, "batch_get", upserts_of_both, times=1)
    rows = [
        {"profile_id": "ada", "fields": {"imported": True}},
        {"profile_id": "bob", "fields": {"imported": True}},
    ]
    answer = stack.post("/profiles/customers/import", {"profiles": rows})
    assert raced == [1]
    assert stack.fields("ada") == {"a": 1, "racer": 1, "imported": True}
    assert stack.fields("bob") == {"racer": 2, "imported": True}
    assert answer == {"imported": 2, "created": 0}  # bob was the racer's creation


def test_an_upsert_raced_by_a_journey_increment_and_a_hard_bounce_loses_neither(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = {
        "type": "update_profile",
        "ops": [{"field": "points", "op": "increment", "value": 10}],
    }
    scenario_id = stack.create(scenario({"points": points}, [on_event("signup", "points")]))
    stack.upsert("ada", {**person("ada"), "points": 5})

    def journey_and_bounce() -> None:
        entry = Event("api", stack.now, {}, id="race-1")
        assert capture_profile(UnitOfWork(), scenario_id, "customers", "ada", entry).instance_id
        feedback.mark_invalid("customers", "ada", "email", "ada@example.com")

    raced = after_reads(monkeypatch, store.profiles, "get", journey_and_bounce, times=1)
    stack.upsert("ada", {"first_name": "Ada B."})
    assert raced == [1]
    assert stack.fields("ada")["points"] == 15
    assert stack.fields("ada")["first_name"] == "Ada B."
    item = store.profiles.get({"pk": store.profile_partition("customers", "ada"), "sk": "P"})
    assert item is not None
    assert item["invalid"] == {"email": "ada@example.com"}


# --- hook calls ---------------------------------------------------------------------------------


def hook_scenario(stack: Stack) -> tuple[str, str]:
    scenario_id = stack.create(journey(reentry="parallel"))
    return scenario_id, stack.get(f"/scenarios/{scenario_id}")["webhook_secret"]


def test_a_replayed_signed_hook_call_is_refused_and_sends_nothing_twice(stack: Stack) -> None:
    scenario_id, secret = hook_scenario(stack)
    call = {"profile_id": "ada", "profile": person("ada")}
    first = signed_hook(stack, scenario_id, "crm", call, secret)
    assert first.status_code == 202, first.body
    stack.advance("PT2M")  # still inside the signature's five minutes
    stamp = epoch(stack.now) - 120
    replay = signed_hook(stack, scenario_id, "crm", call, secret, timestamp=stamp)
    assert_problem(replay, 409, "X-Signature")
    stack.drain()
    assert len(stack.instances("ada", scenario_id)) == 1
    assert len(stack.sent(node="hello")) == 1
    anew = signed_hook(stack, scenario_id, "crm", call, secret)  # signed again: a new call
    assert anew.status_code == 202, anew.body
    assert len(stack.instances("ada", scenario_id)) == 2


def test_an_idempotency_key_with_another_body_is_a_422_and_changes_nothing(stack: Stack) -> None:
    scenario_id, secret = hook_scenario(stack)
    key = {"Idempotency-Key": "order-1"}
    first = {"profile_id": "ada", "profile": person("ada")}
    assert signed_hook(stack, scenario_id, "crm", first, secret, headers=key).status_code == 202
    other = {"profile_id": "ada", "profile": {"plan": "gold"}}
    response = signed_hook(stack, scenario_id, "crm", other, secret, headers=key)
    assert_problem(response, 422, "Idempotency-Key")
    assert "plan" not in stack.fields("ada")
    assert len(stack.instances("ada", scenario_id)) == 1


def test_hook_calls_with_one_key_at_once_run_once_and_answer_alike(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario_id, secret = hook_scenario(stack)
    call = {"profile_id": "ada", "profile": person("ada")}
    key = {"Idempotency-Key": "order-9"}
    answers: list[Any] = []
    upserts: list[str] = []
    second_ran = threading.Event()

    def second_call() -> None:
        answers.append(signed_hook(stack, scenario_id, "crm", call, secret, headers=key))
        second_ran.set()

    original = runtime_hooks.upsert
    second = threading.Thread(target=second_call)

    def upsert_while_another_call_arrives(*args: Any, **kwargs: Any) -> Any:
        upserts.append(threading.current_thread().name)
        if len(upserts) == 1:
            second.start()
            second_ran.wait(timeout=2)  # it waits for this first call, or (before) ran anew
        return original(*args, **kwargs)

    monkeypatch.setattr(runtime_hooks, "upsert", upsert_while_another_call_arrives)
    answers.append(signed_hook(stack, scenario_id, "crm", call, secret, headers=key))
    second.join(timeout=30)
    assert len(upserts) == 1
    assert [a.status_code for a in answers] == [202, 202]
    bodies = sorted((a.json_body for a in answers), key=lambda b: "replayed" in b)
    assert bodies[1] == {**bodies[0], "replayed": True}
    stack.drain()
    assert len(stack.instances("ada", scenario_id)) == 1
    assert len(stack.sent(node="hello")) == 1


@pytest.mark.parametrize("key", [None, "order-5"], ids=["signed", "with-idempotency-key"])
def test_a_hook_call_retried_after_it_failed_half_way_is_processed_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    scenario_id, secret = hook_scenario(stack)
    call = {"profile_id": "ada", "profile": person("ada")}
    headers = {"Idempotency-Key": key} if key else None
    stamp = epoch(stack.now)
    # the call remembers its signature, upserts, then fails to commit its capture
    failed = failing_once(monkeypatch, services().storage, "commit", after=1)

    first = signed_hook(stack, scenario_id, "crm", call, secret, timestamp=stamp, headers=headers)
    assert first.status_code >= 500
    assert failed
    assert stack.fields("ada")["email"] == person("ada")["email"]  # the upsert had landed
    stack.advance("PT1M")  # the client retries the same signed bytes a minute later
    retry = signed_hook(stack, scenario_id, "crm", call, secret, timestamp=stamp, headers=headers)
    assert retry.status_code == 202, retry.body
    assert "replayed" not in retry.json_body
    stack.drain()
    assert len(stack.instances("ada", scenario_id)) == 1
    assert len(stack.sent(node="hello")) == 1
    replay = signed_hook(stack, scenario_id, "crm", call, secret, timestamp=stamp, headers=headers)
    if key:
        assert replay.json_body == {**retry.json_body, "replayed": True}
    else:
        assert_problem(replay, 409, "X-Signature")
    stack.drain()
    assert len(stack.instances("ada", scenario_id)) == 1


def test_an_unsubscribe_raced_by_a_journey_granting_consent_keeps_both(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = {"type": "update_profile", "ops": [{"consent": "sms", "op": "grant"}]}
    scenario_id = stack.create(scenario({"grant": grant}, [on_event("signup", "grant")]))
    stack.upsert("ada", {**person("ada"), "consents": {"email": True}})

    def journey_grants_sms() -> None:
        entry = Event("api", stack.now, {}, id="race-2")
        assert capture_profile(UnitOfWork(), scenario_id, "customers", "ada", entry).instance_id

    raced = before_profile_writes(monkeypatch, journey_grants_sms, times=1)
    feedback.revoke_consent("customers", "ada", "email")
    assert raced == [1]
    assert stack.fields("ada")["consents"] == {"email": False, "sms": True}
