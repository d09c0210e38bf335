"""The scenario list's filters and pages, promo pools that do not exist, and activation as
one all-or-nothing change (SPEC §3.1, §3.4), through `chalice.test.Client` on moto."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters import store
from chalicelib.adapters.aws import client
from chalicelib.adapters.dynamodb_storage import schedule_key
from chalicelib.bootstrap import services
from chalicelib.runtime import scenarios as lifecycle
from tests.e2e.harness import Stack
from tests.http.support import NIGHTLY, assert_problem, journey, send

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
FEBRUARY_31 = {"id": "never", "type": "schedule", "cron": "0 0 31 2 *", "next": "hello"}


def pages(stack: Stack, query: str) -> list[dict[str, Any]]:
    """Every page of `GET /scenarios?<query>`, following `next_token`."""
    found: list[dict[str, Any]] = []
    token = None
    for _ in range(100):
        page = stack.get(f"/scenarios?{query}" + (f"&next_token={token}" if token else ""))
        found.append(page)
        token = page["next_token"]
        if token is None:
            return found
    raise AssertionError("the list never ended")


# --- the list ------------------------------------------------------------------------------


def test_list_filters_by_group_and_shows_it(stack: Stack) -> None:
    marketing = stack.create(journey(name="Spring", group="marketing"), activate=False)
    sales = stack.create(journey(name="Leads", group="sales", tags=["b2b"]))
    ungrouped = stack.create(journey(name="Plain"), activate=False)

    def listed(query: str) -> dict[str, Any]:
        return {s["id"]: s for s in stack.get(f"/scenarios?{query}")["scenarios"]}

    assert set(listed("group=marketing")) == {marketing}
    assert set(listed("group=sales&status=active&tag=b2b")) == {sales}
    assert set(listed("group=sales&status=draft")) == set()
    assert set(listed("group=nobody")) == set()
    everything = listed("")
    assert {i: s["group"] for i, s in everything.items()} == {
        marketing: "marketing",
        sales: "sales",
        ungrouped: None,
    }


def test_pages_of_a_filtered_list_are_full_until_the_last(stack: Stack) -> None:
    wanted = {stack.create(journey(name=f"Rare {n}", tags=["rare"]), False) for n in range(3)}
    for n in range(9):
        stack.create(journey(name=f"Common {n}", tags=["common"]), activate=(n % 3 == 0))

    walked = pages(stack, "tag=rare&limit=2")

    assert [len(page["scenarios"]) for page in walked] == [2, 1]
    assert {s["id"] for page in walked for s in page["scenarios"]} == wanted
    assert not any(page["partial"] for page in walked)
    (single,) = pages(stack, "tag=rare")
    assert (len(single["scenarios"]), single["partial"]) == (3, False)


def test_a_page_cut_short_by_the_scan_budget_says_so(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = stack.create(journey(name="Needle", tags=["rare"]), activate=False)
    for n in range(11):
        stack.create(journey(name=f"Hay {n}", tags=["common"]), activate=False)
    monkeypatch.setattr(lifecycle, "LIST_SCAN_ITEMS", 2)  # a budget of two items a page
    monkeypatch.setattr(lifecycle, "LIST_SCANS", 1)

    walked = pages(stack, "tag=rare&limit=1")

    assert [s["id"] for page in walked for s in page["scenarios"]] == [wanted]
    short = [page for page in walked if page["partial"]]
    assert short, "twelve items read two at a time: some pages ran out of budget"
    assert all(not page["scenarios"] and page["next_token"] for page in short)
    assert not walked[-1]["partial"]


# --- promo pools ---------------------------------------------------------------------------


def test_an_unknown_promo_pool_is_a_404_and_an_emptied_one_is_not(stack: Stack) -> None:
    assert_problem(send(stack, "GET", "/promo-pools/NOSUCH"), 404, "NOSUCH")
    stack.put("/promo-pools/SPRING", {"codes": ["A"]})
    assert stack.get("/promo-pools/SPRING") == {"pool": "SPRING", "left": 1}
    assert services().storage.take_code("SPRING", "request-1", stack.now) == "A"
    assert stack.get("/promo-pools/SPRING") == {"pool": "SPRING", "left": 0}
    assert_problem(send(stack, "GET", "/promo-pools/NOSUCH"), 404, "NOSUCH")


def test_a_code_is_redeemed_once_and_announced(stack: Stack) -> None:
    used = {"id": "used", "type": "event", "event": "promo_code.redeemed", "next": "hello"}
    scenario_id = stack.create(journey(used))
    stack.post(f"/scenarios/{scenario_id}/activate")
    stack.upsert("ada", {"email": "ada@example.com", "consents": {"email": True}})
    stack.put("/promo-pools/SPRING", {"codes": ["A", "B"]})
    assert services().storage.take_code("SPRING", "request-1", stack.now) == "A"
    redemption = {"code": "A", "profile_db": "customers", "profile_id": "ada"}

    answer = stack.post("/promo-pools/SPRING/redeem", redemption)
    assert answer == {"pool": "SPRING", "code": "A", "event_id": "promo_code.redeemed:SPRING:A"}
    assert_problem(send(stack, "POST", "/promo-pools/SPRING/redeem", redemption), 409, "A")
    stack.drain()
    (journey_of_ada,) = stack.instances("ada", scenario_id)
    assert journey_of_ada.entry.data == {"pool": "SPRING", "code": "A", "derived": True}

    # a code still available is taken out of the pool when it is redeemed
    stack.post("/promo-pools/SPRING/redeem", {**redemption, "code": "B"})
    assert stack.get("/promo-pools/SPRING") == {"pool": "SPRING", "left": 0}
    assert_problem(
        send(stack, "POST", "/promo-pools/SPRING/redeem", {**redemption, "code": "Z"}), 404, "Z"
    )
    assert_problem(send(stack, "POST", "/promo-pools/SPRING/redeem", {"code": "A"}), 400,
                   "profile_id")  # fmt: skip


# --- activation: all or nothing ------------------------------------------------------------


def assert_as_created(stack: Stack, scenario_id: str, *trigger_ids: str) -> None:
    """The scenario is the draft it was: no version, no secret, not indexed anywhere."""
    read = stack.get(f"/scenarios/{scenario_id}")
    assert (read["status"], read["version"], read["webhook_secret"]) == ("draft", 0, None)
    assert stack.get(f"/scenarios/{scenario_id}/versions")["versions"] == []
    assert services().storage.scenarios_for_event("signup") == []
    for trigger_id in trigger_ids:
        assert store.scenarios.get(schedule_key(scenario_id, trigger_id)) is None


def test_a_schedule_that_never_fires_is_refused_and_nothing_is_activated(stack: Stack) -> None:
    document = journey(NIGHTLY, FEBRUARY_31)
    draft = stack.post("/scenarios", document, status=201)
    problems = {p["path"]: p["message"] for p in draft["problems"]}
    assert "never" in problems["$.triggers[3].cron"], problems

    answer = assert_problem(
        send(stack, "POST", f"/scenarios/{draft['id']}/activate"), 422, "$.triggers[3].cron"
    )
    assert [p["path"] for p in answer["problems"]] == ["$.triggers[3].cron"]
    assert_as_created(stack, draft["id"], "nightly", "never")
    runs = send(stack, "GET", f"/scenarios/{draft['id']}/triggers/never/next-runs")
    assert_problem(runs, 422, "$.triggers[3].cron")


@contextmanager
def failing_write(marker: str) -> Iterator[list[str]]:
    """DynamoDB refuses every write whose request mentions `marker` (a key), as a service
    fault; yields the operations it refused."""
    refused: list[str] = []

    def refuse(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in WRITES and marker in str(params):
            refused.append(model.name)
            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "injected"}}, model.name
            )

    events = client("dynamodb").meta.events
    events.register("provide-client-params.dynamodb", refuse, unique_id="failing-write")
    try:
        yield refused
    finally:
        events.unregister("provide-client-params.dynamodb", unique_id="failing-write")


def test_activation_failing_at_its_last_write_changes_nothing(stack: Stack) -> None:
    scenario_id = stack.create(journey(NIGHTLY), activate=False)

    with failing_write("SCHEDULE") as refused:  # the schedule index entry: written last
        response = send(stack, "POST", f"/scenarios/{scenario_id}/activate")
    assert refused
    assert response.status_code >= 500
    assert_as_created(stack, scenario_id, "nightly")

    activated = stack.post(f"/scenarios/{scenario_id}/activate")  # tried again: all of it
    assert (activated["status"], activated["version"]) == ("active", 1)
    assert services().storage.scenarios_for_event("signup") == [scenario_id]
    entry = store.scenarios.get(schedule_key(scenario_id, "nightly"))
    assert entry is not None
    assert entry["next_run"] == "2026-06-10T19:30:00Z"


def test_a_live_edit_or_a_stop_failing_at_its_last_write_changes_nothing(stack: Stack) -> None:
    scenario_id = stack.create(journey(NIGHTLY))
    entry = store.scenarios.get(schedule_key(scenario_id, "nightly"))
    edited = journey({**NIGHTLY, "daily": "06:00"}, name="Edited")

    with failing_write("SCHEDULE"):
        replaced = send(stack, "PUT", f"/scenarios/{scenario_id}", edited)
        stopped = send(stack, "POST", f"/scenarios/{scenario_id}/deactivate")
    assert (replaced.status_code >= 500, stopped.status_code >= 500) == (True, True)
    read = stack.get(f"/scenarios/{scenario_id}")
    assert (read["status"], read["version"], read["name"]) == ("active", 1, "Test scenario")
    assert [v["version"] for v in stack.get(f"/scenarios/{scenario_id}/versions")["versions"]] == [
        1
    ]
    assert services().storage.scenarios_for_event("signup") == [scenario_id]
    assert store.scenarios.get(schedule_key(scenario_id, "nightly")) == entry

    assert stack.put(f"/scenarios/{scenario_id}", edited)["version"] == 2
    moved = store.scenarios.get(schedule_key(scenario_id, "nightly"))
    assert moved is not None
    assert moved["next_run"] == "2026-06-11T06:00:00Z"
    assert stack.post(f"/scenarios/{scenario_id}/deactivate")["status"] == "stopped"
    assert services().storage.scenarios_for_event("signup") == []
    assert store.scenarios.get(schedule_key(scenario_id, "nightly")) is None
