"""More of SPEC §8 and §1.1 on the local stack: the global control group measured against
the conversion goal, held-out and control journeys as the API lists them, conversions
per version and per `ab_split` branch, experiments on opens and clicks and decided again
daily or from the first entry, sends held by the rate limit or the frequency cap rechecked
when they leave, locale variants, refusals that name why, and what `simulate` shows of
the stack's groups and winners."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import pytest
from harness import Stack, email, on_event, person, scenario

from chalicelib.adapters import store
from chalicelib.engine.measure import control_point, holdout_point
from chalicelib.scenarios.facts import Profile

CONVERSION = {"event": "order.created", "within": "P7D"}
PROFILES = [f"p{number}" for number in range(24)]


def enter(stack: Stack, scenario_id: str, profile_ids: list[str]) -> None:
    for number, profile_id in enumerate(profile_ids):
        stack.upsert(profile_id, person(profile_id, number))
        stack.post(f"/scenarios/{scenario_id}/profiles", {"profile_id": profile_id}, status=201)
    stack.drain()


def order(stack: Stack, profile_id: str) -> None:
    stack.event("order.created", profile_id, event_id=f"order-{profile_id}", data={"total": 20})


def journeys(stack: Stack, profile_id: str, scenario_id: str) -> list[dict[str, Any]]:
    found = stack.get(f"/profiles/customers/{profile_id}/journeys")["journeys"]
    return [j for j in found if j["scenario_id"] == scenario_id]


def z_test(k1: int, n1: int, k2: int, n2: int) -> float:
    """The two-sided p-value of the pooled two-proportion z-test."""
    pooled = (k1 + k2) / (n1 + n2)
    z = (k1 / n1 - k2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 2 * (1 - NormalDist().cdf(abs(z)))


# --- holdout and the global control group --------------------------------------------


def test_a_held_out_profiles_journey_is_listed_exited_with_reason_holdout(stack: Stack) -> None:
    scenario_id = stack.create(
        scenario({"hello": email("Hello")}, holdout={"percent": 50}, conversion=CONVERSION)
    )
    enter(stack, scenario_id, PROFILES)
    held = [
        p for p in PROFILES if holdout_point(scenario_id, Profile(p, profile_db="customers")) < 50
    ]
    treated = [p for p in PROFILES if p not in held]
    assert held
    assert treated

    (journey,) = journeys(stack, held[0], scenario_id)
    assert (journey["status"], journey["reason"]) == ("exited", "holdout")
    (journey,) = journeys(stack, treated[0], scenario_id)
    assert (journey["status"], journey["reason"]) == ("completed", None)


def test_the_control_group_is_measured_for_conversion_and_gives_the_lift(stack: Stack) -> None:
    stack.put("/settings/control", {"percent": 50})
    scenario_id = stack.create(scenario({"hello": email("Hello")}, conversion=CONVERSION))
    enter(stack, scenario_id, PROFILES)
    control = [p for p in PROFILES if control_point(Profile(p, profile_db="customers")) < 50]
    treated = [p for p in PROFILES if p not in control]
    assert len(control) >= 4
    assert len(treated) >= 6
    assert {m["to"] for m in stack.sent(channel="email")} == {f"{p}@example.com" for p in treated}
    (journey,) = journeys(stack, control[0], scenario_id)
    assert (journey["status"], journey["reason"]) == ("exited", "control")

    stack.advance("P1D")
    for profile_id in [*treated[:6], control[0]]:
        order(stack, profile_id)
    stack.drain()

    stats = stack.stats(scenario_id)
    assert stats["entered"] == len(PROFILES)
    assert stats["conversions"] == 7
    assert stats["treatment"]["conversions"] == 6
    held = stats["control"]
    assert (held["entered"], held["conversions"]) == (len(control), 1)
    assert held["conversion_rate"] == pytest.approx(1 / len(control))
    assert held["lift"] == pytest.approx((6 / len(treated)) / (1 / len(control)) - 1)
    assert held["p_value"] == pytest.approx(z_test(6, len(treated), 1, len(control)), abs=1e-9)
    assert stats["holdout"]["entered"] == 0


def test_bad_control_settings_change_nothing(stack: Stack) -> None:
    assert stack.put("/settings/control", {"percent": 5}) == {"percent": 5}
    for bad in ({"percent": 100}, {"percent": -1}, {"percent": "5"}, {}, {"percent": 5, "x": 1}):
        stack.put("/settings/control", bad, status=400)
        assert stack.get("/settings/control") == {"percent": 5}, bad
    assert stack.put("/settings/control", {"percent": 0}) == {"percent": 0}
    scenario_id = stack.create(scenario({"hello": email("Hello")}))
    enter(stack, scenario_id, PROFILES)
    assert len(stack.sent(subject="Hello")) == len(PROFILES)  # 0 %: nobody held out


# --- conversions per version and per ab_split branch ---------------------------------


def test_a_conversion_counts_in_the_version_the_profile_entered(stack: Stack) -> None:
    document = scenario({"hello": email("Hello")}, conversion=CONVERSION)
    scenario_id = stack.create(document)
    enter(stack, scenario_id, ["ada"])
    stack.put(f"/scenarios/{scenario_id}", {**document, "name": "Second version"})
    enter(stack, scenario_id, ["bob", "cy"])
    stack.advance("PT1H")
    order(stack, "ada")
    order(stack, "bob")
    stack.drain()

    first = stack.get(f"/scenarios/{scenario_id}/stats?version=1")
    second = stack.get(f"/scenarios/{scenario_id}/stats?version=2")
    assert (first["entered"], first["conversions"], first["conversion_rate"]) == (1, 1, 1.0)
    assert (second["entered"], second["conversions"]) == (2, 1)
    assert second["conversion_rate"] == pytest.approx(0.5)
    assert stack.stats(scenario_id)["conversions"] == 2


def test_ab_split_branches_report_their_conversions_and_rate(stack: Stack) -> None:
    split = {
        "type": "ab_split",
        "branches": [
            {"name": "short", "percent": 50, "next": "short_mail"},
            {"name": "long", "percent": 50, "next": "long_mail"},
        ],
    }
    scenario_id = stack.create(
        scenario(
            {"ab": split, "short_mail": email("Short"), "long_mail": email("Long")},
            conversion=CONVERSION,
        )
    )
    enter(stack, scenario_id, PROFILES)
    taken = {p: stack.instance(p, scenario_id).branches["ab"].name for p in PROFILES}
    short = [p for p, name in taken.items() if name == "short"]
    long = [p for p, name in taken.items() if name == "long"]
    assert len(short) >= 2
    assert len(long) >= 2
    stack.advance("PT1H")
    for profile_id in short[:2]:
        order(stack, profile_id)
    order(stack, short[0])  # converted already: once per instance
    stack.drain()

    branches = stack.stats(scenario_id)["branches"]["ab"]
    assert (branches["short"]["entered"], branches["short"]["conversions"]) == (len(short), 2)
    assert branches["short"]["conversion_rate"] == pytest.approx(2 / len(short))
    assert (branches["long"]["entered"], branches["long"]["conversions"]) == (len(long), 0)
    assert branches["long"]["conversion_rate"] == 0.0


# --- experiments ---------------------------------------------------------------------


def experiment(metric: str, decide_after: str = "P1D") -> dict[str, Any]:
    return {
        "type": "experiment",
        "branches": [
            {"name": "plain", "percent": 50, "next": "plain_mail"},
            {"name": "bold", "percent": 50, "next": "bold_mail"},
        ],
        "metric": metric,
        "decide_after": decide_after,
        "min_per_branch": 5,
        "confidence": 0.9,
    }


def experiment_scenario(stack: Stack, metric: str, **settings: Any) -> str:
    nodes = {"exp": experiment(metric), "plain_mail": email("Plain"), "bold_mail": email("Bold")}
    return stack.create(scenario(nodes, **settings))


def branch_of(stack: Stack, scenario_id: str) -> dict[str, str]:
    return {p: stack.instance(p, scenario_id).branches["exp"].name for p in PROFILES}


@pytest.mark.parametrize("metric", ["opened", "clicked"])
def test_an_experiment_on_engagement_is_decided_by_its_metric(stack: Stack, metric: str) -> None:
    scenario_id = experiment_scenario(stack, metric)
    enter(stack, scenario_id, PROFILES)
    taken = branch_of(stack, scenario_id)
    assert list(taken.values()).count("bold") >= 5
    assert list(taken.values()).count("plain") >= 5
    for message in stack.sent(scenario_id=scenario_id):
        if taken[message["profile_id"]] == "bold":
            stack.post("/feedback", {"message_id": message["message_id"], "status": metric})
    stack.drain()

    stats = stack.stats(scenario_id)["experiments"]["exp"]
    bold, plain = stats["branches"]["bold"], stats["branches"]["plain"]
    assert (bold["count"], bold["rate"]) == (bold["entered"], 1.0)
    assert (plain["count"], plain["rate"]) == (0, 0.0)
    assert stats["winner"] is None

    stack.advance("P1DT1M")
    stats = stack.stats(scenario_id)["experiments"]["exp"]
    assert stats["winner"] == "bold"
    assert stats["decided_at"] is not None
    enter(stack, scenario_id, ["late"])
    assert [s["node"] for s in stack.instance("late", scenario_id).path] == ["exp", "bold_mail"]


def test_an_unclear_experiment_keeps_splitting_and_is_decided_again_a_day_later(
    stack: Stack,
) -> None:
    scenario_id = experiment_scenario(stack, "conversion", conversion=CONVERSION)
    enter(stack, scenario_id, PROFILES)
    taken = branch_of(stack, scenario_id)

    stack.advance("P1DT1M")  # due, but nobody converted: no branch is likely best
    stats = stack.stats(scenario_id)["experiments"]["exp"]
    assert stats["winner"] is None
    assert all(branch["p_best"] < 0.9 for branch in stats["branches"].values())
    enter(stack, scenario_id, ["between"])
    assert "exp" in stack.instance("between", scenario_id).branches  # still splitting

    for profile_id, name in taken.items():
        if name == "bold":
            order(stack, profile_id)
    stack.drain()
    assert stack.stats(scenario_id)["experiments"]["exp"]["branches"]["bold"]["p_best"] > 0.99
    stack.advance("PT12H")  # clear now, but the next decision is a day after the last
    assert stack.stats(scenario_id)["experiments"]["exp"]["winner"] is None

    stack.advance("PT12H")
    stats = stack.stats(scenario_id)["experiments"]["exp"]
    assert stats["winner"] == "bold"
    assert stats["decided_at"][:10] == "2026-06-12"


# --- sending discipline --------------------------------------------------------------


def test_a_send_held_by_the_rate_limit_is_rechecked_when_its_slot_comes(stack: Stack) -> None:
    mail = email("VIPs only")
    mail["recheck"] = {"field": "profile.tier", "op": "eq", "value": "vip"}
    scenario_id = stack.create(
        scenario({"mail": mail}, [on_event("signup", "mail")], rate_limit={"max": 1, "per": "PT1M"})
    )
    for number, name in enumerate(("ada", "bob")):
        stack.upsert(name, person(name, number, tier="vip"))
        stack.event("signup", name)
    stack.drain()
    (first,) = stack.sent(scenario_id=scenario_id)
    (waiting,) = [
        row
        for row in store.messages.scan()
        if row.get("scenario_id") == scenario_id and row["status"] == "queued"
    ]
    assert waiting["profile_id"] != first["profile_id"]
    stack.upsert(waiting["profile_id"], {"tier": "basic"})
    stack.advance("PT2M")

    assert [m["profile_id"] for m in stack.sent(scenario_id=scenario_id)] == [first["profile_id"]]
    row = store.messages.get({"message_id": waiting["message_id"]})
    assert row is not None
    assert (row["status"], row["reason"]) == ("skipped", "recheck")


def test_a_capture_past_the_entry_limit_is_refused_naming_entry_limit(stack: Stack) -> None:
    scenario_id = stack.create(
        scenario({"hello": email("Hello")}, entry_limit={"max": 1, "per": "P1D"})
    )
    enter(stack, scenario_id, ["ada"])
    stack.upsert("bob", person("bob"))
    answer = stack.post(f"/scenarios/{scenario_id}/profiles", {"profile_id": "bob"}, status=409)
    assert answer["reason"] == "entry_limit"
    assert stack.instances("bob", scenario_id) == []
    assert stack.stats(scenario_id)["entered"] == 1


def test_decide_after_runs_from_the_first_entry_not_from_activation(stack: Stack) -> None:
    scenario_id = experiment_scenario(stack, "conversion", conversion=CONVERSION)
    stack.advance("P1D")  # active a day with nobody in it
    enter(stack, scenario_id, PROFILES)
    for profile_id, name in branch_of(stack, scenario_id).items():
        if name == "bold":
            order(stack, profile_id)
    stack.drain()

    stack.advance("PT1M")  # a day after activation: not yet a day after the first entry
    assert stack.stats(scenario_id)["experiments"]["exp"]["winner"] is None
    stack.advance("P1D")
    assert stack.stats(scenario_id)["experiments"]["exp"]["winner"] == "bold"


def test_each_profile_is_sent_the_variant_for_its_locale(stack: Stack) -> None:
    mail = email("Welcome")
    mail["variants"] = {"de": {"subject": "Willkommen"}, "pt-BR": {"subject": "Bem-vindo"}}
    scenario_id = stack.create(scenario({"mail": mail}))
    locales = {"ada": "de-CH", "bob": "pt-BR", "cy": "pt-PT", "dan": None}
    for number, (name, locale) in enumerate(locales.items()):
        stack.upsert(name, person(name, number, locale=locale))
        stack.post(f"/scenarios/{scenario_id}/profiles", {"profile_id": name}, status=201)
    stack.drain()

    subjects = {m["profile_id"]: m["subject"] for m in stack.sent(scenario_id=scenario_id)}
    assert subjects == {"ada": "Willkommen", "bob": "Bem-vindo", "cy": "Welcome", "dan": "Welcome"}


def test_a_send_held_by_the_frequency_cap_is_rechecked_when_it_leaves(stack: Stack) -> None:
    again = email("VIPs only")
    again["recheck"] = {"field": "profile.tier", "op": "eq", "value": "vip"}
    scenario_id = stack.create(
        scenario(
            {"first": email("First", "again"), "again": again},
            frequency_cap={"max": 1, "per": "P1D", "on_cap": "delay"},
        )
    )
    stack.upsert("ada", person("ada", tier="vip"))
    stack.post(f"/scenarios/{scenario_id}/profiles", {"profile_id": "ada"}, status=201)
    stack.drain()
    assert [m["subject"] for m in stack.sent(scenario_id=scenario_id)] == ["First"]
    stack.upsert("ada", {"tier": "basic"})
    stack.advance("P1DT1M")

    assert [m["subject"] for m in stack.sent(scenario_id=scenario_id)] == ["First"]
    (held,) = [
        row
        for row in store.messages.scan()
        if row.get("scenario_id") == scenario_id and row["node"] == "again"
    ]
    assert (held["status"], held["reason"]) == ("skipped", "recheck")


# --- simulate ------------------------------------------------------------------------


def test_simulate_holds_out_the_profile_the_stack_holds_out(stack: Stack) -> None:
    scenario_id = stack.create(scenario({"hello": email("Hello")}, holdout={"percent": 50}))
    enter(stack, scenario_id, PROFILES)
    held = [p for p in PROFILES if stack.instance(p, scenario_id).reason == "holdout"]
    treated = [p for p in PROFILES if p not in held]
    assert held
    assert treated

    for profile_id in (*held, *treated):
        simulated = stack.post(
            "/scenarios/simulate",
            {
                "scenario_id": scenario_id,
                "profile": {"profile_id": profile_id, "fields": person(profile_id)},
                "until": "PT1H",
            },
        )
        outcome = simulated["path"][0]["outcome"]
        assert (outcome == "holdout") is (profile_id in held), profile_id
        assert (simulated["sends"] == []) is (profile_id in held), profile_id


def test_simulate_puts_in_the_control_group_the_profile_the_stack_puts_there(
    stack: Stack,
) -> None:
    stack.put("/settings/control", {"percent": 50})
    scenario_id = stack.create(scenario({"hello": email("Hello")}))
    enter(stack, scenario_id, PROFILES)
    control = {p for p in PROFILES if stack.instance(p, scenario_id).reason == "control"}
    assert 0 < len(control) < len(PROFILES)

    for profile_id in PROFILES:
        simulated = stack.post(
            "/scenarios/simulate",
            {
                "scenario_id": scenario_id,
                "profile": {"profile_id": profile_id, "fields": person(profile_id)},
                "until": "PT1H",
            },
        )
        assert (simulated["reason"] == "control") is (profile_id in control), profile_id


def test_simulate_follows_the_stacks_experiment_winner(stack: Stack) -> None:
    scenario_id = experiment_scenario(stack, "conversion", conversion=CONVERSION)
    enter(stack, scenario_id, PROFILES)
    ask = {"scenario_id": scenario_id, "profile": person("zoe"), "until": "PT1H"}
    drawn = stack.post("/scenarios/simulate", ask)["path"][0]
    assert (drawn["node"], drawn["outcome"]) in {("exp", "plain"), ("exp", "bold")}
    for profile_id, name in branch_of(stack, scenario_id).items():
        if name == "bold":
            order(stack, profile_id)
    stack.drain()
    stack.advance("P1DT1M")
    assert stack.stats(scenario_id)["experiments"]["exp"]["winner"] == "bold"

    decided = stack.post("/scenarios/simulate", ask)
    assert decided["path"][0]["outcome"] == "winner: bold"
    assert [s["subject"] for s in decided["sends"]] == ["Bold"]
