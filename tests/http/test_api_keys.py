"""SPEC §9 "Access groups and keys": every scenario route × role × a scenario in or out of
the key's groups answers as it should, a refused call changes nothing, a revoked key is
refused at once, and a key's secret shows nowhere but in the answer that made it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.adapters.aws import client
from chalicelib.config import settings
from tests.e2e.harness import API_KEY, Stack, person
from tests.http.support import NIGHTLY, UNSET, assert_problem, journey, send
from tests.http.test_bad_input_changes_nothing import snapshot

MINE, THEIRS = "marketing", "sales"  # the groups keys are limited to, and another one


@dataclass(frozen=True)
class Key:
    role: str
    groups: tuple[str, ...] = ()


KEYS = {
    "stack": Key("admin"),  # SCENARIA_API_KEY
    "admin": Key("admin"),
    "editor": Key("editor"),
    "viewer": Key("viewer"),
    "group_editor": Key("editor", (MINE,)),
    "group_viewer": Key("viewer", (MINE,)),
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {id}: the scenario's id
    status: int  # the answer when the key may make the call
    body: Any = None  # "document": a valid scenario of the target's group; {id} is filled in


def document(group: str) -> dict[str, Any]:
    return journey(NIGHTLY, group=group)


READS = {
    "read": Route("GET", "/scenarios/{id}", 200),
    "versions": Route("GET", "/scenarios/{id}/versions", 200),
    "next_runs": Route("GET", "/scenarios/{id}/triggers/nightly/next-runs", 200),
    "at_node": Route("GET", "/scenarios/{id}/nodes/wait/profiles", 200),
    "stats": Route("GET", "/scenarios/{id}/stats", 200),
    "diagram": Route("GET", "/scenarios/{id}/diagram.svg", 200),
    "simulate": Route("POST", "/scenarios/simulate", 200, {"scenario_id": "{id}"}),
}
WRITES = {  # in an order that takes a new draft through its whole lifecycle
    "activate": Route("POST", "/scenarios/{id}/activate", 200),
    "replace": Route("PUT", "/scenarios/{id}", 200, "document"),
    "add_profile": Route("POST", "/scenarios/{id}/profiles", 201, {"profile_id": "ada"}),
    "send_segment": Route("POST", "/scenarios/{id}/send-segment", 202, {"segment": "everyone"}),
    "remove_profile": Route("DELETE", "/scenarios/{id}/profiles/ada", 200),
    "remove_at_node": Route("DELETE", "/scenarios/{id}/nodes/wait/profiles", 202),
    "clear": Route("POST", "/scenarios/{id}/clear", 200),
    "clone": Route("POST", "/scenarios/{id}/clone", 201),
    "deactivate": Route("POST", "/scenarios/{id}/deactivate", 200),
    "trash": Route("DELETE", "/scenarios/{id}", 200),
    "restore": Route("POST", "/scenarios/{id}/restore", 200),
}


@pytest.fixture(scope="module")
def seeded(shared_stack: Stack) -> dict[str, Any]:
    """An active scenario of each group with ada waiting at `wait`; a key per role."""
    stack = shared_stack
    stack.upsert("ada", person("ada", 1))
    stack.put(
        "/segments/everyone",
        {"profile_db": "customers", "where": {"field": "profile.email", "op": "exists"}},
    )
    keys = {"stack": API_KEY}
    for name, key in KEYS.items():
        if name != "stack":
            made = stack.post(
                "/api-keys", {"name": name, "role": key.role, "groups": list(key.groups)}
            )
            keys[name] = made["key"]
    scenarios = {}
    for group in (MINE, THEIRS):
        scenarios[group] = stack.create(document(group))
        stack.post(f"/scenarios/{scenarios[group]}/profiles", {"profile_id": "ada"}, status=201)
    stack.drain()
    return {"keys": keys, "scenarios": scenarios}


def call(stack: Stack, route: Route, scenario_id: str, group: str, key: str) -> Any:
    path = route.path.replace("{id}", scenario_id)
    body = route.body
    if body == "document":
        body = document(group)
    elif isinstance(body, dict):
        body = json.loads(json.dumps(body).replace("{id}", scenario_id))
    return send(stack, route.method, path, UNSET if body is None else body, key=key)


@pytest.mark.parametrize("group", [MINE, THEIRS])
@pytest.mark.parametrize("key_name", list(KEYS))
def test_every_scenario_route_by_role_and_group(
    shared_stack: Stack, seeded: dict[str, Any], key_name: str, group: str
) -> None:
    """A key sees the scenarios of its groups (all without groups) and no other: those
    answer 404 as an unknown scenario does. A viewer reads and simulates; its writes are
    403. Every refused call leaves every table and queue as it was."""
    key, secret = KEYS[key_name], seeded["keys"][key_name]
    sees = not key.groups or group in key.groups
    seeded_id = seeded["scenarios"][group]
    refused: dict[str, tuple[Route, int]] = {}
    for name, route in READS.items():
        if sees:
            response = call(shared_stack, route, seeded_id, group, secret)
            assert response.status_code == route.status, (name, response.body.decode())
        else:
            refused[name] = (route, 404)
    for name, route in WRITES.items():
        if key.role == "viewer" or not sees:
            refused[name] = (route, 403 if key.role == "viewer" else 404)

    before = snapshot(shared_stack)
    for name, (route, status) in refused.items():
        problem = assert_problem(call(shared_stack, route, seeded_id, group, secret), status)
        if status == 404:  # word for word the answer for a scenario that does not exist
            assert problem["detail"] == f"no scenario {seeded_id!r}", name
    assert snapshot(shared_stack) == before

    if key.role == "viewer" or not sees:
        return
    draft = shared_stack.create(document(group), activate=False)
    for name, route in WRITES.items():
        response = call(shared_stack, route, draft, group, secret)
        assert response.status_code == route.status, (name, response.body.decode())
        shared_stack.drain()


@pytest.mark.parametrize("key_name", list(KEYS))
def test_the_list_shows_only_the_keys_groups(
    shared_stack: Stack, seeded: dict[str, Any], key_name: str
) -> None:
    response = send(shared_stack, "GET", "/scenarios?limit=1000", key=seeded["keys"][key_name])
    assert response.status_code == 200
    groups = {
        shared_stack.get(f"/scenarios/{s['id']}")["scenario"].get("group")
        for s in response.json_body["scenarios"]
    }
    if KEYS[key_name].groups:
        assert groups == set(KEYS[key_name].groups)
    else:
        assert {MINE, THEIRS} <= groups


def test_a_viewer_is_not_shown_the_webhook_secret(
    shared_stack: Stack, seeded: dict[str, Any]
) -> None:
    """With it, a viewer could put profiles in through the scenario's webhook triggers."""
    path = f"/scenarios/{seeded['scenarios'][MINE]}"
    secrets = {
        name: send(shared_stack, "GET", path, key=seeded["keys"][name]).json_body["webhook_secret"]
        for name in KEYS
    }
    assert secrets["viewer"] is None
    assert secrets["group_viewer"] is None
    assert secrets["editor"] == secrets["group_editor"] == secrets["stack"] is not None


def test_a_group_key_creates_only_in_its_groups(
    shared_stack: Stack, seeded: dict[str, Any]
) -> None:
    keys = seeded["keys"]
    before = snapshot(shared_stack)
    for refused, key in (
        ({"name": "Theirs", "group": THEIRS}, "group_editor"),
        ({"name": "Mine", "group": MINE}, "group_viewer"),
        ({"name": "Mine", "group": MINE}, "viewer"),
    ):
        response = send(shared_stack, "POST", "/scenarios", refused, key=keys[key])
        assert_problem(response, 403, "$.group" if key == "group_editor" else "viewer")
    moved = send(
        shared_stack,
        "PUT",
        f"/scenarios/{seeded['scenarios'][MINE]}",
        document(THEIRS),
        key=keys["group_editor"],
    )
    assert_problem(moved, 403, "$.group")
    assert snapshot(shared_stack) == before

    made = send(shared_stack, "POST", "/scenarios", {"name": "Mine"}, key=keys["group_editor"])
    assert made.status_code == 201
    assert made.json_body["scenario"]["group"] == MINE  # the key's only group
    drafted = send(
        shared_stack, "POST", "/scenarios", {"template": "birthday"}, key=keys["group_editor"]
    )
    assert drafted.status_code == 201
    assert drafted.json_body["scenario"]["group"] == MINE
    anyone = send(shared_stack, "POST", "/scenarios", {"name": "Any"}, key=keys["editor"])
    assert anyone.status_code == 201
    assert "group" not in anyone.json_body["scenario"]


def test_a_group_key_jumps_only_into_scenarios_it_sees(
    shared_stack: Stack, seeded: dict[str, Any]
) -> None:
    keys = seeded["keys"]

    def jumping_to(target: str) -> dict[str, Any]:
        return {
            "name": "Hand over",
            "group": MINE,
            "entry": "go",
            "nodes": {"go": {"type": "jump", "scenario": target}},
        }

    before = snapshot(shared_stack)
    for target in (seeded["scenarios"][THEIRS], "no-such-scenario"):
        response = send(
            shared_stack, "POST", "/scenarios", jumping_to(target), key=keys["group_editor"]
        )
        assert_problem(response, 403, "$.nodes.go.scenario")
    assert snapshot(shared_stack) == before
    mine = send(
        shared_stack,
        "POST",
        "/scenarios",
        jumping_to(seeded["scenarios"][MINE]),
        key=keys["group_editor"],
    )
    assert mine.status_code == 201
    theirs = jumping_to(seeded["scenarios"][THEIRS])
    anyone = send(shared_stack, "POST", "/scenarios", theirs, key=keys["editor"])
    assert anyone.status_code == 201  # a key of every group jumps anywhere


OTHER_ROUTES = {  # (method, path, body) → the answer by role
    "templates": ("GET", "/templates", None, {"admin": 200, "editor": 200, "viewer": 200}),
    "template": ("GET", "/templates/abandoned_cart", None, {"viewer": 200, "editor": 200}),
    "list_keys": ("GET", "/api-keys", None, {"admin": 200, "editor": 403, "viewer": 403}),
    "make_key": (
        "POST",
        "/api-keys",
        {"name": "more", "role": "viewer"},
        {"admin": 201, "editor": 403, "viewer": 403},
    ),
    "event": (
        "POST",
        "/events",
        {"type": "page.visited", "profile_db": "customers", "profile_id": "ada"},
        {"admin": 202, "editor": 202, "viewer": 403},
    ),
    "read_profile": ("GET", "/profiles/customers/ada", None, {"editor": 200, "viewer": 200}),
    "upsert_profile": (
        "PUT",
        "/profiles/customers/ada",
        {"fields": {"city": "Paris"}},
        {"admin": 200, "editor": 200, "viewer": 403},
    ),
    "create": ("POST", "/scenarios", {"name": "New"}, {"admin": 201, "editor": 201, "viewer": 403}),
}


@pytest.mark.parametrize("route_name", list(OTHER_ROUTES))
@pytest.mark.parametrize("key_name", list(KEYS))
def test_templates_keys_events_and_profiles_by_role(
    shared_stack: Stack, seeded: dict[str, Any], key_name: str, route_name: str
) -> None:
    """Templates are for every key; keys for admins; events and profiles are not scoped by
    group, and only a viewer is refused their writes."""
    method, path, body, answers = OTHER_ROUTES[route_name]
    body = UNSET if body is None else body
    role = KEYS[key_name].role
    expected = answers.get(role, 200 if method == "GET" else 201)
    before = snapshot(shared_stack) if expected >= 400 else None
    response = send(shared_stack, method, path, body, key=seeded["keys"][key_name])
    if before is not None:
        assert_problem(response, expected)
        assert snapshot(shared_stack) == before
    else:
        assert response.status_code == expected, response.body.decode()
    shared_stack.drain()


def test_a_revoked_key_is_refused_at_once(shared_stack: Stack) -> None:
    made = shared_stack.post("/api-keys", {"name": "ci", "role": "editor"}, status=201)
    assert send(shared_stack, "GET", "/scenarios", key=made["key"]).status_code == 200
    assert send(shared_stack, "DELETE", f"/api-keys/{made['id']}").status_code == 204
    assert_problem(send(shared_stack, "GET", "/scenarios", key=made["key"]), 401, "X-Api-Key")
    assert made["id"] not in [k["id"] for k in shared_stack.get("/api-keys")["api_keys"]]
    assert_problem(send(shared_stack, "DELETE", f"/api-keys/{made['id']}"), 404, made["id"])


def test_a_key_with_a_wrong_secret_or_shape_is_refused(shared_stack: Stack) -> None:
    made = shared_stack.post("/api-keys", {"name": "ci", "role": "admin"}, status=201)
    prefix = made["key"].rsplit("_", 1)[0] if made["key"].count("_") == 2 else made["key"][:19]
    for wrong in (
        made["key"][:-1] + ("A" if made["key"][-1] != "A" else "B"),
        f"{prefix}_",
        f"sk_{made['id']}",
        "sk__x",
        "sk_0123456789abcdef_nope",
        made["key"].upper(),
    ):
        assert_problem(send(shared_stack, "GET", "/scenarios", key=wrong), 401, "X-Api-Key")


def test_bad_keys_are_400s_that_make_nothing(shared_stack: Stack) -> None:
    before = snapshot(shared_stack)
    for body, named in (
        ({"name": "x", "role": "owner"}, "$.role"),
        ({"role": "viewer"}, "$.name"),
        ({"name": "x", "role": "admin", "groups": [MINE]}, "$.groups"),
        ({"name": "x", "role": "viewer", "groups": [""]}, "$.groups[0]"),
        ({"name": "x", "role": "viewer", "secret": "mine"}, "$.secret"),
    ):
        assert_problem(send(shared_stack, "POST", "/api-keys", body), 400, named)
    assert snapshot(shared_stack) == before


def test_no_secret_in_any_answer_log_or_item_after_creation(
    shared_stack: Stack, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    made = shared_stack.post(
        "/api-keys", {"name": "deploys", "role": "editor", "groups": [MINE]}, status=201
    )
    key = made["key"]
    secret = key.split("_", 2)[2]
    assert key.startswith(f"sk_{made['id']}_")
    assert {k: v for k, v in made.items() if k != "key"} == {
        "id": made["id"],
        "name": "deploys",
        "role": "editor",
        "groups": [MINE],
        "created_at": made["created_at"],
    }
    answers = [
        send(shared_stack, "GET", "/api-keys").body.decode(),
        send(shared_stack, "GET", "/scenarios", key=key).body.decode(),
        send(shared_stack, "POST", "/scenarios", {"name": "Logged"}, key=key).body.decode(),
        send(shared_stack, "GET", "/api-keys", key=key).body.decode(),
        send(shared_stack, "GET", "/scenarios", key=key[:-2]).body.decode(),
        send(shared_stack, "DELETE", f"/api-keys/{made['id']}").body.decode(),
        send(shared_stack, "GET", "/scenarios", key=key).body.decode(),
    ]
    items = client("dynamodb").scan(TableName=settings().table("api_keys"))["Items"]
    output = capsys.readouterr()
    for text in (*answers, caplog.text, output.out, output.err, json.dumps(items)):
        assert secret not in text
    listed = json.loads(answers[0])["api_keys"]
    assert all({"salt", "secret_hash", "key"}.isdisjoint(key) for key in listed)
