"""Every route of SPEC §3 through `chalice.test.Client` on moto: the success answer and its
shape, and each failure answer — its status, `application/problem+json` and a `detail`
naming the field at fault. The API key is checked on every route but the public ones."""

from __future__ import annotations

import re
from typing import Any

from app import app
from chalicelib.adapters import store
from chalicelib.runtime.commit import epoch
from tests.e2e.harness import Stack, person, scenario
from tests.http.support import (
    NIGHTLY,
    assert_problem,
    journey,
    send,
    signed_hook,
    wait_for_open,
)

SECRET = re.compile(r"^[0-9a-f]{64}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SCENARIO_KEYS = {
    "id",
    "name",
    "status",
    "version",
    "tags",
    "webhook_secret",
    "created_at",
    "updated_at",
    "scenario",
}


def active(stack: Stack, **settings: Any) -> str:
    return stack.create(journey(**settings))


def enter(stack: Stack, scenario_id: str, *names: str) -> list[str]:
    """Upsert reachable profiles and put them into the scenario; their instance ids."""
    ids = []
    for number, name in enumerate(names):
        stack.upsert(name, person(name, number))
        answer = stack.post(f"/scenarios/{scenario_id}/profiles", {"profile_id": name}, status=201)
        ids.append(answer["instance_id"])
    return ids


# --- the API key ---------------------------------------------------------------------------

PUBLIC = ("/hooks/", "/openapi.json", "/t/", "/console")  # /console: the page asks for the key
PUBLIC_ROUTES = {  # the local stack's sinks: the push service's endpoint, the webhook sink
    ("POST", "/local/push/{subscription_id}"),
    *((method, "/local/webhooks/{name}") for method in ("GET", "POST", "PUT", "PATCH", "DELETE")),
}


def protected_routes() -> list[tuple[str, str]]:
    """(method, path) of every route but the public ones, ids as `x1` (read when the
    tests run: the stack fixture adds the local stack's `/local/*` routes)."""
    found = []
    for path, methods in app.routes.items():
        if path.startswith(PUBLIC):
            continue
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        found.extend(
            (method, concrete) for method in sorted(methods) if (method, path) not in PUBLIC_ROUTES
        )
    return found


def test_every_route_of_the_spec_is_protected(stack: Stack) -> None:
    protected = {(m, re.sub(r"x1", "{}", p)) for m, p in protected_routes()}
    for expected in [
        ("POST", "/scenarios"),
        ("GET", "/scenarios"),
        ("POST", "/scenarios/simulate"),
        ("GET", "/scenarios/{}"),
        ("PUT", "/scenarios/{}"),
        ("DELETE", "/scenarios/{}"),
        ("POST", "/scenarios/{}/activate"),
        ("POST", "/scenarios/{}/deactivate"),
        ("POST", "/scenarios/{}/clone"),
        ("POST", "/scenarios/{}/restore"),
        ("POST", "/scenarios/{}/clear"),
        ("GET", "/scenarios/{}/versions"),
        ("GET", "/scenarios/{}/triggers/{}/next-runs"),
        ("POST", "/scenarios/{}/profiles"),
        ("POST", "/scenarios/{}/send-segment"),
        ("DELETE", "/scenarios/{}/profiles/{}"),
        ("GET", "/scenarios/{}/nodes/{}/profiles"),
        ("DELETE", "/scenarios/{}/nodes/{}/profiles"),
        ("GET", "/scenarios/{}/stats"),
        ("POST", "/events"),
        ("PUT", "/profiles/{}/{}"),
        ("GET", "/profiles/{}/{}"),
        ("DELETE", "/profiles/{}/{}"),
        ("POST", "/profiles/{}/import"),
        ("GET", "/profiles/{}/{}/journeys"),
        ("PUT", "/segments/{}"),
        ("GET", "/segments/{}"),
        ("GET", "/segments/{}/count"),
        ("PUT", "/promo-pools/{}"),
        ("GET", "/promo-pools/{}"),
        ("POST", "/feedback"),
        ("GET", "/settings/control"),
        ("PUT", "/settings/control"),
        ("GET", "/local/sent"),
        ("POST", "/local/clock"),
        ("POST", "/local/drain"),
        ("POST", "/local/push/subscriptions"),
        ("GET", "/local/push"),
        ("DELETE", "/local/push/{}"),
    ]:
        assert expected in protected


def test_a_missing_or_wrong_key_is_refused_on_every_protected_route(stack: Stack) -> None:
    scenario_id = active(stack)
    before = stack.get(f"/scenarios/{scenario_id}")
    for method, path in protected_routes():
        missing = send(stack, method, path, {"name": "x"}, key=None)
        assert_problem(missing, 401, "X-Api-Key")
        wrong = send(stack, method, path, {"name": "x"}, key="not-the-key")
        assert_problem(wrong, 401, "X-Api-Key")
        real = path.replace("x1", scenario_id, 1)
        assert_problem(send(stack, method, real, journey(), key="test-key "), 401, "X-Api-Key")
    assert stack.get(f"/scenarios/{scenario_id}") == before


def test_the_openapi_document_needs_no_key_and_a_wrong_method_is_a_405(stack: Stack) -> None:
    response = send(stack, "GET", "/openapi.json", key=None)
    assert response.status_code == 200
    assert "/scenarios" in response.json_body["paths"]
    assert_problem(send(stack, "PATCH", "/scenarios"), 405)
    assert_problem(send(stack, "GET", "/nowhere"), 404, "/nowhere")  # the gateway response


# --- scenarios: create, list, read, replace ------------------------------------------------


def test_create_saves_a_draft_with_its_problems(stack: Stack) -> None:
    draft = {"name": "Half done", "tags": ["x"], "entry": "missing"}
    created = stack.post("/scenarios", draft, status=201)
    assert set(created) == SCENARIO_KEYS | {"problems"}
    assert (created["status"], created["version"], created["webhook_secret"]) == ("draft", 0, None)
    assert created["tags"] == ["x"]
    assert created["scenario"] == draft
    assert TIMESTAMP.match(created["created_at"])
    assert [p["path"] for p in created["problems"]] == ["$.entry"]

    complete = stack.post("/scenarios", journey(), status=201)
    assert complete["problems"] == []
    assert complete["id"] != created["id"]


def test_create_refuses_a_bad_document_or_no_json(stack: Stack) -> None:
    for body, named in [
        ({}, "$.name"),
        ({"name": ""}, "$.name"),
        ({"name": 7}, "$.name"),
        ({"name": "x" * 201}, "$.name"),
        (["name"], "$"),
        ("a string", "$"),
    ]:
        assert_problem(send(stack, "POST", "/scenarios", body), 400, named)
    assert_problem(send(stack, "POST", "/scenarios", raw=b'{"name": '), 400, "JSON")
    assert_problem(send(stack, "POST", "/scenarios"), 400, "JSON body")


def test_list_filters_by_status_tag_and_text_with_profiles_in(stack: Stack) -> None:
    running = active(stack, name="Spring sale", tags=["promo"], description="Flowers")
    draft = stack.create(journey(name="Autumn news", tags=["news"]), activate=False)
    enter(stack, running, "ada", "bob")

    def listed(query: str = "") -> dict[str, Any]:
        return {s["id"]: s for s in stack.get(f"/scenarios{query}")["scenarios"]}

    everything = listed()
    assert set(everything) == {running, draft}
    assert set(everything[running]) == {
        "id",
        "name",
        "status",
        "version",
        "tags",
        "group",
        "updated_at",
        "profiles_in",
    }
    assert (everything[running]["status"], everything[running]["version"]) == ("active", 1)
    assert (everything[running]["profiles_in"], everything[draft]["profiles_in"]) == (2, 0)
    assert set(listed("?status=draft")) == {draft}
    assert set(listed("?status=active")) == {running}
    assert set(listed("?tag=news")) == {draft}
    assert set(listed("?q=spring")) == {running}
    assert set(listed("?q=flowers")) == {running}  # the description is searched too
    assert set(listed("?q=nothing-like-it")) == set()
    assert set(listed("?status=active&tag=news")) == set()


def test_list_pages_with_limit_and_next_token(stack: Stack) -> None:
    made = {stack.create(journey(name=f"S{n}"), activate=False) for n in range(5)}
    seen: list[str] = []
    token = None
    for _ in range(10):
        query = "?limit=2" + (f"&next_token={token}" if token else "")
        page = stack.get(f"/scenarios{query}")
        assert len(page["scenarios"]) <= 2
        seen.extend(s["id"] for s in page["scenarios"])
        token = page["next_token"]
        if token is None:
            break
    assert sorted(seen) == sorted(made)


def test_list_refuses_a_bad_limit_or_token(stack: Stack) -> None:
    for query, named in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("next_token=garbage", "next_token"),
        ("next_token=W10=", "next_token"),  # valid base64 of "[]"
        ("status=running", "status"),
    ]:
        assert_problem(send(stack, "GET", f"/scenarios?{query}"), 400, named)


def test_read_shows_the_scenario_and_refuses_unknown_or_too_long_ids(stack: Stack) -> None:
    scenario_id = active(stack)
    read = stack.get(f"/scenarios/{scenario_id}")
    assert set(read) == SCENARIO_KEYS
    assert (read["id"], read["status"], read["version"]) == (scenario_id, "active", 1)
    assert read["scenario"] == journey()
    assert_problem(send(stack, "GET", "/scenarios/nosuchscenario"), 404, "nosuchscenario")
    assert_problem(send(stack, "GET", f"/scenarios/{'x' * 201}"), 400, "scenario_id")


def test_replace_a_draft_keeps_version_zero(stack: Stack) -> None:
    scenario_id = stack.create(journey(), activate=False)
    incomplete = {"name": "Renamed", "entry": "missing"}
    replaced = stack.put(f"/scenarios/{scenario_id}", incomplete)
    assert (replaced["name"], replaced["version"], replaced["status"]) == (
        "Renamed",
        0,
        "draft",
    )
    assert [p["path"] for p in replaced["problems"]] == ["$.entry"]  # a draft may be incomplete
    assert stack.get(f"/scenarios/{scenario_id}")["scenario"] == incomplete


def test_replace_an_active_scenario_makes_a_new_version(stack: Stack) -> None:
    scenario_id = active(stack)
    edited = journey(name="Edited")
    replaced = stack.put(f"/scenarios/{scenario_id}", edited)
    assert (replaced["version"], replaced["status"], replaced["problems"]) == (2, "active", [])
    versions = stack.get(f"/scenarios/{scenario_id}/versions")
    assert [v["version"] for v in versions["versions"]] == [1, 2]
    assert all(TIMESTAMP.match(v["created_at"]) for v in versions["versions"])
    assert versions["next_token"] is None
    page = stack.get(f"/scenarios/{scenario_id}/versions?limit=1")
    assert [v["version"] for v in page["versions"]] == [1]
    rest = stack.get(f"/scenarios/{scenario_id}/versions?limit=1&next_token={page['next_token']}")
    assert [v["version"] for v in rest["versions"]] == [2]


def test_replace_an_active_scenario_with_an_invalid_one_is_a_422(stack: Stack) -> None:
    scenario_id = active(stack)
    broken = journey()
    broken["nodes"]["wait"]["next"] = "nowhere"
    document = assert_problem(
        send(stack, "PUT", f"/scenarios/{scenario_id}", broken), 422, "$.nodes.wait.next"
    )
    assert any(p["path"] == "$.nodes.wait.next" for p in document["problems"])
    read = stack.get(f"/scenarios/{scenario_id}")
    assert (read["version"], read["scenario"]) == (1, journey())


def test_replace_refuses_unknown_trashed_and_nameless(stack: Stack) -> None:
    assert_problem(send(stack, "PUT", "/scenarios/nosuch", journey()), 404, "nosuch")
    scenario_id = stack.create(journey(), activate=False)
    assert_problem(send(stack, "PUT", f"/scenarios/{scenario_id}", {"nodes": {}}), 400, "$.name")
    stack.delete(f"/scenarios/{scenario_id}")
    assert_problem(send(stack, "PUT", f"/scenarios/{scenario_id}", journey()), 409, "trashed")


# --- lifecycle --------------------------------------------------------------------------------


def test_activate_returns_the_webhook_secret_that_get_shows(stack: Stack) -> None:
    scenario_id = stack.create(journey(), activate=False)
    answer = stack.post(f"/scenarios/{scenario_id}/activate")
    assert set(answer) == {"status", "version", "webhook_secret"}
    assert (answer["status"], answer["version"]) == ("active", 1)
    assert SECRET.match(answer["webhook_secret"])
    assert stack.get(f"/scenarios/{scenario_id}")["webhook_secret"] == answer["webhook_secret"]
    again = stack.post(f"/scenarios/{scenario_id}/activate")  # already active: as it is
    assert again == answer


def test_activate_lists_every_problem_with_its_json_path(stack: Stack) -> None:
    document = journey()
    document["nodes"]["wait"] = {"type": "teleport", "next": "bye"}
    document["nodes"]["bye"]["next"] = "nowhere"
    document["triggers"][0]["next"] = "missing"
    scenario_id = stack.create(document, activate=False)
    answer = assert_problem(send(stack, "POST", f"/scenarios/{scenario_id}/activate"), 422, "$.")
    paths = {p["path"] for p in answer["problems"]}
    assert {"$.nodes.wait", "$.nodes.bye.next", "$.triggers[0].next"} <= paths, paths
    assert "more problems" in answer["detail"]
    read = stack.get(f"/scenarios/{scenario_id}")
    assert (read["status"], read["version"], read["webhook_secret"]) == ("draft", 0, None)


def test_activate_refuses_an_event_type_too_long_to_index_and_writes_nothing(
    stack: Stack,
) -> None:
    document = journey()
    document["triggers"][0]["event"] = "e" * 201  # `POST /events` takes 200 at most
    scenario_id = stack.create(document, activate=False)
    answer = assert_problem(
        send(stack, "POST", f"/scenarios/{scenario_id}/activate"), 422, "$.triggers[0].event"
    )
    assert answer["problems"] == [
        {"path": "$.triggers[0].event", "message": answer["problems"][0]["message"]}
    ]
    assert stack.get(f"/scenarios/{scenario_id}")["status"] == "draft"
    assert stack.get(f"/scenarios/{scenario_id}/versions")["versions"] == []


def test_a_template_too_large_whatever_the_data_is_a_problem_of_the_draft(stack: Stack) -> None:
    document = journey()
    document["nodes"]["hello"]["template"]["body"] = "{{ 'x' * 10**8 }}"
    created = stack.post("/scenarios", document, status=201)
    assert [p["path"] for p in created["problems"]] == ["$.nodes.hello.template.body"]
    assert "would build more than" in created["problems"][0]["message"]
    answer = assert_problem(
        send(stack, "POST", f"/scenarios/{created['id']}/activate"),
        422,
        "$.nodes.hello.template.body",
    )
    assert len(answer["problems"]) == 1
    assert stack.get(f"/scenarios/{created['id']}")["status"] == "draft"


def test_activate_refuses_unknown_and_trashed(stack: Stack) -> None:
    assert_problem(send(stack, "POST", "/scenarios/nosuch/activate"), 404, "nosuch")
    scenario_id = stack.create(journey(), activate=False)
    stack.delete(f"/scenarios/{scenario_id}")
    assert_problem(send(stack, "POST", f"/scenarios/{scenario_id}/activate"), 409, "trashed")


def test_deactivate_keeping_profiles_freezes_them(stack: Stack) -> None:
    scenario_id = active(stack, keep_profiles_on_stop=False)
    enter(stack, scenario_id, "ada")
    stack.drain()
    stopped = stack.post(f"/scenarios/{scenario_id}/deactivate", {"keep_profiles": True})
    assert set(stopped) == SCENARIO_KEYS
    assert stopped["status"] == "stopped"
    stack.drain()
    assert stack.instance("ada", scenario_id).status == "active"
    assert stack.at_node(scenario_id, "wait")[0]["profile_id"] == "ada"


def test_deactivate_without_keeping_profiles_lets_them_exit(stack: Stack) -> None:
    scenario_id = active(stack, keep_profiles_on_stop=True)
    enter(stack, scenario_id, "ada")
    stack.drain()
    stack.post(f"/scenarios/{scenario_id}/deactivate", {"keep_profiles": False})
    stack.drain()
    ended = stack.instance("ada", scenario_id)
    assert (ended.status, ended.reason) == ("exited", "stopped")


def test_deactivate_without_a_body_follows_the_setting(stack: Stack) -> None:
    scenario_id = active(stack, keep_profiles_on_stop=True)
    enter(stack, scenario_id, "ada")
    stack.post(f"/scenarios/{scenario_id}/deactivate")
    stack.drain()
    assert stack.instance("ada", scenario_id).status == "active"


def test_deactivate_refuses_bad_body_unknown_and_draft(stack: Stack) -> None:
    scenario_id = active(stack)
    path = f"/scenarios/{scenario_id}/deactivate"
    for wrong in ("perhaps", "yes", 1):
        response = send(stack, "POST", path, {"keep_profiles": wrong})
        assert_problem(response, 400, "$.keep_profiles")
    assert_problem(send(stack, "POST", path, {"keep": True}), 400, "$.keep")
    assert stack.get(f"/scenarios/{scenario_id}")["status"] == "active"
    assert_problem(send(stack, "POST", "/scenarios/nosuch/deactivate"), 404, "nosuch")
    draft = stack.create(journey(), activate=False)
    assert_problem(send(stack, "POST", f"/scenarios/{draft}/deactivate"), 409, "draft")


def test_clone_copies_as_a_new_draft(stack: Stack) -> None:
    scenario_id = active(stack)
    clone = stack.post(f"/scenarios/{scenario_id}/clone", status=201)
    assert set(clone) == SCENARIO_KEYS | {"problems"}
    assert clone["id"] != scenario_id
    assert (clone["status"], clone["version"], clone["name"]) == (
        "draft",
        0,
        "Test scenario (copy)",
    )
    assert clone["scenario"]["nodes"] == journey()["nodes"]
    assert clone["problems"] == []
    assert_problem(send(stack, "POST", "/scenarios/nosuch/clone"), 404, "nosuch")


def test_trash_and_restore(stack: Stack) -> None:
    scenario_id = active(stack)
    path = f"/scenarios/{scenario_id}"
    assert_problem(send(stack, "DELETE", path), 409, "deactivate")
    assert_problem(send(stack, "POST", f"{path}/restore"), 409, "not trashed")
    stack.post(f"{path}/deactivate")
    trashed = stack.delete(path)
    assert set(trashed) == SCENARIO_KEYS
    assert trashed["status"] == "trashed"
    assert_problem(send(stack, "DELETE", path), 409, "trashed")
    restored = stack.post(f"{path}/restore")
    assert restored["status"] == "stopped"  # where it was before
    draft = stack.create(journey(), activate=False)
    stack.delete(f"/scenarios/{draft}")
    assert stack.post(f"/scenarios/{draft}/restore")["status"] == "draft"
    assert_problem(send(stack, "DELETE", "/scenarios/nosuch"), 404, "nosuch")
    assert_problem(send(stack, "POST", "/scenarios/nosuch/restore"), 404, "nosuch")


def test_clear_removes_every_profile_in_it(stack: Stack) -> None:
    scenario_id = active(stack)
    enter(stack, scenario_id, "ada", "bob")
    assert stack.post(f"/scenarios/{scenario_id}/clear") == {"removed": 2}
    stack.drain()
    assert [i.status for i in stack.instances("ada") + stack.instances("bob")] == ["removed"] * 2
    assert stack.post(f"/scenarios/{scenario_id}/clear") == {"removed": 0}
    assert_problem(send(stack, "POST", "/scenarios/nosuch/clear"), 404, "nosuch")


def test_versions_of_an_unknown_scenario_is_a_404(stack: Stack) -> None:
    assert_problem(send(stack, "GET", "/scenarios/nosuch/versions"), 404, "nosuch")


def test_next_runs_of_a_schedule_trigger(stack: Stack) -> None:
    scenario_id = stack.create(journey(NIGHTLY))
    path = f"/scenarios/{scenario_id}/triggers"
    answer = stack.get(f"{path}/nightly/next-runs?count=3")
    assert answer == {
        "trigger_id": "nightly",
        "runs": ["2026-06-10T19:30:00Z", "2026-06-11T19:30:00Z", "2026-06-12T19:30:00Z"],
    }
    assert len(stack.get(f"{path}/nightly/next-runs")["runs"]) == 12
    assert_problem(send(stack, "GET", f"{path}/start/next-runs"), 400, "start", "schedule")
    assert_problem(send(stack, "GET", f"{path}/nosuch/next-runs"), 404, "nosuch")
    assert_problem(send(stack, "GET", f"{path}/nightly/next-runs?count=0"), 400, "count")
    assert_problem(send(stack, "GET", f"{path}/nightly/next-runs?count=x"), 400, "count")
    assert_problem(send(stack, "GET", "/scenarios/nosuch/triggers/t/next-runs"), 404, "nosuch")


def test_next_runs_of_a_draft_that_does_not_compile_is_a_4xx(stack: Stack) -> None:
    draft = stack.create({"name": "Broken", "triggers": [{"id": "t", "type": "x"}]}, False)
    response = send(stack, "GET", f"/scenarios/{draft}/triggers/t/next-runs")
    assert_problem(response, 422, "$.")


# --- simulate -------------------------------------------------------------------------------


def test_simulate_a_document(stack: Stack) -> None:
    answer = stack.post(
        "/scenarios/simulate",
        {"scenario": journey(), "profile": person("ada"), "until": "P2D"},
    )
    assert {"path", "sends", "status", "reason"} <= set(answer)
    assert [s["node"] for s in answer["sends"]] == ["hello", "bye"]
    assert answer["sends"][0]["to"] == "ada@example.com"
    assert answer["sends"][0]["subject"] == "Hello"
    assert [step["node"] for step in answer["path"]] == ["hello", "wait", "bye"]
    assert answer["status"] == "completed"
    assert all(TIMESTAMP.match(step["at"]) for step in answer["path"])


def test_simulate_takes_the_profile_as_put_profiles_does_or_flat(stack: Stack) -> None:
    as_put = {"profile_id": "ada", "fields": person("ada")}
    flat = {"profile_id": "ada", **person("ada")}
    answers = [
        stack.post("/scenarios/simulate", {"scenario": journey(), "profile": p, "until": "P2D"})
        for p in (as_put, flat)
    ]
    for answer in answers:
        assert answer["skipped"] == []
        assert [(s["node"], s["to"]) for s in answer["sends"]] == [
            ("hello", "ada@example.com"),
            ("bye", "ada@example.com"),
        ]
    assert answers[0] == answers[1]


def test_simulate_refuses_what_cannot_be_a_profile(stack: Stack) -> None:
    for profile, named in [
        ({"profile_id": "ada", "fields": ["email"]}, "$.profile.fields"),
        ({"profile_id": "ada", "fields": "ada@example.com"}, "$.profile.fields"),
        ({"profile_id": 5, "fields": {}}, "$.profile.profile_id"),
        ({"profile_id": 5, "email": "ada@example.com"}, "$.profile.profile_id"),
        ({"profile_id": "", "email": "ada@example.com"}, "$.profile.profile_id"),
        ({"profile_id": "ada", "fields": {}, "email": "ada@example.com"}, "$.profile.email"),
        ("ada", "$.profile"),
    ]:
        body = {"scenario": journey(), "profile": profile}
        assert_problem(send(stack, "POST", "/scenarios/simulate", body), 400, named)


def test_simulate_a_stored_scenario(stack: Stack) -> None:
    scenario_id = stack.create(journey(), activate=False)
    answer = stack.post(
        "/scenarios/simulate",
        {"scenario_id": scenario_id, "profile": person("ada"), "until": "PT1H"},
    )
    assert [s["node"] for s in answer["sends"]] == ["hello"]
    assert answer["status"] == "active"
    assert stack.sent() == []  # nothing is sent


def test_simulate_holds_out_as_the_stack_would(stack: Stack) -> None:
    scenario_id = stack.create(journey())
    simulation = {"scenario_id": scenario_id, "profile": person("ada"), "until": "PT1H"}
    assert stack.post("/scenarios/simulate", simulation)["sends"]  # in the treatment
    stack.put("/settings/control", {"percent": 99.99})  # all but one in 10,000 held out
    held = stack.post("/scenarios/simulate", simulation)
    assert held["sends"] == []
    assert [step["outcome"] for step in held["path"]][:1] == ["control"]


def test_simulate_refuses_an_invalid_scenario_under_scenario_and_bad_requests(
    stack: Stack,
) -> None:
    document = journey()
    document["nodes"]["wait"] = {"type": "teleport"}
    answer = assert_problem(
        send(stack, "POST", "/scenarios/simulate", {"scenario": document}),
        422,
        "$.scenario.nodes.wait",
    )
    assert all(p["path"].startswith("$.scenario") for p in answer["problems"])
    for body, status, named in [
        ({}, 400, "scenario_id"),
        ({"scenario": journey(), "scenario_id": "x"}, 400, "scenario_id"),
        ({"scenario_id": "nosuch"}, 404, "nosuch"),
        ({"scenario": "not a document"}, 400, "$.scenario"),
        ({"scenario": journey(), "until": "soon"}, 400, "$.until"),
        ({"scenario": journey(), "events": [{"at": "PT1H"}]}, 400, "$.events[0].type"),
        ({"scenario": journey(), "profile": []}, 400, "$.profile"),
    ]:
        assert_problem(send(stack, "POST", "/scenarios/simulate", body), status, named)


# --- putting profiles in and taking them out ---------------------------------------------


def test_add_a_profile_by_the_default_capture(stack: Stack) -> None:
    scenario_id = active(stack)
    stack.upsert("ada", person("ada"))
    answer = stack.post(
        f"/scenarios/{scenario_id}/profiles",
        {"profile_id": "ada", "data": {"a": 1}},
        status=201,
    )
    assert set(answer) == {"instance_id", "profile_id"}
    assert answer["profile_id"] == "ada"
    stack.drain()
    assert [m["node"] for m in stack.sent(profile_id="ada")] == ["hello"]
    again = send(stack, "POST", f"/scenarios/{scenario_id}/profiles", {"profile_id": "ada"})
    assert_problem(again, 409, "ada")  # re-entry `when_finished`: it is still in
    assert again.json_body["reason"]


def test_add_a_profile_refuses_bad_body_unknown_and_inactive(stack: Stack) -> None:
    scenario_id = active(stack)
    path = f"/scenarios/{scenario_id}/profiles"
    assert_problem(send(stack, "POST", path, {}), 400, "$.profile_id")
    assert_problem(send(stack, "POST", path, {"profile_id": 5}), 400, "$.profile_id")
    assert_problem(send(stack, "POST", path, {"profile_id": "a", "data": []}), 400, "$.data")
    assert_problem(send(stack, "POST", path, {"profile_id": "a", "x": 1}), 400, "$.x")
    assert_problem(send(stack, "POST", "/scenarios/nosuch/profiles", {"profile_id": "a"}), 404)
    unknown = send(stack, "POST", path, {"profile_id": "ghost"})
    assert_problem(unknown, 404, "$.profile_id", "ghost")
    assert stack.instances("ghost") == []
    draft = stack.create(journey(), activate=False)
    response = send(stack, "POST", f"/scenarios/{draft}/profiles", {"profile_id": "a"})
    assert_problem(response, 409, "draft")


def test_send_segment_to_a_stored_segment_and_to_a_condition(stack: Stack) -> None:
    scenario_id = active(stack, reentry="parallel")
    for number, name in enumerate(("ada", "bob", "cy")):
        stack.upsert(name, person(name, number, vip=name != "cy"))
    stack.put(
        "/segments/vips",
        {
            "profile_db": "customers",
            "where": {"field": "profile.vip", "op": "eq", "value": True},
        },
    )
    answer = stack.post(f"/scenarios/{scenario_id}/send-segment", {"segment": "vips"}, status=202)
    assert set(answer) == {"run_id"}
    stack.drain()
    assert sorted(m["profile_id"] for m in stack.sent()) == ["ada", "bob"]
    stack.advance("PT1M")  # another run
    condition = {"field": "profile.first_name", "op": "eq", "value": "Cy"}
    stack.post(f"/scenarios/{scenario_id}/send-segment", {"segment": condition}, status=202)
    stack.drain()
    assert sorted(m["profile_id"] for m in stack.sent(node="hello")) == ["ada", "bob", "cy"]


def test_send_segment_refuses_bad_body_unknown_ids_and_inactive(stack: Stack) -> None:
    scenario_id = active(stack)
    path = f"/scenarios/{scenario_id}/send-segment"
    assert_problem(send(stack, "POST", path, {}), 400, "$.segment")
    assert_problem(send(stack, "POST", path, {"segment": 3}), 400, "$.segment")
    assert_problem(send(stack, "POST", path, {"segment": {"field": "x"}}), 400, "$.segment")
    assert_problem(send(stack, "POST", path, {"segment": "nosuchsegment"}), 404, "nosuchsegment")
    assert_problem(send(stack, "POST", "/scenarios/nosuch/send-segment", {"segment": "s"}), 404)
    draft = stack.create(journey(), activate=False)
    assert_problem(send(stack, "POST", f"/scenarios/{draft}/send-segment", {"segment": "s"}), 409)


def test_remove_one_profile(stack: Stack) -> None:
    scenario_id = active(stack)
    enter(stack, scenario_id, "ada", "bob")
    assert stack.delete(f"/scenarios/{scenario_id}/profiles/ada") == {"removed": 1}
    assert stack.delete(f"/scenarios/{scenario_id}/profiles/ada") == {"removed": 0}
    assert stack.instance("ada", scenario_id).status == "removed"
    assert stack.instance("bob", scenario_id).status == "active"
    assert_problem(send(stack, "DELETE", "/scenarios/nosuch/profiles/ada"), 404, "nosuch")


def test_profiles_at_a_node_listed_and_removed(stack: Stack) -> None:
    scenario_id = active(stack)
    enter(stack, scenario_id, "ada", "bob")
    stack.drain()
    at_wait = stack.get(f"/scenarios/{scenario_id}/nodes/wait/profiles")
    assert at_wait["next_token"] is None
    assert sorted(p["profile_id"] for p in at_wait["profiles"]) == ["ada", "bob"]
    first = at_wait["profiles"][0]
    assert set(first) == {"profile_id", "instance_id", "entered_at", "wake_at"}
    assert (first["entered_at"], first["wake_at"]) == (
        "2026-06-10T10:00:00Z",
        "2026-06-11T10:00:00Z",
    )
    page = stack.get(f"/scenarios/{scenario_id}/nodes/wait/profiles?limit=1")
    assert len(page["profiles"]) == 1
    assert page["next_token"]
    assert stack.get(f"/scenarios/{scenario_id}/nodes/bye/profiles")["profiles"] == []

    removed = stack.delete(f"/scenarios/{scenario_id}/nodes/wait/profiles", status=202)
    assert removed == {"removed": 2}
    stack.drain()
    assert stack.at_node(scenario_id, "wait") == []
    assert [i.reason for i in stack.instances("ada") + stack.instances("bob")] == ["removed"] * 2
    assert_problem(send(stack, "GET", "/scenarios/nosuch/nodes/wait/profiles"), 404, "nosuch")
    assert_problem(send(stack, "DELETE", "/scenarios/nosuch/nodes/wait/profiles"), 404, "nosuch")
    bad_token = f"/scenarios/{scenario_id}/nodes/wait/profiles?next_token=%%%"
    assert_problem(send(stack, "GET", bad_token), 400, "next_token")


# --- analytics -------------------------------------------------------------------------------


def test_stats_by_version_and_summed(stack: Stack) -> None:
    scenario_id = active(stack)
    enter(stack, scenario_id, "ada")
    stack.drain()
    stack.put(f"/scenarios/{scenario_id}", journey(name="Second version"))
    enter(stack, scenario_id, "bob")
    stack.drain()

    summed = stack.stats(scenario_id)
    assert set(summed) == {
        "entered",
        "completed",
        "exited",
        "removed",
        "active",
        "errors",
        "nodes",
        "channels",
        "revenue",
        "conversions",
        "conversion_rate",
        "treatment",
        "holdout",
        "control",
        "branches",
        "experiments",
    }
    assert (summed["entered"], summed["active"]) == (2, 2)
    assert summed["treatment"] == {"entered": 2, "conversions": 0, "conversion_rate": 0.0}
    sent = {"sent": 2, "delivered": 0, "opened": 0, "clicked": 0}
    sent.update(bounced=0, unsubscribed=0, failed=0, skipped=0)
    assert summed["nodes"]["hello"] == {
        "entered": 2,
        "exited": 2,
        "current": 0,
        "channels": {"email": sent},
    }
    assert summed["nodes"]["wait"] == {"entered": 2, "exited": 0, "current": 2}
    assert isinstance(summed["channels"], dict)
    assert isinstance(summed["revenue"], int | float)
    first = stack.get(f"/scenarios/{scenario_id}/stats?version=1")
    second = stack.get(f"/scenarios/{scenario_id}/stats?version=2")
    assert (first["entered"], second["entered"]) == (1, 1)
    dated = stack.get(f"/scenarios/{scenario_id}/stats?from=2026-06-10&to=2026-06-10")
    assert dated["entered"] == 2
    before = stack.get(f"/scenarios/{scenario_id}/stats?to=2026-06-09")
    assert before["entered"] == 0


def test_stats_count_sends_by_channel_and_revenue(stack: Stack) -> None:
    scenario_id = active(stack)
    enter(stack, scenario_id, "ada")
    stack.drain()
    (hello,) = stack.sent()
    stack.post("/feedback", {"message_id": hello["message_id"], "status": "opened"})
    stack.event("order.created", "ada", data={"total": 25.5})
    stack.drain()
    summed = stack.stats(scenario_id)
    assert summed["channels"]["email"] == {
        "sent": 1,
        "delivered": 0,
        "opened": 1,
        "clicked": 0,
        "bounced": 0,
        "unsubscribed": 0,
        "failed": 0,
        "skipped": 0,
    }
    assert summed["revenue"] == 25.5


def test_stats_refuse_bad_parameters(stack: Stack) -> None:
    scenario_id = stack.create(journey(), activate=False)
    for query, named in [
        ("version=two", "version"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
    ]:
        assert_problem(send(stack, "GET", f"/scenarios/{scenario_id}/stats?{query}"), 400, named)
    assert_problem(send(stack, "GET", "/scenarios/nosuch/stats"), 404, "nosuch")


def test_a_profiles_journeys(stack: Stack) -> None:
    scenario_id = active(stack)
    enter(stack, scenario_id, "ada")
    stack.drain()
    stack.delete(f"/scenarios/{scenario_id}/profiles/ada")
    stack.advance("PT1M")
    enter(stack, scenario_id, "ada")
    stack.drain()
    answer = stack.get("/profiles/customers/ada/journeys")
    assert answer["next_token"] is None
    newest, oldest = answer["journeys"]
    assert set(newest) == {
        "instance_id",
        "scenario_id",
        "version",
        "status",
        "node",
        "exit_node",
        "reason",
        "entered_at",
        "ended_at",
        "path",
    }
    assert (newest["scenario_id"], newest["version"], newest["status"]) == (
        scenario_id,
        1,
        "active",
    )
    assert (newest["node"], newest["exit_node"]) == ("wait", None)
    assert (oldest["status"], oldest["reason"], oldest["exit_node"]) == (
        "removed",
        "removed",
        "wait",
    )
    assert [step["node"] for step in oldest["path"]] == ["hello", "wait"]
    page = stack.get("/profiles/customers/ada/journeys?limit=1")
    assert len(page["journeys"]) == 1
    rest = stack.get(f"/profiles/customers/ada/journeys?limit=1&next_token={page['next_token']}")
    assert rest["journeys"] == [oldest]
    assert stack.get("/profiles/customers/nobody/journeys")["journeys"] == []
    assert_problem(send(stack, "GET", "/profiles/customers/ada/journeys?next_token=x"), 400)


# --- events ----------------------------------------------------------------------------------


def test_one_event_is_accepted_and_captures(stack: Stack) -> None:
    scenario_id = active(stack)
    stack.upsert("ada", person("ada"))
    answer = stack.event("signup", "ada", event_id="e-1", data={"plan": "gold"})
    assert answer == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert stack.event("signup", "ada", event_id="e-1") == {
        "accepted": 0,
        "duplicates": 1,
        "rejected": [],
    }
    stack.drain()
    assert len(stack.instances("ada", scenario_id)) == 1


def test_a_batch_rejects_bad_items_and_counts_duplicates(stack: Stack) -> None:
    scenario_id = active(stack, reentry="parallel")
    stack.upsert("ada", person("ada"))
    good = {"type": "signup", "profile_db": "customers", "profile_id": "ada"}
    batch = [
        {**good, "id": "b-1"},
        {**good, "id": "b-2", "occurred_at": "yesterday"},
        {**good, "id": "b-1"},  # the same id again
        {"type": "signup", "profile_db": "customers"},
        {**good, "id": "b-3", "extra": 1},
        "not an event",
        {**good, "id": "b-4"},
    ]
    answer = stack.post("/events", {"events": batch}, status=202)
    assert (answer["accepted"], answer["duplicates"]) == (2, 1)
    rejected = {r["index"]: r["detail"] for r in answer["rejected"]}
    assert set(rejected) == {1, 3, 4, 5}
    assert "occurred_at" in rejected[1]
    assert "profile_id" in rejected[3]
    assert "extra" in rejected[4]
    stack.drain()
    assert len(stack.instances("ada", scenario_id)) == 2
    again = stack.post("/events", {"events": [{**good, "id": "b-4"}]}, status=202)
    assert again == {"accepted": 0, "duplicates": 1, "rejected": []}


def test_a_batch_of_500_is_accepted_and_501_or_a_non_event_refused(stack: Stack) -> None:
    event = {"type": "page.visited", "profile_db": "customers", "profile_id": "ada"}
    answer = stack.post("/events", {"events": [event] * 500}, status=202)
    assert answer["accepted"] == 500
    assert_problem(
        send(stack, "POST", "/events", {"events": [event] * 501}), 400, "$.events", "500"
    )
    for body, named in [
        ({"events": "many"}, "$.events"),
        ({"events": {"type": "x"}}, "$.events"),
        ([], "$"),
        (42, "$"),
        ({"type": "signup"}, "profile_id"),
    ]:
        response = send(stack, "POST", "/events", body)
        assert_problem(response, 400, named)


# --- profiles --------------------------------------------------------------------------------


def test_upsert_merges_fields_null_clears_one_and_bad_bodies_are_refused(stack: Stack) -> None:
    created = stack.put("/profiles/customers/ada", {"fields": {"a": 1, "b": "x", "c": [1]}})
    assert set(created) == {"profile_db", "profile_id", "fields", "created_at", "updated_at"}
    assert (created["profile_db"], created["profile_id"]) == ("customers", "ada")
    assert created["fields"] == {"a": 1, "b": "x", "c": [1]}
    stack.advance("PT1M")
    merged = stack.put("/profiles/customers/ada", {"fields": {"a": 2, "b": None}, "source": "form"})
    assert merged["fields"] == {"a": 2, "c": [1]}
    assert (merged["created_at"], merged["updated_at"]) == (
        "2026-06-10T10:00:00Z",
        "2026-06-10T10:01:00Z",
    )
    assert stack.get("/profiles/customers/ada") == merged
    assert_problem(send(stack, "GET", "/profiles/customers/nobody"), 404, "nobody")
    assert_problem(send(stack, "GET", "/profiles/elsewhere/ada"), 404, "elsewhere")
    for body, named in [
        ({}, "$.fields"),
        ({"fields": []}, "$.fields"),
        ({"fields": {}, "source": "fax"}, "$.source"),
        ({"fields": {}, "extra": 1}, "$.extra"),
        ({"fields": {"n": 1e200}}, "$.fields.n"),
    ]:
        assert_problem(send(stack, "PUT", "/profiles/customers/ada", body), 400, named)


def test_a_profile_may_not_outgrow_its_item(stack: Stack) -> None:
    half = "x" * 200_000
    stack.upsert("ada", {"a": half})
    response = send(stack, "PUT", "/profiles/customers/ada", {"fields": {"b": half}})
    assert_problem(response, 400, "$.fields", "bytes")
    imported = {
        "profiles": [
            {"profile_id": "bob", "fields": {}},
            {"profile_id": "ada", "fields": {"c": half}},
        ]
    }
    response = send(stack, "POST", "/profiles/customers/import", imported)
    assert_problem(response, 400, "$.profiles[1].fields")
    assert set(stack.fields("ada")) == {"a"}
    assert_problem(send(stack, "GET", "/profiles/customers/bob"), 404)  # nothing imported
    stack.upsert("ada", {"a": None, "b": half})  # replacing one big field by another fits


def test_import_up_to_a_thousand_and_refuse_bad_bodies(stack: Stack) -> None:
    stack.upsert("p0", {"a": 0})
    rows = [{"profile_id": f"p{n}", "fields": {"n": n}} for n in range(1000)]
    answer = stack.post("/profiles/customers/import", {"profiles": rows})
    assert answer == {"imported": 1000, "created": 999}
    assert stack.fields("p0") == {"a": 0, "n": 0}
    assert stack.fields("p999") == {"n": 999}
    too_many = {"profiles": [*rows, {"profile_id": "p1000", "fields": {}}]}
    assert_problem(send(stack, "POST", "/profiles/customers/import", too_many), 400, "$.profiles")
    assert_problem(send(stack, "GET", "/profiles/customers/p1000"), 404)
    for body, named in [
        ({"profiles": []}, "$.profiles"),
        ({"profiles": [{"profile_id": "a"}]}, "$.profiles[0].fields"),
        ({"profiles": [{"profile_id": "", "fields": {}}]}, "$.profiles[0].profile_id"),
    ]:
        assert_problem(send(stack, "POST", "/profiles/customers/import", body), 400, named)


def test_an_import_naming_a_profile_twice_merges_its_entries_in_order(stack: Stack) -> None:
    stack.upsert("ada", {"city": "Paris", "vip": True})
    rows = [
        {"profile_id": "ada", "fields": {"city": "Lyon", "plan": "free"}},
        {"profile_id": "bob", "fields": {"n": 1}},
        {"profile_id": "ada", "fields": {"plan": "pro", "vip": None}},
        {"profile_id": "bob", "fields": {"n": 2}},
    ]
    answer = stack.post("/profiles/customers/import", {"profiles": rows})
    assert answer == {"imported": 2, "created": 1}
    assert stack.fields("ada") == {"city": "Lyon", "plan": "pro"}
    assert stack.fields("bob") == {"n": 2}


def test_erase_a_profile_with_its_journeys_and_history(stack: Stack) -> None:
    scenario_id = active(stack)
    enter(stack, scenario_id, "ada", "bob")
    stack.event("page.visited", "ada")
    stack.drain()
    partition = store.profile_partition("customers", "ada")
    assert len(list(store.profiles.query("pk = :pk", values={":pk": partition}))) > 1

    response = send(stack, "DELETE", "/profiles/customers/ada")
    assert (response.status_code, response.body) == (204, b"")
    assert list(store.profiles.query("pk = :pk", values={":pk": partition})) == []
    assert stack.instances("ada") == []
    assert not [m for m in store.messages.scan() if m.get("profile_id") == "ada"]
    assert stack.get("/profiles/customers/ada/journeys")["journeys"] == []
    assert_problem(send(stack, "GET", "/profiles/customers/ada"), 404, "ada")
    assert_problem(send(stack, "DELETE", "/profiles/customers/ada"), 404, "ada")
    assert stack.stats(scenario_id)["active"] == 1  # bob is still in
    stack.advance("P1D")
    assert {m["profile_id"] for m in stack.sent()} == {"bob"}


# --- segments and promo pools ----------------------------------------------------------------


def test_segments_defined_read_counted_and_bad_ones_refused(stack: Stack) -> None:
    where = {"field": "profile.vip", "op": "eq", "value": True}
    defined = stack.put("/segments/vips", {"profile_db": "customers", "where": where})
    assert defined == {"id": "vips", "profile_db": "customers", "where": where}
    assert stack.get("/segments/vips") == defined
    stack.upsert("ada", {"vip": True})
    stack.upsert("bob", {"vip": False})
    stack.upsert("cy", {"vip": True}, db="other")
    assert stack.get("/segments/vips/count") == {"id": "vips", "members": 1}
    default = stack.put("/segments/all", {"where": {"field": "profile.vip", "op": "exists"}})
    assert default["profile_db"] == "default"
    assert_problem(send(stack, "GET", "/segments/nosuch"), 404, "nosuch")
    assert_problem(send(stack, "GET", "/segments/nosuch/count"), 404, "nosuch")
    for body, named in [
        ({}, "$.where"),
        ({"where": {"field": "profile.x", "op": "almost", "value": 1}}, "$.where"),
        ({"where": {"teleport": 1}}, "$.where"),
        ({"where": {"field": "profile.x", "op": "exists"}, "profile_db": ""}, "$.profile_db"),
    ]:
        assert_problem(send(stack, "PUT", "/segments/s1", body), 400, named)


def test_promo_pools_add_codes_and_count_what_is_left(stack: Stack) -> None:
    assert_problem(send(stack, "GET", "/promo-pools/SPRING"), 404, "SPRING")
    added = stack.put("/promo-pools/SPRING", {"codes": ["A", "B", "C"]})
    assert added == {"pool": "SPRING", "added": 3, "left": 3}
    again = stack.put("/promo-pools/SPRING", {"codes": ["C", "D"]})
    assert again == {"pool": "SPRING", "added": 1, "left": 4}  # C again is no new code
    assert stack.get("/promo-pools/SPRING") == {"pool": "SPRING", "left": 4}
    for body, named in [
        ({}, "$.codes"),
        ({"codes": []}, "$.codes"),
        ({"codes": [1]}, "$.codes[0]"),
    ]:
        assert_problem(send(stack, "PUT", "/promo-pools/SPRING", body), 400, named)


# --- hooks -----------------------------------------------------------------------------------


def test_a_signed_hook_call_captures_and_needs_no_key(stack: Stack) -> None:
    scenario_id = active(stack)
    secret = stack.get(f"/scenarios/{scenario_id}")["webhook_secret"]
    call = {"profile_id": "ada", "profile": person("ada"), "data": {"plan": "gold"}}
    response = signed_hook(stack, scenario_id, "crm", call, secret)
    assert response.status_code == 202, response.body
    answer = response.json_body
    assert (answer["captured"], answer["reason"]) == (True, None)
    assert answer["instance_id"] == stack.instance("ada", scenario_id).instance_id
    assert stack.fields("ada")["email"] == "ada@example.com"  # upserted
    stack.drain()
    assert [m["node"] for m in stack.sent(profile_id="ada")] == ["hello"]


def test_an_idempotency_key_replays_the_first_answer(stack: Stack) -> None:
    scenario_id = active(stack, reentry="parallel")
    secret = stack.get(f"/scenarios/{scenario_id}")["webhook_secret"]
    call = {"profile_id": "ada", "profile": person("ada")}
    key = {"Idempotency-Key": "order-1"}
    first = signed_hook(stack, scenario_id, "crm", call, secret, headers=key).json_body
    again = signed_hook(stack, scenario_id, "crm", call, secret, headers=key)
    assert again.status_code == 202
    assert again.json_body == {**first, "replayed": True}
    other_key = {"Idempotency-Key": "2"}
    same_bytes = signed_hook(stack, scenario_id, "crm", call, secret, headers=other_key)
    assert_problem(same_bytes, 409, "X-Signature")  # the key is not signed: a replay
    stamp = epoch(stack.now) - 1
    other = signed_hook(stack, scenario_id, "crm", call, secret, timestamp=stamp, headers=other_key)
    assert other.json_body["instance_id"] != first["instance_id"]
    assert len(stack.instances("ada", scenario_id)) == 2


def test_a_bad_or_stale_signature_is_a_401_and_changes_nothing(stack: Stack) -> None:
    scenario_id = active(stack)
    secret = stack.get(f"/scenarios/{scenario_id}")["webhook_secret"]
    call = {"profile_id": "ada", "profile": person("ada")}
    now = epoch(stack.now)
    for response in [
        signed_hook(stack, scenario_id, "crm", call, "wrong-secret"),
        signed_hook(stack, scenario_id, "crm", call, secret, timestamp=now - 301),
        signed_hook(stack, scenario_id, "crm", call, secret, timestamp=now + 301),
        signed_hook(stack, scenario_id, "crm", call, secret, headers={"X-Signature": "sha256=0"}),
        signed_hook(stack, scenario_id, "crm", call, secret, headers={"X-Timestamp": "soon"}),
        send(stack, "POST", f"/hooks/{scenario_id}/crm", call, key=None),
    ]:
        document = assert_problem(response, 401)
        assert "X-" in document["detail"]
    assert_problem(signed_hook(stack, scenario_id, "crm", call, "x"), 401, "X-Signature")
    stale = signed_hook(stack, scenario_id, "crm", call, secret, timestamp=now - 301)
    assert_problem(stale, 401, "X-Timestamp")
    assert_problem(send(stack, "POST", f"/hooks/{scenario_id}/crm", call, key=None), 401, "X-")
    assert_problem(send(stack, "GET", "/profiles/customers/ada"), 404)
    assert stack.instances("ada") == []
    within = signed_hook(stack, scenario_id, "crm", call, secret, timestamp=now - 299)
    assert within.status_code == 202


def test_hook_calls_refuse_unknown_ids_bad_bodies_and_inactive_scenarios(stack: Stack) -> None:
    scenario_id = active(stack)
    secret = stack.get(f"/scenarios/{scenario_id}")["webhook_secret"]
    assert_problem(signed_hook(stack, "nosuch", "crm", {"profile_id": "a"}, secret), 404, "nosuch")
    unknown = signed_hook(stack, scenario_id, "nosuch", {"profile_id": "a"}, secret)
    assert_problem(unknown, 404, "nosuch")
    not_a_hook = signed_hook(stack, scenario_id, "start", {"profile_id": "a"}, secret)
    assert_problem(not_a_hook, 404, "start")
    assert_problem(signed_hook(stack, scenario_id, "crm", {}, secret), 400, "$.profile_id")
    bad = {"profile_id": "a", "profile": "x"}
    assert_problem(signed_hook(stack, scenario_id, "crm", bad, secret), 400, "$.profile")
    stack.post(f"/scenarios/{scenario_id}/deactivate")
    stopped = signed_hook(stack, scenario_id, "crm", {"profile_id": "a"}, secret)
    assert_problem(stopped, 409, "stopped")
    draft = stack.create(journey(), activate=False)
    assert_problem(signed_hook(stack, draft, "crm", {"profile_id": "a"}, secret), 404, draft)
    assert stack.instances("a") == []


# --- feedback --------------------------------------------------------------------------------


def test_feedback_updates_the_message_a_wait_for_goes_on_and_bad_ones_are_refused(
    stack: Stack,
) -> None:
    nodes = wait_for_open()
    scenario_id = stack.create(scenario(nodes))
    enter(stack, scenario_id, "ada")
    stack.drain()
    (hello,) = stack.sent()
    stack.advance("PT1H")
    answer = stack.post("/feedback", {"message_id": hello["message_id"], "status": "opened"})
    assert answer == {
        "message_id": hello["message_id"],
        "feedback": {"sent": "2026-06-10T10:00:00Z", "opened": "2026-06-10T11:00:00Z"},
    }
    stack.drain()
    assert [m["node"] for m in stack.sent()] == ["hello", "thanks"]
    assert stack.instance("ada", scenario_id).status == "completed"
    at = "2026-06-10T10:30:00Z"
    again = stack.post(
        "/feedback", {"message_id": hello["message_id"], "status": "delivered", "at": at}
    )
    assert again["feedback"] == {
        "sent": "2026-06-10T10:00:00Z",
        "opened": "2026-06-10T11:00:00Z",
        "delivered": at,
    }
    for body, status, named in [
        ({"message_id": "nosuchmessage", "status": "opened"}, 404, "nosuchmessage"),
        ({"message_id": "m", "status": "read"}, 400, "$.status"),
        ({"status": "opened"}, 400, "$.message_id"),
        ({"message_id": "m", "status": "opened", "at": "now"}, 400, "$.at"),
        ({"message_id": "m", "status": "opened", "at": "2026-06-10T10:00:00"}, 400, "$.at"),
    ]:
        assert_problem(send(stack, "POST", "/feedback", body), status, named)
