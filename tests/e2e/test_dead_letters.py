"""Dead-letter queues have a way back: a message its consumer kept failing parks in the
queue's dead-letter queue, `GET /admin/dead-letters` shows it, and once the fault is
gone `POST /admin/dead-letters/{queue}/redrive` moves it back and its work completes,
once (SPEC §5: nothing lost, nothing sent twice)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from harness import Stack, email, on_event, person, scenario

from chalicelib.adapters.aws import client
from chalicelib.runtime import channels, events


class Broken(RuntimeError):
    """The injected fault."""


@pytest.fixture
def fast_retries(aws_stack: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed message comes back at once instead of after a second of real time, so its
    five receives and its move to the dead-letter queue take one drain."""
    sqs = client("sqs")
    hand_back = sqs.change_message_visibility

    def at_once(**arguments: Any) -> Any:
        return hand_back(**{**arguments, "VisibilityTimeout": 0})

    monkeypatch.setattr(sqs, "change_message_visibility", at_once)


def break_until_fixed(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, *, after_work: bool = False
) -> Callable[[], None]:
    """Make `owner.name` fail every time (before or after doing its work) until the
    returned function is called."""
    original: Callable[..., Any] = getattr(owner, name)

    def failing(*args: Any, **kwargs: Any) -> Any:
        if after_work:
            original(*args, **kwargs)
        raise Broken(f"{name} is broken")

    monkeypatch.setattr(owner, name, failing)
    return lambda: monkeypatch.setattr(owner, name, original)


def depths(stack: Stack) -> dict[str, int]:
    return {q["queue"]: q["messages"] for q in stack.get("/admin/dead-letters")["queues"]}


def hello_on_signup(stack: Stack) -> str:
    """A scenario that e-mails Ada when she signs up, and Ada; the scenario's id."""
    scenario_id = stack.create(scenario({"hello": email("Hello")}, [on_event("signup", "hello")]))
    stack.upsert("ada", person("ada"))
    stack.drain()
    return scenario_id


def sign_up(stack: Stack) -> None:
    stack.event("signup", "ada")
    stack.drain()


@pytest.mark.usefixtures("fast_retries")
def test_an_event_parked_by_a_fault_is_redriven_and_processed_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario_id = hello_on_signup(stack)
    fix = break_until_fixed(monkeypatch, events, "process")
    sign_up(stack)
    assert stack.sent() == []
    assert depths(stack)["events"] == 1

    fix()
    answer = stack.post("/admin/dead-letters/events/redrive", status=202)
    assert (answer["queue"], answer["messages"]) == ("events", 1)
    assert answer["dead_letter_queue"] == "scenaria-test-events-dlq"
    assert answer["task_handle"]
    stack.drain()

    assert [m["subject"] for m in stack.sent()] == ["Hello"]
    assert stack.stats(scenario_id)["entered"] == 1
    assert set(depths(stack).values()) == {0}
    stack.post("/admin/dead-letters/events/redrive", status=202)  # nothing left to move
    stack.drain()
    assert len(stack.sent()) == 1


@pytest.mark.usefixtures("fast_retries")
def test_an_email_dead_lettered_after_it_went_out_is_not_sent_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker sends, then fails before its message is deleted, five times over: the
    e-mail went out once, and its redrive sends nothing more."""
    hello_on_signup(stack)
    fix = break_until_fixed(monkeypatch, channels, "deliver", after_work=True)
    sign_up(stack)
    assert [m["subject"] for m in stack.sent()] == ["Hello"]
    assert depths(stack)["email"] == 1

    fix()
    assert stack.post("/admin/dead-letters/email/redrive", status=202)["messages"] == 1
    stack.drain()
    assert [m["subject"] for m in stack.sent()] == ["Hello"]
    assert depths(stack)["email"] == 0


@pytest.mark.usefixtures("fast_retries")
def test_an_email_parked_before_it_went_out_is_sent_once_redriven(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    hello_on_signup(stack)
    fix = break_until_fixed(monkeypatch, channels, "deliver")
    sign_up(stack)
    assert stack.sent() == []
    assert depths(stack)["email"] == 1

    fix()
    stack.post("/admin/dead-letters/email/redrive", status=202)
    stack.drain()
    assert [m["subject"] for m in stack.sent()] == ["Hello"]


@pytest.mark.usefixtures("fast_retries")
def test_a_redrive_while_one_runs_is_a_409_and_moves_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    hello_on_signup(stack)
    fix = break_until_fixed(monkeypatch, channels, "deliver")
    sign_up(stack)
    fix()

    def already_running(**_: Any) -> None:
        error = {
            "Code": "AWS.SimpleQueueService.UnsupportedOperation",
            "Message": "There is already a task running for this source queue.",
        }
        raise ClientError({"Error": error}, "StartMessageMoveTask")

    monkeypatch.setattr(client("sqs"), "start_message_move_task", already_running)
    problem = stack.post("/admin/dead-letters/email/redrive", status=409)
    assert problem["detail"] == "email: There is already a task running for this source queue."
    stack.drain()
    assert stack.sent() == []
    assert depths(stack)["email"] == 1


def test_an_unknown_queue_is_a_404_and_changes_nothing(stack: Stack) -> None:
    problem = stack.post("/admin/dead-letters/mail/redrive", status=404)
    assert "mail" in problem["detail"]
    assert "email" in problem["detail"]  # the queues it could have named
    assert set(depths(stack)) == {
        "events",
        "steps",
        "segments",
        "email",
        "sms",
        "push",
        "webhook",
        "feedback",
    }
    assert set(depths(stack).values()) == {0}


def test_the_dead_letter_calls_need_the_api_key(stack: Stack) -> None:
    for method, path in (
        ("GET", "/admin/dead-letters"),
        ("POST", "/admin/dead-letters/events/redrive"),
    ):
        response = stack.http.request(method, path, headers={"X-Api-Key": "wrong"})
        assert response.status_code == 401
