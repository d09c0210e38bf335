"""Every built-in template on a real `make run` stack: a draft from it over HTTP, activated
as it stands, and its timeline simulated by `scenario_id` along its intended path."""

from __future__ import annotations

from tests.local_process import call
from tests.unit.templates.test_template_library import INTENDED


def test_every_template_activates_and_simulates_on_the_local_stack(local_stack: str) -> None:
    _, _, listed = call(local_stack, "GET", "/templates")
    assert sorted(t["id"] for t in listed["templates"]) == sorted(INTENDED)
    for template in listed["templates"]:
        status, _, made = call(local_stack, "POST", "/scenarios", {"template": template["id"]})
        assert (status, made["problems"]) == (201, []), made
        status, _, activated = call(local_stack, "POST", f"/scenarios/{made['id']}/activate")
        assert (status, activated["status"]) == (200, "active"), activated
        request = {
            "scenario_id": made["id"],
            "start": "2026-06-01T10:00:00Z",
            **template["timeline"],
        }
        status, _, simulated = call(local_stack, "POST", "/scenarios/simulate", request)
        assert status == 200, simulated
        path, sends = INTENDED[template["id"]]
        assert [entry["node"] for entry in simulated["path"]] == path, template["id"]
        assert [(s["node"], s["subject"]) for s in simulated["sends"]] == sends
