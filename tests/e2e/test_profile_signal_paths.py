"""More of SPEC §7 through the running stack: the causes of a membership change besides
an upsert (an import, a consent withdrawn by feedback, a balance kept, a merge, a date
that became today), the signals heard by `wait_for`, `exit_on` and conditions, and a
merge that moves lists and orders and runs once however often its message comes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from harness import Stack, at, email, on_event, pause, person, scenario
from test_profile_signals import HEARD, NOT_HEARD, enter, heard, listen, signal_data

from chalicelib.adapters import store
from chalicelib.adapters.dynamodb_storage import DynamoStorage
from chalicelib.bootstrap import services
from chalicelib.runtime import events, merges, promo, steps
from chalicelib.runtime.messages import EventMessage, Merge, PromoRequest, StepMessage
from chalicelib.scenarios.durations import format_datetime

BERLINERS = {
    "profile_db": "customers",
    "where": {"field": "profile.city", "op": "eq", "value": "Berlin"},
}


def on_segment(stack: Stack, kind: str, segment: str, subject: str) -> str:
    """A scenario that mails the profile when it enters (or leaves) the segment."""
    where = {"field": "event.data.segment", "op": "eq", "value": segment}
    trigger = on_event(f"segment.{kind}", "mail", where=where)
    return stack.create(scenario({"mail": email(subject)}, [trigger], reentry="parallel"))


def subjects(stack: Stack, profile_id: str) -> list[str]:
    return [m["subject"] for m in stack.sent(profile_id=profile_id)]


def imported(stack: Stack, *profiles: tuple[str, dict[str, Any]]) -> None:
    body = {"profiles": [{"profile_id": pid, "fields": fields} for pid, fields in profiles]}
    stack.post("/profiles/customers/import", body)
    stack.drain()


# --- segment membership: what re-evaluates it ---------------------------------------------


def test_an_import_enters_and_leaves_a_segment(stack: Stack) -> None:
    stack.put("/segments/berliners", BERLINERS)
    on_segment(stack, "entered", "berliners", "Willkommen")
    on_segment(stack, "exited", "berliners", "Tschüss")
    imported(stack, ("ada", person("ada", city="Berlin")), ("bob", person("bob", 1, city="Rome")))
    assert (subjects(stack, "ada"), subjects(stack, "bob")) == (["Willkommen"], [])

    stack.advance("PT1M")  # messages of one instant are listed in no particular order
    imported(stack, ("ada", {"city": "Paris"}), ("bob", {"city": "Berlin"}))
    assert (subjects(stack, "ada"), subjects(stack, "bob")) == (
        ["Willkommen", "Tschüss"], ["Willkommen"],
    )  # fmt: skip


def test_a_consent_withdrawn_by_feedback_enters_a_segment_on_consent(stack: Stack) -> None:
    unreachable = {"profile_db": "customers", "where": {"consent": "email", "granted": False}}
    stack.put("/segments/unreachable", unreachable)
    stack.create(scenario({"hello": email("Hello")}, [on_event("signup", "hello")]))
    win_back = stack.create(
        scenario({"text": {"type": "send", "channel": "sms", "template": {"body": "Miss you"}}},
                 [on_event("segment.entered", "text")], name="By SMS")
    )  # fmt: skip
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.drain()
    assert stack.instances("ada", win_back) == []
    (hello,) = stack.sent(profile_id="ada")

    stack.post("/feedback", {"message_id": hello["message_id"], "status": "unsubscribed"})
    stack.drain()

    assert stack.fields("ada")["consents"]["email"] is False
    (journey,) = stack.instances("ada", win_back)
    assert journey.entry.data == {"segment": "unreachable", "derived": True}
    assert [m["channel"] for m in stack.sent(scenario_id=win_back)] == ["sms"]


def test_a_balance_kept_from_balance_changed_moves_a_segment_on_the_balance(
    stack: Stack,
) -> None:
    in_debt = {
        "profile_db": "customers",
        "where": {"field": "profile.balance", "op": "lt", "value": 0},
    }
    stack.put("/segments/in_debt", in_debt)
    on_segment(stack, "entered", "in_debt", "Your balance is negative")
    on_segment(stack, "exited", "in_debt", "Back in the black")
    stack.upsert("ada", person("ada"))
    stack.event("balance.changed", "ada", data={"balance": -5, "delta": -5})
    stack.drain()
    assert subjects(stack, "ada") == ["Your balance is negative"]
    stack.advance("PT1M")
    stack.event("balance.changed", "ada", data={"balance": -9, "delta": -4})  # still a member
    stack.drain()
    stack.advance("PT1M")
    stack.event("balance.changed", "ada", data={"balance": 1, "delta": 10})
    stack.drain()
    assert subjects(stack, "ada") == ["Your balance is negative", "Back in the black"]


def test_a_merge_evaluates_the_kept_profile_with_the_fields_it_folded_in(stack: Stack) -> None:
    gold = {
        "profile_db": "customers",
        "where": {"field": "profile.plan", "op": "eq", "value": "gold"},
    }
    stack.put("/segments/gold", gold)
    on_segment(stack, "entered", "gold", "Welcome to gold")
    stack.upsert("ada", person("ada", 1))
    stack.upsert("bob", {**person("bob", 2), "plan": "gold"})
    stack.drain()
    assert (subjects(stack, "ada"), subjects(stack, "bob")) == ([], ["Welcome to gold"])
    stack.advance("PT1M")

    stack.post("/profiles/customers/merge", {"into": "ada", "from": ["bob"]})
    stack.drain()

    assert stack.fields("ada")["plan"] == "gold"
    welcomed = stack.sent(subject="Welcome to gold")  # bob's moved to ada with his history
    assert [(m["profile_id"], m["to"]) for m in welcomed] == [
        ("ada", "bob@example.com"), ("ada", "ada@example.com"),
    ]  # fmt: skip


def test_the_daily_run_enters_and_leaves_a_segment_relative_to_today(stack: Stack) -> None:
    renewing = {
        "profile_db": "customers",
        "where": {"field": "profile.renews_on", "op": "eq", "value": {"today": 0}},
    }
    stack.put("/segments/renewing", renewing)
    on_segment(stack, "entered", "renewing", "Renews today")
    on_segment(stack, "exited", "renewing", "Renewed")
    stack.upsert("ada", person("ada", renews_on="2026-06-12"))
    stack.drain()
    assert subjects(stack, "ada") == []

    stack.advance_to(at(11, 23, 50))  # the day before: no change of ada, none of the day
    assert subjects(stack, "ada") == []
    stack.advance_to(at(12, 6))
    assert subjects(stack, "ada") == ["Renews today"]
    stack.advance_to(at(13, 6))
    assert subjects(stack, "ada") == ["Renews today", "Renewed"]


# --- heard by wait_for, exit_on and conditions ----------------------------------------------


def test_segment_entered_and_exited_are_heard_by_wait_for_and_exit_on(stack: Stack) -> None:
    stack.put("/segments/berliners", BERLINERS)
    entered, exited = listen(stack, "segment.entered"), listen(stack, "segment.exited")
    stack.upsert("ada", person("ada", city="Rome"))
    enter(stack, entered, "ada")
    enter(stack, exited, "ada")
    stack.upsert("ada", {"first_name": "Ada L."})  # not a change of membership
    assert heard(stack, entered, "ada") == NOT_HEARD

    stack.upsert("ada", {"city": "Berlin"})
    assert heard(stack, entered, "ada") == HEARD
    assert heard(stack, exited, "ada") == NOT_HEARD
    stack.upsert("ada", {"city": "Paris"})
    assert heard(stack, exited, "ada") == HEARD
    assert signal_data(stack, exited, "ada") == [{"segment": "berliners", "derived": True}]


def test_profile_merged_is_heard_by_wait_for_and_exit_on(stack: Stack) -> None:
    listeners = listen(stack, "profile.merged")
    stack.upsert("ada", person("ada", 1))
    stack.upsert("bob", person("bob", 2))
    enter(stack, listeners, "ada")
    assert heard(stack, listeners, "ada") == NOT_HEARD

    stack.post("/profiles/customers/merge", {"into": "ada", "from": ["bob"]})
    assert heard(stack, listeners, "ada") == HEARD
    assert signal_data(stack, listeners, "ada") == [{"merged": ["bob"], "derived": True}]


CAUSES: dict[str, Callable[[Stack, str], None]] = {
    "email.changed": lambda stack, pid: stack.upsert(pid, {"email": f"{pid}@new.example"}),
    "phone.confirmed": lambda stack, pid: stack.upsert(pid, {"phone_confirmed": True}),
    "balance.negative": lambda stack, pid: stack.event(
        "balance.changed", pid, data={"balance": -1, "delta": -1}
    ),
    "segment.entered": lambda stack, pid: stack.upsert(pid, {"city": "Berlin"}),
    "points.available": lambda stack, pid: stack.event(
        "balance.changed",
        pid,
        data={"balance": 5, "pending": 5, "available_at": format_datetime(stack.now)},
    ),
    "promo_code.redeemed": lambda stack, pid: stack.post(
        "/promo-pools/SPRING/redeem", {"code": "A", "profile_db": "customers", "profile_id": pid}
    ),
    "profile.merged": lambda stack, pid: stack.post(
        "/profiles/customers/merge", {"into": pid, "from": ["dup"]}
    ),
}


@pytest.mark.parametrize("signal", sorted(CAUSES))
def test_a_derived_signal_counts_in_a_condition_on_the_history(stack: Stack, signal: str) -> None:
    stack.put("/segments/berliners", BERLINERS)
    stack.put("/promo-pools/SPRING", {"codes": ["A"]})
    stack.upsert("dup", person("dup", 9))
    counted = {"event_count": {"type": signal}, "op": "gt", "value": 0}
    scenario_id = stack.create(
        scenario({"day": pause("P1D", "check"),
                  "check": {"type": "condition", "if": counted, "then": "yes", "else": "no"},
                  "yes": email("It happened"), "no": email("Nothing happened")},
                 [on_event("signup", "day")])
    )  # fmt: skip
    for number, profile_id in enumerate(("ada", "bob")):
        stack.upsert(profile_id, person(profile_id, number, city="Rome"))
        stack.event("signup", profile_id)
    stack.drain()
    stack.advance("PT1H")
    CAUSES[signal](stack, "ada")
    stack.drain()
    stack.advance("P1D")

    assert [m["subject"] for m in stack.sent(scenario_id=scenario_id, profile_id="ada")] == [
        "It happened"
    ]
    assert [m["subject"] for m in stack.sent(scenario_id=scenario_id, profile_id="bob")] == [
        "Nothing happened"
    ]


# --- contact signals: via an import, once under redelivery -----------------------------------


def test_an_import_announces_an_address_changed_only_from_one_value_to_another(
    stack: Stack,
) -> None:
    listeners = listen(stack, "email.changed")
    imported(stack, ("ada", person("ada")), ("bob", {**person("bob"), "email": None}))
    assert stack.instances("ada", listeners.on) == []  # created with it: not a change
    enter(stack, listeners, "ada")
    enter(stack, listeners, "bob")

    imported(stack, ("bob", {"email": "bob@example.com"}))  # first filled
    assert heard(stack, listeners, "bob") == NOT_HEARD
    imported(stack, ("ada", {"email": "ada@new.example"}))
    assert heard(stack, listeners, "ada") == HEARD
    assert signal_data(stack, listeners, "ada") == [
        {"old": "ada@example.com", "new": "ada@new.example", "derived": True}
    ]


def test_a_contact_signal_redelivered_after_a_crash_is_heard_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    listeners = listen(stack, "email.changed")
    stack.upsert("ada", person("ada"))
    enter(stack, listeners, "ada")
    original = events.process
    crashed: list[str] = []

    def crashing(message: EventMessage, *args: Any, **kwargs: Any) -> None:
        original(message, *args, **kwargs)
        if message.event.type == "email.changed" and not crashed:
            crashed.append(message.event.type)
            raise RuntimeError("the consumer died after its work")

    monkeypatch.setattr(events, "process", crashing)
    stack.upsert("ada", {"email": "ada@new.example"})
    stack.drain()
    stack.advance("PT20M")  # the message comes back after its visibility timeout
    assert crashed == ["email.changed"]
    assert heard(stack, listeners, "ada") == HEARD
    assert len(stack.sent(scenario_id=listeners.on)) == 1


def test_an_upsert_of_an_address_still_announces_profile_field_changed(stack: Stack) -> None:
    changed, field_changed = listen(stack, "email.changed"), listen(stack, "profile.field_changed")
    stack.upsert("ada", person("ada"))
    enter(stack, changed, "ada")
    enter(stack, field_changed, "ada")

    stack.upsert("ada", {"email": "ada@new.example"})

    assert heard(stack, changed, "ada") == HEARD
    assert heard(stack, field_changed, "ada") == HEARD
    assert signal_data(stack, field_changed, "ada") == [
        {"fields": {"email": {"old": "ada@example.com", "new": "ada@new.example"}},
         "source": "api"}
    ]  # fmt: skip


def test_a_code_issued_by_a_step_redelivered_after_a_crash_is_announced_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.put("/promo-pools/SPRING", {"codes": ["A", "B"]})
    stack.create(
        scenario({"code": {"type": "promo_code", "pool": "SPRING", "next": "mail"},
                  "mail": email("Your code {{ vars.promo_code }}")},
                 [on_event("give_code", "code")], name="Give a code")
    )  # fmt: skip
    listeners = listen(stack, "promo_code.issued")
    stack.upsert("ada", person("ada"))
    enter(stack, listeners, "ada")
    original = steps.process
    crashed: list[str] = []

    def crashing(message: StepMessage, *args: Any, **kwargs: Any) -> None:
        original(message, *args, **kwargs)
        if isinstance(message, PromoRequest) and not crashed:
            crashed.append(message.pool)
            raise RuntimeError("the worker died after its work")

    monkeypatch.setattr(steps, "process", crashing)
    stack.event("give_code", "ada")
    stack.drain()
    stack.advance("PT20M")  # the message comes back after its visibility timeout

    assert crashed == ["SPRING"]
    assert heard(stack, listeners, "ada") == HEARD
    assert [d["code"] for d in signal_data(stack, listeners, "ada")] == ["A"]
    assert [m["subject"] for m in stack.sent(profile_id="ada", node="mail")] == ["Your code A"]
    assert stack.get("/promo-pools/SPRING") == {"pool": "SPRING", "left": 1}


# --- merges: lists and orders, redelivered merge messages -----------------------------------


ORDER = {"order_id": "o-1", "status": "paid", "total": 30,
         "items": [{"item_id": "i1", "product_id": "p2", "quantity": 1, "price": 30,
                    "status": "paid"}]}  # fmt: skip


def test_a_merge_moves_lists_and_orders_and_their_signals_follow_into(stack: Stack) -> None:
    stack.put("/products/p1", {"price": 100, "available": True})
    dropped = stack.create(
        scenario({"hi": email("Cheaper now")}, [on_event("product.price_dropped", "hi")],
                 name="Price drop", reentry="parallel")
    )  # fmt: skip
    stack.upsert("ada", person("ada", 1))
    stack.upsert("bob", person("bob", 2))
    stack.event("favorites.item_added", "bob", data={"product_id": "p1", "quantity": 1})
    stack.event("order.created", "bob", data=ORDER)
    stack.drain()

    stack.post("/profiles/customers/merge", {"into": "ada", "from": ["bob"]})
    stack.drain()

    favorites = stack.get("/profiles/customers/ada/lists/favorites")["items"]
    assert [(line["product_id"], line["price"]) for line in favorites] == [("p1", 100)]
    storage = services().storage
    kept = storage.order("customers", "ada", "o-1")
    assert kept is not None
    assert kept.state.status == "paid"
    assert storage.order("customers", "bob", "o-1") is None

    stack.put("/products/p1", {"price": 80})
    stack.drain()
    (drop,) = stack.sent(scenario_id=dropped)
    assert (drop["profile_id"], drop["to"]) == ("ada", "ada@example.com")
    (journey,) = stack.instances("ada", dropped)
    assert (journey.entry.data["product_id"], journey.entry.data["source"]) == ("p1", "favorites")


def merged_rows(profile_id: str) -> list[dict[str, Any]]:
    partition = store.profile_partition("customers", profile_id)
    return [
        row
        for row in store.profiles.query("pk = :pk", values={":pk": partition})
        if row["sk"].startswith("E#") and row.get("type") == "profile.merged"
    ]


def test_a_merge_message_delivered_twice_and_again_later_merges_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.create(scenario({"hello": email("Hello", "wait"), "wait": pause("P3D")},
                          [on_event("signup", "hello")]))  # fmt: skip
    for number, profile_id in enumerate(("ada", "bob"), 1):
        stack.upsert(profile_id, person(profile_id, number))
        stack.event("signup", profile_id)
        stack.drain()
        stack.advance("PT1H")

    def dying(self: DynamoStorage, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the function died")

    body = {"into": "ada", "from": ["bob"]}
    with monkeypatch.context() as patched:
        patched.setattr(DynamoStorage, "fold_profile", dying)
        stack.post("/profiles/customers/merge", body, status=500)
    merge_id = merges.merge_id("customers", "ada", ["bob"])
    message = Merge(merge_id=merge_id, row_id=f"merge-{merge_id}")
    services().queues.send("steps", [(message, 0), (message, 0)])  # at least once
    stack.drain()
    services().queues.send("steps", [(message, 0)])  # and once more after it was done
    stack.drain()
    stack.advance("PT5M")  # nothing left for the sweeper to resend

    assert stack.fields("ada")["first_name"] == "Ada"
    assert sorted((i.status, i.reason or "") for i in stack.instances("ada")) == [
        ("active", ""), ("exited", "merged"),
    ]  # fmt: skip
    assert stack.instances("bob") == []
    assert len(merged_rows("ada")) == 1
    assert stack.post("/profiles/customers/merge", body)["merged"] == ["bob"]
    stack.drain()
    assert len(merged_rows("ada")) == 1


def test_a_price_drop_reaches_a_profile_that_also_ordered_the_product(stack: Stack) -> None:
    stack.put("/products/p2", {"price": 30, "available": True})
    dropped = stack.create(
        scenario({"hi": email("Cheaper now")}, [on_event("product.price_dropped", "hi")],
                 name="Price drop")
    )  # fmt: skip
    stack.upsert("ada", person("ada"))
    stack.event("favorites.item_added", "ada", data={"product_id": "p2", "quantity": 1})
    stack.event("order.created", "ada", data=ORDER)
    stack.drain()
    stack.advance("PT1H")

    stack.put("/products/p2", {"price": 20})
    stack.drain()

    (journey,) = stack.instances("ada", dropped)
    assert journey.entry.data["last_ordered_at"] == "2026-06-10T10:00:00Z"


# --- promo codes: announced once however the request is retried ------------------------------


def test_a_redemption_cut_short_before_its_announcement_is_announced_on_retry(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.put("/promo-pools/SPRING", {"codes": ["A"]})
    listeners = listen(stack, "promo_code.redeemed")
    stack.upsert("ada", person("ada"))
    enter(stack, listeners, "ada")
    redemption = {"code": "A", "profile_db": "customers", "profile_id": "ada"}

    def dying(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the function died")

    with monkeypatch.context() as patched:
        patched.setattr(promo, "publish", dying)
        stack.post("/promo-pools/SPRING/redeem", redemption, status=500)
    stack.post("/promo-pools/SPRING/redeem", redemption, status=(200, 409))  # a retry
    stack.advance("PT5M")

    assert heard(stack, listeners, "ada") == HEARD
