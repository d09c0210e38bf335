"""`POST /profiles/{db}/merge` through the HTTP API on moto: what moves to `into`, what a
merged id then means, bad input refused naming the field, and a merge cut short at any
step converging on its retry, announced once."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters import dynamodb_storage, store
from chalicelib.adapters import profiles as profile_items
from chalicelib.adapters.dynamodb_storage import DynamoStorage
from tests.e2e.harness import Stack, on_event, person, scenario
from tests.http.support import assert_problem, send, wait_for_open


def rows(profile_id: str, prefix: str) -> list[dict[str, Any]]:
    partition = store.profile_partition("customers", profile_id)
    return [
        row
        for row in store.profiles.query("pk = :pk", values={":pk": partition})
        if row["sk"].startswith(prefix)
    ]


def announced(profile_id: str) -> list[dict[str, Any]]:
    return [row for row in rows(profile_id, "E#") if row.get("type") == "profile.merged"]


def two_on_a_journey(stack: Stack) -> str:
    """Ada and Bob, both sent the hello of a journey that waits for it to be opened."""
    stack.upsert("ada", person("ada", 1, city="Oslo"))
    stack.upsert("bob", {**person("bob", 2), "city": None, "plan": "gold"})
    scenario_id = stack.create(scenario(wait_for_open(), [on_event("signup", "hello")]))
    stack.event("signup", "ada")
    stack.drain()
    stack.advance("PT1H")
    stack.event("signup", "bob")
    stack.drain()
    return scenario_id


def test_a_merge_moves_everything_to_into_and_a_merged_id_then_means_into(stack: Stack) -> None:
    scenario_id = two_on_a_journey(stack)
    (bob_message,) = rows("bob", "M#")
    bob_journey = stack.instance("bob", scenario_id)  # at the node entered latest

    answer = stack.post("/profiles/customers/merge", {"into": "ada", "from": ["bob"]})
    stack.drain()

    assert (answer["into"], answer["merged"]) == ("ada", ["bob"])
    profile = stack.get("/profiles/customers/bob")  # the merged id reads as `into`
    assert profile["profile_id"] == "ada"
    assert profile["fields"]["email"] == "ada@example.com"  # `into` wins
    assert (profile["fields"]["plan"], profile["fields"]["city"]) == ("gold", "Oslo")
    journeys = stack.get("/profiles/customers/ada/journeys")["journeys"]
    assert sorted((j["status"], j["reason"]) for j in journeys) == [
        ("active", None),
        ("exited", "merged"),
    ]
    survivor = next(j for j in journeys if j["status"] == "active")
    assert survivor["instance_id"] == bob_journey.instance_id
    assert stack.instances("bob") == []
    assert len(rows("ada", "M#")) == 2
    assert rows("bob", "M#") == []
    assert [row["data"] for row in announced("ada")] == [{"merged": ["bob"], "derived": True}]

    # feedback for the message sent to Bob applies to Ada: her journey hears of it
    stack.post("/feedback", {"message_id": bob_message["message_id"], "status": "opened"})
    stack.drain()
    (moved,) = [row for row in rows("ada", "M#") if row["message_id"] == bob_message["message_id"]]
    assert "opened" in moved["statuses"]
    moved_on = [i for i in stack.instances("ada", scenario_id) if i.node == "thanks"]
    assert [i.instance_id for i in moved_on] == [bob_journey.instance_id]

    # an upsert and an event for the merged id change `into`
    stack.upsert("bob", {"tier": "vip"})
    assert stack.fields("ada")["tier"] == "vip"
    stack.event("visited", "bob")
    stack.drain()
    assert [row["type"] for row in rows("ada", "E#") if row["type"] == "visited"] == ["visited"]

    # the same merge again answers the same and announces nothing more
    again = stack.post("/profiles/customers/merge", {"into": "ada", "from": ["bob"]})
    stack.drain()
    assert again == answer
    assert len(announced("ada")) == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"into": "ada", "from": ["bob", "ada"]}, 400, "$.from[1]"),
        ({"into": "nobody", "from": ["bob"]}, 404, "$.into"),
        ({"into": "ada", "from": ["nobody"]}, 404, "$.from[0]"),
        ({"into": "ada", "from": []}, 400, "$.from"),
        ({"into": "ada", "from": [f"p{n}" for n in range(101)]}, 400, "$.from"),
        ({"into": "ada"}, 400, "$.from"),
        ({"from": ["bob"]}, 400, "$.into"),
        ({"into": "cy", "from": ["dan"]}, 409, "$.from[0]"),
        ({"into": "dan", "from": ["bob"]}, 409, "$.into"),
    ],
)
def test_what_cannot_be_merged_is_refused_naming_the_field_and_changes_nothing(
    stack: Stack, body: dict[str, Any], status: int, field: str
) -> None:
    for profile_id in ("ada", "bob", "cy", "dan", "eve"):
        stack.upsert(profile_id, person(profile_id))
    stack.post("/profiles/customers/merge", {"into": "eve", "from": ["dan"]})
    stack.drain()
    before = sorted(store.profiles.scan(), key=lambda row: (row["pk"], row["sk"]))

    response = send(stack, "POST", "/profiles/customers/merge", body)

    assert_problem(response, status, field)
    stack.drain()
    assert sorted(store.profiles.scan(), key=lambda row: (row["pk"], row["sk"])) == before


STEPS = ("alias_profile", "fold_profile", "move_profile_rows", "commit", "finish_merge")


@pytest.mark.parametrize("after_work", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("step", STEPS)
def test_a_merge_cut_short_at_any_step_converges_on_its_retry(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, step: str, after_work: bool
) -> None:
    two_on_a_journey(stack)
    original = getattr(DynamoStorage, step)
    armed = [True]

    def crashing(self: DynamoStorage, *args: Any, **kwargs: Any) -> Any:
        if armed[0] and not after_work:
            armed[0] = False
            raise RuntimeError(f"{step} crashed")
        result = original(self, *args, **kwargs)
        if armed[0]:
            armed[0] = False
            raise RuntimeError(f"{step} crashed after its work")
        return result

    monkeypatch.setattr(DynamoStorage, step, crashing)
    body = {"into": "ada", "from": ["bob"]}
    assert send(stack, "POST", "/profiles/customers/merge", body).status_code == 500
    stack.post("/profiles/customers/merge", body)
    stack.drain()

    assert stack.fields("ada")["plan"] == "gold"
    assert stack.instances("bob") == []
    assert rows("bob", "") == rows("bob", "P")  # only the alias is left
    statuses = sorted((i.status, i.reason or "") for i in stack.instances("ada"))
    assert statuses == [("active", ""), ("exited", "merged")]
    assert len(rows("ada", "M#")) == 2
    assert len(announced("ada")) == 1
    assert not [row for row in store.messages.scan() if row.get("kind") == "merge"]


def test_a_merge_the_api_left_half_done_is_finished_from_the_steps_queue(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_on_a_journey(stack)

    def crashing(self: DynamoStorage, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the function died")

    with monkeypatch.context() as patched:
        patched.setattr(DynamoStorage, "move_profile_rows", crashing)
        body = {"into": "ada", "from": ["bob"]}
        assert send(stack, "POST", "/profiles/customers/merge", body).status_code == 500
    assert rows("bob", "M#")  # not moved yet
    stack.advance("PT2M")  # the sweeper sends the merge's pending row to the steps queue
    stack.drain()

    assert rows("bob", "M#") == []
    assert len(rows("ada", "M#")) == 2
    assert stack.instances("bob") == []
    assert len(announced("ada")) == 1


def test_an_upsert_of_a_from_profile_racing_its_fold_is_folded_too(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.upsert("ada", person("ada", 1))
    stack.upsert("bob", person("bob", 2))
    fold_write = dynamodb_storage._fold_write
    raced = [False]

    def racing(*args: Any) -> Any:
        write = fold_write(*args)
        if not raced[0]:  # an upsert that read Bob before the alias lands now
            raced[0] = True
            profile_items.merge_fields("customers", "bob", {"plan": "gold"}, "2026-06-10T10:00:01Z")
        return write

    monkeypatch.setattr(dynamodb_storage, "_fold_write", racing)
    stack.post("/profiles/customers/merge", {"into": "ada", "from": ["bob"]})

    assert raced[0]
    assert stack.fields("ada")["plan"] == "gold"
    assert "fields" not in rows("bob", "P")[0]
