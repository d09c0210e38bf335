"""Lifecycle (SPEC §1.6) on a running stack: stopping with and without keeping profiles,
reactivation, and live edits of an active scenario."""

from __future__ import annotations

from typing import Any

from harness import Stack, at, email, on_event, pause, person, scenario


def signup_then_hello(**settings: Any) -> dict[str, Any]:
    nodes = {"wait": pause("P1D", "hello"), "hello": email("Hello")}
    return scenario(nodes, [on_event("signup", "wait")], **settings)


def test_stop_keeping_profiles_freezes_them_until_reactivation(stack: Stack) -> None:
    scenario_id = stack.create(signup_then_hello(keep_profiles_on_stop=False))
    for name in ("ada", "bob", "carol"):
        stack.upsert(name, person(name))
    stack.event("signup", "ada")  # waits until June 11 10:00
    stack.advance_to(at(10, 12))
    stack.event("signup", "bob")  # waits until June 11 12:00
    stack.advance_to(at(10, 13))
    stopped = stack.post(f"/scenarios/{scenario_id}/deactivate", {"keep_profiles": True})
    assert stopped["status"] == "stopped"
    before = {name: stack.instance(name, scenario_id) for name in ("ada", "bob")}

    stack.event("signup", "carol")  # not captured: the scenario is stopped
    stack.advance_to(at(11, 11))  # ada's wait runs out while the scenario is stopped

    assert not stack.sent()
    assert not stack.instances("carol", scenario_id)
    for name, journey in before.items():
        assert stack.instance(name, scenario_id) == journey  # asleep: not moved at all
    waiting = stack.at_node(scenario_id, "wait")
    assert sorted(p["profile_id"] for p in waiting) == ["ada", "bob"]
    assert stack.stats(scenario_id)["nodes"]["wait"]["current"] == 2

    assert stack.post(f"/scenarios/{scenario_id}/activate")["status"] == "active"
    stack.drain()
    (hello,) = stack.sent()
    assert (hello["profile_id"], hello["at"]) == ("ada", "2026-06-11T11:00:00Z")  # at once

    stack.advance_to(at(11, 12, 30))
    assert [(m["profile_id"], m["at"]) for m in stack.sent()] == [
        ("ada", "2026-06-11T11:00:00Z"),
        ("bob", "2026-06-11T12:00:00Z"),  # its wait had not run out: it ends on time
    ]
    assert [stack.instance(n, scenario_id).status for n in ("ada", "bob")] == ["completed"] * 2
    stats = stack.stats(scenario_id)
    assert (stats["entered"], stats["completed"], stats["active"]) == (2, 2, 0)


def test_stop_without_keeping_profiles_exits_them(stack: Stack) -> None:
    by_request = stack.create(signup_then_hello(keep_profiles_on_stop=True, name="By request"))
    by_setting = stack.create(signup_then_hello(keep_profiles_on_stop=False, name="By setting"))
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.advance("PT1H")

    stack.post(f"/scenarios/{by_request}/deactivate", {"keep_profiles": False})
    stack.post(f"/scenarios/{by_setting}/deactivate")  # no body: the scenario's setting
    stack.drain()
    for scenario_id in (by_request, by_setting):
        journey = stack.instance("ada", scenario_id)
        assert (journey.status, journey.reason, journey.node) == ("exited", "stopped", "wait")
        assert stack.at_node(scenario_id, "wait") == []
        stats = stack.stats(scenario_id)
        assert (stats["entered"], stats["exited"], stats["active"]) == (1, 1, 0)
        assert stats["nodes"]["wait"] == {"entered": 1, "exited": 1, "current": 0}

    stack.post(f"/scenarios/{by_request}/activate")  # reactivation brings nobody back
    stack.advance("P2D")
    assert not stack.sent()
    assert stack.instance("ada", by_request).status == "exited"


def three_waits(wait_a: str = "P2D", wait_c: str = "P3D", with_b: bool = True) -> dict[str, Any]:
    nodes = {
        "wait_a": pause(wait_a, "mail_a"),
        "mail_a": email("A"),
        "wait_b": pause("P1D", "mail_b"),
        "mail_b": email("B"),
        "wait_c": pause(wait_c, "mail_c"),
        "mail_c": email("C"),
    }
    triggers = [on_event(f"go_{n}", f"wait_{n}", f"t_{n}") for n in "abc"]
    if not with_b:
        del nodes["wait_b"], nodes["mail_b"]
        triggers = [t for t in triggers if t["id"] != "t_b"]
    return scenario(nodes, triggers)


def test_live_edit_moves_profiles_onto_the_new_version(stack: Stack) -> None:
    scenario_id = stack.create(three_waits())
    for name, node in (("ada", "a"), ("bob", "b"), ("carol", "c")):
        stack.upsert(name, person(name))
        stack.event(f"go_{node}", name)
    stack.advance_to(at(11, 8))

    assert stack.at_node(scenario_id, "wait_a") == [
        {
            "profile_id": "ada",
            "instance_id": stack.instance("ada").instance_id,
            "entered_at": "2026-06-10T10:00:00Z",
            "wake_at": "2026-06-12T10:00:00Z",
        }
    ]

    # version 2: wait_b is gone, wait_a is longer, wait_c shorter (and over already)
    edited = stack.put(f"/scenarios/{scenario_id}", three_waits("P3D", "PT12H", with_b=False))
    assert (edited["status"], edited["version"]) == ("active", 2)
    stack.drain()

    bob = stack.instance("bob", scenario_id)
    assert (bob.status, bob.reason, bob.node) == ("exited", "node_removed", "wait_b")
    assert [(m["profile_id"], m["node"], m["at"]) for m in stack.sent()] == [
        ("carol", "mail_c", "2026-06-11T08:00:00Z")  # its shorter wait ran out: at once
    ]
    (ada,) = stack.at_node(scenario_id, "wait_a")
    assert (ada["entered_at"], ada["wake_at"]) == ("2026-06-10T10:00:00Z", "2026-06-13T10:00:00Z")
    assert stack.instance("ada").version == 2

    stack.advance_to(at(12, 12))  # version 1 would have sent ada's mail at June 12 10:00
    assert len(stack.sent()) == 1
    stack.advance_to(at(13, 12))
    assert [(m["profile_id"], m["at"]) for m in stack.sent(node="mail_a")] == [
        ("ada", "2026-06-13T10:00:00Z")
    ]

    versions = stack.get(f"/scenarios/{scenario_id}/versions")["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    stats = stack.stats(scenario_id)  # summed over both versions
    assert (stats["entered"], stats["completed"], stats["exited"]) == (3, 2, 1)
    first = stack.get(f"/scenarios/{scenario_id}/stats?version=1")
    second = stack.get(f"/scenarios/{scenario_id}/stats?version=2")
    assert (first["entered"], first["completed"], first["exited"]) == (3, 0, 0)
    assert (second["entered"], second["completed"], second["exited"]) == (0, 2, 1)


def test_a_live_edit_moves_the_counts_of_the_profiles_it_moves(stack: Stack) -> None:
    scenario_id = stack.create(three_waits())
    for name, node in (("ada", "a"), ("bob", "b"), ("carol", "c")):
        stack.upsert(name, person(name))
        stack.event(f"go_{node}", name)
    stack.advance_to(at(11, 8))

    def stats(version: int | None = None) -> dict[str, Any]:
        query = f"?version={version}" if version else ""
        answer: dict[str, Any] = stack.get(f"/scenarios/{scenario_id}/stats{query}")
        assert answer["active"] >= 0
        assert all(node["current"] >= 0 for node in answer["nodes"].values()), answer
        return answer

    def current(answer: dict[str, Any]) -> dict[str, int]:
        return {node: counts["current"] for node, counts in answer["nodes"].items()}

    waiting = {"wait_a": 1, "wait_b": 1, "wait_c": 1}
    assert (stats(1)["active"], current(stats(1))) == (3, waiting)
    stack.put(f"/scenarios/{scenario_id}", three_waits("P3D", "PT12H", with_b=False))
    stack.drain()  # ada waits longer, bob's node is gone, carol's shorter wait is over

    first, second, summed = stats(1), stats(2), stats()
    assert (first["entered"], first["moved_out"], first["active"]) == (3, 3, 0)
    assert current(first) == {"wait_a": 0, "wait_b": 0, "wait_c": 0}
    assert first["nodes"]["wait_a"] == {"entered": 1, "exited": 0, "current": 0} | {
        "moved_in": 0,
        "moved_out": 1,
    }
    assert (second["entered"], second["moved_in"], second["active"]) == (0, 3, 1)
    assert (second["completed"], second["exited"]) == (1, 1)
    assert current(second) == {"wait_a": 1, "wait_b": 0, "wait_c": 0, "mail_c": 0}
    assert second["nodes"]["wait_b"] == {"entered": 0, "exited": 1, "current": 0} | {
        "moved_in": 1,
        "moved_out": 0,
    }
    assert (summed["entered"], summed["completed"], summed["exited"]) == (3, 1, 1)
    assert summed["active"] == first["active"] + second["active"] == 1
    assert current(summed) == {"wait_a": 1, "wait_b": 0, "wait_c": 0, "mail_c": 0}
    assert "moved_in" not in summed  # moves between versions cancel out in the sum
    assert summed["nodes"]["wait_a"] == {"entered": 1, "exited": 0, "current": 1}

    stack.advance_to(at(13, 12))  # ada's longer wait ends: she completes on version 2
    first, second, summed = stats(1), stats(2), stats()
    assert (first["active"], second["active"], summed["active"]) == (0, 0, 0)
    assert (second["completed"], summed["completed"]) == (2, 2)
    assert set(current(second).values()) == set(current(summed).values()) == {0}


def test_past_its_first_tick_a_stack_captures_by_its_trigger_lists_and_a_stop_leaves_them(
    stack: Stack,
) -> None:
    from chalicelib.adapters import store
    from chalicelib.bootstrap import services

    scenario_id = stack.create(signup_then_hello())
    for name in ("ada", "bob", "carol"):
        stack.upsert(name, person(name))
    stack.advance_to(at(10, 10, 1))  # the first minute's tick: the stack's triggers listed
    assert services().storage.triggers_listed()
    store.scenarios.delete({"pk": "E#signup", "sk": scenario_id})  # the index cannot answer
    stack.event("signup", "ada")
    stack.drain()
    assert [i.status for i in stack.instances("ada", scenario_id)] == ["active"]
    stack.post(f"/scenarios/{scenario_id}/deactivate", {"keep_profiles": True})
    stack.event("signup", "bob")  # a stopped scenario captures nobody
    stack.drain()
    assert not stack.instances("bob", scenario_id)
    stack.post(f"/scenarios/{scenario_id}/activate")
    stack.event("signup", "carol")
    stack.drain()
    assert [i.status for i in stack.instances("carol", scenario_id)] == ["active"]
