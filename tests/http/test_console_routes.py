"""The console's routes through the HTTP API: its page and files (public), the scenario
diagram as SVG (with the key, counters filled in), and statistics by day for its chart."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.e2e.harness import Stack, person
from tests.http.support import assert_problem, content_type, journey, send

SVG = "{http://www.w3.org/2000/svg}"


def enter(stack: Stack, scenario_id: str, *names: str) -> None:
    for number, name in enumerate(names):
        stack.upsert(name, person(name, number))
        stack.post(f"/scenarios/{scenario_id}/profiles", {"profile_id": name}, status=201)
    stack.drain()


def counters(svg: str) -> dict[tuple[str, str], str]:
    """(node, counter) → the number the picture shows."""
    shown = {}
    for box in ET.fromstring(svg).iter(f"{SVG}g"):
        node = box.get("data-node")
        for text in box.iter(f"{SVG}text") if node else ():
            if text.get("data-counter"):
                shown[node, text.get("data-counter")] = text.text or ""
    return shown


def test_the_console_page_and_its_files_need_no_key(stack: Stack) -> None:
    page = send(stack, "GET", "/console", key=None)
    assert page.status_code == 200
    assert content_type(page) == "text/html; charset=utf-8"
    assert b'src="console/console.js"' in page.body
    for name, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        answer = send(stack, "GET", f"/console/{name}", key=None)
        assert answer.status_code == 200
        assert (content_type(answer) or "").startswith(kind)
    assert_problem(send(stack, "GET", "/console/secrets.py", key=None), 404, "secrets.py")


def test_the_diagram_draws_every_node_with_its_counters(stack: Stack) -> None:
    scenario_id = stack.create(journey())
    enter(stack, scenario_id, "ada", "bob")

    answer = send(stack, "GET", f"/scenarios/{scenario_id}/diagram.svg")
    assert answer.status_code == 200
    assert content_type(answer) == "image/svg+xml; charset=utf-8"
    shown = counters(answer.body.decode())
    assert shown["hello", "entered"] == "2"
    assert shown["hello", "sent"] == "2"
    assert shown["wait", "current"] == "2"
    assert shown["bye", "entered"] == "0"


def test_the_diagram_of_a_version(stack: Stack) -> None:
    scenario_id = stack.create(journey())
    enter(stack, scenario_id, "ada")
    renamed = journey()
    renamed["nodes"]["later"] = renamed["nodes"].pop("bye")
    renamed["nodes"]["wait"]["next"] = "later"
    stack.put(f"/scenarios/{scenario_id}", renamed)

    first = send(stack, "GET", f"/scenarios/{scenario_id}/diagram.svg?version=1").body.decode()
    latest = send(stack, "GET", f"/scenarios/{scenario_id}/diagram.svg").body.decode()
    assert 'data-node="bye"' in first
    assert 'data-node="later"' not in first
    assert 'data-node="later"' in latest
    assert counters(first)["hello", "entered"] == "1"


def test_the_diagram_refuses_what_it_cannot_draw(stack: Stack) -> None:
    scenario_id = stack.create(journey())
    path = f"/scenarios/{scenario_id}/diagram.svg"
    assert_problem(send(stack, "GET", path, key=None), 401, "X-Api-Key")
    assert_problem(send(stack, "GET", f"{path}?version=7"), 404, "version")
    assert_problem(send(stack, "GET", f"{path}?from=yesterday"), 400, "from")
    assert_problem(send(stack, "GET", "/scenarios/nosuch/diagram.svg"), 404, "nosuch")


def test_stats_by_day(stack: Stack) -> None:
    scenario_id = stack.create(journey())
    enter(stack, scenario_id, "ada")
    today = stack.now.date()
    stack.advance("P1D")  # ada's wait ends: she completes on the second day
    enter(stack, scenario_id, "bob", "cy")

    summed = stack.get(f"/scenarios/{scenario_id}/stats?by=day")
    days = [(d["day"], d["entered"], d["completed"]) for d in summed["days"]]
    tomorrow = today.fromordinal(today.toordinal() + 1)
    assert days == [(today.isoformat(), 1, 0), (tomorrow.isoformat(), 2, 1)]
    assert summed["entered"] == 3

    one_day = stack.get(f"/scenarios/{scenario_id}/stats?by=day&from={today}&to={today}")
    assert [(d["day"], d["entered"]) for d in one_day["days"]] == [(today.isoformat(), 1)]
    assert "days" not in stack.get(f"/scenarios/{scenario_id}/stats")


def test_stats_by_day_refuse_bad_parameters(stack: Stack) -> None:
    scenario_id = stack.create(journey())
    path = f"/scenarios/{scenario_id}/stats"
    assert_problem(send(stack, "GET", f"{path}?by=week"), 400, "by")
    assert_problem(send(stack, "GET", f"{path}?by=day&from=2020-01-01&to=2026-01-01"), 400, "366")


def test_the_scenario_list_shows_the_group(stack: Stack) -> None:
    stack.create(journey(group="marketing"))
    (listed,) = stack.get("/scenarios")["scenarios"]
    assert listed["group"] == "marketing"
