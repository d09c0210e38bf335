"""The console in headless Chromium against a real `make run` stack on a virtual clock:
what a user sees when profiles move through the welcome series, and what they can do.

The tests share one stack and one browser (in file order): each uses profiles of its own.
Screenshots land in build/screenshots/ as the run's artefacts.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from selenium.webdriver.support.select import Select

from tests.browser.support import (
    Console,
    advance,
    call,
    set_viewport,
    sign_up,
    wait_for,
    welcome_id,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def console(driver: Any, stack: str) -> Console:
    """The console, signed in, on the welcome series' page."""
    page = Console(driver, stack)
    page.open()
    if page.visible("#api-key"):
        page.sign_in()
    page.open_scenario("Welcome series")
    return page


def test_a_wrong_key_is_refused_in_words(driver: Any, stack: str) -> None:
    page = Console(driver, stack)
    page.open()
    page.sign_in("not-the-key")
    notice = wait_for(lambda: page.visible("#notice.error"), what="the refusal")
    assert "401" in notice.text
    assert "X-Api-Key" in notice.text
    assert page.visible("#api-key"), "the key is asked again"
    page.screenshot("wrong-key")


def test_the_counters_on_the_graph_follow_the_profiles(console: Console, stack: str) -> None:
    assert console.counter("welcome_email", "entered") == 0
    sign_up(stack, "ada", "Ada")
    console.wait_for_counter("welcome_email", "entered", 1)
    console.wait_for_counter("welcome_email", "sent", 1)
    console.wait_for_counter("wait_day", "current", 1)
    console.screenshot("profile-waits-a-day")

    advance(stack, "P1D")  # no confirmation: the reminder SMS, then a day's wait for it
    console.wait_for_counter("wait_day", "current", 0)
    console.wait_for_counter("wait_day", "exited", 1)
    console.wait_for_counter("reminder_sms", "sent", 1)
    console.wait_for_counter("wait_sms", "current", 1)
    console.screenshot("profile-waits-for-the-sms")


def test_a_waiting_profile_is_removed_from_its_node(console: Console, stack: str) -> None:
    scenario_id = welcome_id(stack)
    sign_up(stack, "bob", "Bob")
    console.wait_for_counter("wait_day", "current", 1)
    console.box("wait_day").click()
    row = wait_for(lambda: console.visible('#node-profiles tr[data-profile="bob"]'), what="bob")
    assert "2026-06-03 10:00" in row.text  # wakes a day after he entered the pause
    row.find_element("css selector", "button").click()

    wait_for(lambda: console.visible("#no-profiles"), what="the node to be empty")
    console.wait_for_counter("wait_day", "current", 0)
    waiting = call(stack, "GET", f"/scenarios/{scenario_id}/nodes/wait_day/profiles")
    assert waiting["profiles"] == []
    console.screenshot("profile-removed")

    sign_up(stack, "cy", "Cy")
    sign_up(stack, "dee", "Dee")
    wait_for(lambda: len(console.find_all("#node-profiles tr[data-profile]")) == 2, what="cy, dee")
    console.find("#remove-all").click()
    console.find("#remove-all").click()  # the second press confirms
    wait_for(lambda: console.visible("#no-profiles"), what="everyone at wait_day removed")
    console.wait_for_counter("wait_day", "current", 0)


def test_an_invalid_edit_shows_its_problem_at_its_node(console: Console, stack: str) -> None:
    scenario_id = welcome_id(stack)
    before = call(stack, "GET", f"/scenarios/{scenario_id}")
    console.tab("edit")
    edited = json.loads(console.find("#editor").get_attribute("value"))
    edited["nodes"]["wait_day"]["next"] = "nowhere"
    console.set_text("#editor", json.dumps(edited, indent=2))
    console.find("#save").click()

    problem = wait_for(
        lambda: console.visible('#problems li[data-path="$.nodes.wait_day.next"]'),
        what="the problem",
    )
    assert "nowhere" in problem.text
    assert "problem" in console.box("wait_day").get_attribute("class")
    assert "problem" not in console.box("confirmed").get_attribute("class")
    after = call(stack, "GET", f"/scenarios/{scenario_id}")
    assert (after["version"], after["scenario"]) == (before["version"], before["scenario"])
    problem.find_element("css selector", "button").click()  # shows where in the JSON
    selected = console.driver.execute_script(
        "const e = document.querySelector('#editor');"
        "return e.value.slice(e.selectionStart, e.selectionEnd);"
    )
    assert selected == '"nowhere"'
    console.screenshot("invalid-edit")
    console.find("#revert").click()


def test_a_valid_edit_of_an_active_scenario_is_a_new_version(console: Console, stack: str) -> None:
    scenario_id = welcome_id(stack)
    console.tab("edit")
    edited = json.loads(console.find("#editor").get_attribute("value"))
    edited["nodes"]["promo_email"]["template"]["subject"] = "Your welcome code"
    console.set_text("#editor", json.dumps(edited, indent=2))
    console.find("#save").click()

    notice = wait_for(lambda: console.visible("#notice"), what="the answer")
    wait_for(lambda: notice.text == "Saved as version 2.", what="version 2")
    assert call(stack, "GET", f"/scenarios/{scenario_id}")["version"] == 2
    wait_for(
        lambda: (
            [o.text[:9] for o in console.find_all("#period select[name=version] option")]
            == ["all, summ", "version 2", "version 1"]
        ),
        what="both versions to pick from",
    )
    wait_for(lambda: "Your welcome code" in console.box("promo_email").text, what="the new graph")


def test_simulate_draws_the_path_and_lists_the_sends(console: Console) -> None:
    console.tab("simulate")
    console.find("#simulate-form button[type=submit]").click()

    sends = wait_for(lambda: console.visible("#sim-sends"), what="the simulated sends")
    assert "Welcome, Ada" in sends.text
    assert "on-path" in console.box("welcome_email").get_attribute("class")
    assert "on-path" in console.box("reminder_sms").get_attribute("class")
    assert "on-path" not in console.box("bonus").get_attribute("class")
    console.screenshot("simulated-path")


def test_stats_by_day_chart_the_entries(console: Console, stack: str) -> None:
    console.tab("days")
    table = wait_for(lambda: console.find_all("#days-table tbody tr"), what="the days")
    days = {
        row.find_element("css selector", "td").get_attribute("textContent"): row for row in table
    }
    entered = {
        day: row.find_elements("css selector", "td")[1].get_attribute("textContent")
        for day, row in days.items()
    }
    assert entered == {"2026-06-01": "1", "2026-06-02": "3"}  # ada; a day later bob, cy, dee
    console.screenshot("stats-by-day")


def test_the_page_fits_a_phone(driver: Any, console: Console) -> None:
    set_viewport(driver, 390, 844)
    try:
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, "the page scrolls sideways (only the graph may)"
        console.screenshot("phone")
    finally:
        set_viewport(driver, 1280, 800)


def test_clone_trash_restore_activate_and_deactivate(console: Console, stack: str) -> None:
    def status() -> str:
        return str(console.find("#status").text)

    console.find('[data-action="clone"]').click()
    wait_for(
        lambda: console.find("#scenario-title").text == "Welcome series (copy)", what="the copy"
    )
    assert status() == "draft"
    for action, after in (("trash", "trashed"), ("restore", "draft"), ("activate", "active")):
        console.find(f'[data-action="{action}"]').click()
        wait_for(lambda after=after: status() == after, what=f"status {after}")
    console.find("#keep-profiles").click()  # leave nobody asleep in the copy
    console.find('[data-action="deactivate"]').click()
    wait_for(lambda: status() == "stopped", what="status stopped")
    assert not console.find('[data-action="deactivate"]').is_enabled()

    console.driver.get(f"{stack}/console#/")
    select = wait_for(lambda: console.visible("#filters select[name=status]"), what="the filters")
    Select(select).select_by_visible_text("stopped")
    console.find("#filters button[type=submit]").click()
    wait_for(
        lambda: (
            [row.text.split(" stopped")[0] for row in console.find_all("#scenarios tbody tr")]
            == ["Welcome series (copy)"]
        ),
        what="only the stopped copy",
    )
    console.screenshot("list-filtered")


def test_the_local_clock_moves_from_the_console(console: Console, stack: str) -> None:
    before = call(stack, "GET", "/local/clock")["now"]
    shown = wait_for(lambda: console.visible("#clock-now"), what="the virtual clock")
    assert before.replace("T", " ")[:16] in shown.text
    console.find('#clock button[data-advance="PT1H"]').click()
    wait_for(lambda: call(stack, "GET", "/local/clock")["now"] != before, what="the clock to move")
    after = call(stack, "GET", "/local/clock")["now"]
    wait_for(
        lambda: after.replace("T", " ")[:16] in console.find("#clock-now").text, what="it shown"
    )
