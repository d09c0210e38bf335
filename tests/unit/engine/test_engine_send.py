"""The send node: rendering, message ids, consent, addresses, quiet hours, frequency cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.engine import (
    ACTIVE,
    COMPLETED,
    ERROR,
    CountStat,
    Exit,
    Send,
    SendSkipped,
    SetTimer,
    WakeUp,
    advance,
    message_id,
)
from chalicelib.scenarios.facts import Message
from chalicelib.scenarios.validation import check_scenario

MAIL = {
    "type": "send",
    "channel": "email",
    "template": {
        "subject": "Welcome, {{ profile.first_name }}",
        "body": "Order {{ event.data.order_id }} in {{ scenario.name }}",
        "html": "<p>{{ profile.first_name }}</p>",
        "from": "shop@example.com",
    },
    "next": "done",
}
DONE = {"type": "exit"}


def sent_message(at: datetime, channel: str = "email", node: str = "old") -> Message:
    return Message(f"m-{at.isoformat()}-{channel}", "other", node, channel, at, {"sent": at})


def test_send_renders_the_template_for_the_profile(
    make_scenario, make_profile, make_event, enter, now, pick, path_of
):
    scenario = make_scenario({"mail": MAIL, "done": DONE})
    event = make_event("order.created", data={"order_id": "A-17"})

    step = enter(scenario, make_profile(first_name="Grace"), event).steps[-1]

    [send] = pick(step, Send)
    assert send.channel == "email"
    assert send.to == "ada@example.com"
    assert send.subject == "Welcome, Grace"
    assert send.body == "Order A-17 in Test scenario"
    assert send.html == "<p>Grace</p>"
    assert send.sender == "shop@example.com"
    assert send.node == "mail"
    assert send.instance_id == "i1"
    assert send.deliver_at is None  # goes out now
    assert pick(step, SendSkipped) == []
    assert path_of(step)[0] == ("mail", "sent")
    assert step.instance.status == COMPLETED


def test_html_template_escapes_profile_data(make_scenario, make_profile, enter, pick):
    scenario = make_scenario({"mail": MAIL, "done": DONE})

    step = enter(scenario, make_profile(first_name="<script>")).steps[-1]

    [send] = pick(step, Send)
    assert send.html == "<p>&lt;script&gt;</p>"
    assert send.subject == "Welcome, <script>"  # plain text is not escaped


def test_the_sent_message_joins_the_profile_view(make_scenario, make_profile, enter, now, pick):
    scenario = make_scenario({"mail": MAIL, "done": DONE})
    profile = make_profile()

    step = enter(scenario, profile).steps[-1]

    [send] = pick(step, Send)
    [message] = step.profile.messages
    assert message.message_id == send.message_id
    assert (message.node, message.channel, message.scenario_id) == ("mail", "email", "s1")
    assert message.statuses == {"sent": now}
    assert profile.messages == []  # the caller's profile is left alone


def test_message_id_is_deterministic_per_node_visit(make_scenario, make_profile, make_event, enter):
    scenario = make_scenario({"mail": MAIL, "done": DONE})
    event = make_event(id="evt-fixed")

    first = enter(scenario, make_profile(), event).steps[-1]
    again = enter(scenario, make_profile(), event).steps[-1]
    other = enter(scenario, make_profile(), event, instance_id="i2").steps[-1]

    [sent] = [e for e in first.effects if isinstance(e, Send)]
    [resent] = [e for e in again.effects if isinstance(e, Send)]
    [other_send] = [e for e in other.effects if isinstance(e, Send)]
    assert sent.message_id == resent.message_id
    assert sent.message_id == message_id("i1", 1) == "i1-1"
    assert other_send.message_id != sent.message_id


def test_each_visit_of_a_send_in_a_loop_has_its_own_message_id(
    make_scenario, make_profile, enter, now, pick
):
    scenario = make_scenario(
        {
            "mail": {**MAIL, "next": "later"},
            "later": {"type": "pause", "duration": "P1D", "next": "mail"},
        }
    )
    profile = make_profile()
    first = enter(scenario, profile).steps[-1]
    [timer] = pick(first, SetTimer)

    second = advance(scenario, first.instance, first.profile, WakeUp(timer.step), timer.wake_at)

    [one] = pick(first, Send)
    [two] = pick(second, Send)
    assert one.message_id != two.message_id
    assert second.instance.status == ACTIVE


@pytest.mark.parametrize(
    "consents",
    [
        {"email": False, "sms": True},
        {"sms": True},
        {"email": "true"},  # only JSON true is consent
        None,
    ],
)
def test_send_without_consent_is_skipped_and_the_journey_goes_on(
    make_scenario, make_profile, enter, pick, path_of, consents
):
    scenario = make_scenario({"mail": MAIL, "done": DONE})

    step = enter(scenario, make_profile(consents=consents)).steps[-1]

    assert pick(step, Send) == []
    [skipped] = pick(step, SendSkipped)
    assert skipped.reason == "no_consent"
    assert skipped.node == "mail"
    assert path_of(step) == [("mail", "skipped: no_consent"), ("done", "exit")]
    assert step.profile.messages == []  # a skipped send is not a sent message


@pytest.mark.parametrize(
    ("channel", "fields"),
    [
        ("email", {"email": None}),
        ("email", {"email": "not-an-address"}),
        ("sms", {"phone": None}),
        ("sms", {"phone": "0415 555 0100"}),  # not E.164
        ("push", {"push": None}),
        ("push", {"push": [{"keys": {}}]}),  # a subscription without an endpoint
    ],
)
def test_send_without_a_valid_address_is_skipped(
    make_scenario, make_profile, enter, pick, channel, fields
):
    node = {"type": "send", "channel": channel, "template": {"body": "Hi"}}
    scenario = make_scenario({"send": node})

    step = enter(scenario, make_profile(**fields)).steps[-1]

    assert pick(step, Send) == []
    [skipped] = pick(step, SendSkipped)
    assert (skipped.channel, skipped.reason) == (channel, "no_address")
    assert step.instance.status == COMPLETED


def test_sms_goes_to_the_e164_phone(make_scenario, make_profile, enter, pick):
    node = {"type": "send", "channel": "sms", "template": {"body": "Code {{ vars.x }}!"}}
    scenario = make_scenario({"sms": node})

    [send] = pick(enter(scenario, make_profile()).steps[-1], Send)

    assert (send.channel, send.to, send.body) == ("sms", "+14155550100", "Code !")


def test_push_goes_to_every_subscription_with_its_ttl(make_scenario, make_profile, enter, pick):
    node = {
        "type": "send",
        "channel": "push",
        "ttl": "PT12H",
        "template": {"title": "Hi {{ profile.first_name }}", "url": "https://shop.example/"},
    }
    scenario = make_scenario({"push": node})
    subscriptions = [
        {"endpoint": "https://push.example/1", "keys": {"p256dh": "p", "auth": "a"}},
        {"no": "endpoint"},
    ]

    [send] = pick(enter(scenario, make_profile(push=subscriptions)).steps[-1], Send)

    assert send.to == [{"endpoint": "https://push.example/1", "keys": {"p256dh": "p", "auth": "a"}}]
    assert send.title == "Hi Ada"
    assert send.url == "https://shop.example/"
    assert send.ttl == timedelta(hours=12)


def test_to_overrides_the_recipient(make_scenario, make_profile, enter, pick):
    node = {**MAIL, "to": "{{ profile.manager }}", "next": None}
    scenario = make_scenario({"mail": node})

    [send] = pick(enter(scenario, make_profile(manager="boss@example.com")).steps[-1], Send)

    assert send.to == "boss@example.com"


def test_to_override_needs_no_consent_of_the_profile(make_scenario, make_profile, enter, pick):
    """A notice to a manager is not a message to the customer: their consent does not apply."""
    node = {**MAIL, "to": "boss@example.com", "next": None}
    scenario = make_scenario({"mail": node})

    step = enter(scenario, make_profile(consents={}, email=None)).steps[-1]

    [send] = pick(step, Send)
    assert send.to == "boss@example.com"


def test_to_override_rendering_empty_is_no_address(make_scenario, make_profile, enter, pick):
    node = {**MAIL, "to": "{{ profile.manager }}", "next": None}
    scenario = make_scenario({"mail": node})

    step = enter(scenario, make_profile()).steps[-1]

    assert pick(step, Send) == []
    assert [s.reason for s in pick(step, SendSkipped)] == ["no_address"]


# --- quiet hours ---------------------------------------------------------------------

QUIET = {"start": "21:00", "end": "09:00"}


@pytest.mark.parametrize(
    ("timezone", "deliver_at"),
    [
        # 02:00Z is 22:00 the evening before in New York: postponed to 09:00 EDT.
        ("America/New_York", datetime(2026, 6, 10, 13, tzinfo=UTC)),
        # ... and 04:00 in Berlin: postponed to 09:00 CEST the same morning.
        ("Europe/Berlin", datetime(2026, 6, 10, 7, tzinfo=UTC)),
        # ... and 11:00 in Tokyo: outside the window, it goes out now.
        ("Asia/Tokyo", None),
    ],
)
def test_quiet_hours_postpone_a_send_in_the_profiles_time_zone(
    make_scenario, make_profile, enter, pick, path_of, timezone, deliver_at
):
    scenario = make_scenario({"mail": MAIL, "done": DONE}, quiet_hours=QUIET)
    at = datetime(2026, 6, 10, 2, tzinfo=UTC)

    step = enter(scenario, make_profile(timezone=timezone), now=at).steps[-1]

    [send] = pick(step, Send)
    assert send.deliver_at == deliver_at
    if deliver_at is not None:
        assert path_of(step)[0] == ("mail", "queued for " + deliver_at.isoformat()[:19] + "Z")
    assert step.profile.messages[0].statuses["sent"] == (deliver_at or at)


def test_quiet_hours_use_the_scenario_time_zone_when_the_profile_has_none(
    make_scenario, make_profile, enter, pick
):
    scenario = make_scenario(
        {"mail": MAIL, "done": DONE}, quiet_hours=QUIET, timezone="America/New_York"
    )
    at = datetime(2026, 6, 10, 2, tzinfo=UTC)

    for fields in ({}, {"timezone": "Mars/Olympus"}):
        [send] = pick(enter(scenario, make_profile(**fields), now=at).steps[-1], Send)
        assert send.deliver_at == datetime(2026, 6, 10, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "deliver_at"),
    [
        (datetime(2026, 6, 10, 11, 59, tzinfo=UTC), None),
        (datetime(2026, 6, 10, 12, tzinfo=UTC), datetime(2026, 6, 10, 14, tzinfo=UTC)),
        (datetime(2026, 6, 10, 13, 30, tzinfo=UTC), datetime(2026, 6, 10, 14, tzinfo=UTC)),
        (datetime(2026, 6, 10, 14, tzinfo=UTC), None),  # the end is outside the window
    ],
)
def test_quiet_hours_within_one_day(make_scenario, make_profile, enter, pick, at, deliver_at):
    scenario = make_scenario(
        {"mail": MAIL, "done": DONE}, quiet_hours={"start": "12:00", "end": "14:00"}
    )

    [send] = pick(enter(scenario, make_profile(), now=at).steps[-1], Send)

    assert send.deliver_at == deliver_at


# --- frequency cap -------------------------------------------------------------------


def test_frequency_cap_skips_a_send_over_the_cap(make_scenario, make_profile, enter, now, pick):
    scenario = make_scenario(
        {"mail": MAIL, "done": DONE}, frequency_cap={"max": 2, "per": "P1D", "on_cap": "skip"}
    )
    recent = [sent_message(now - timedelta(hours=20)), sent_message(now - timedelta(hours=2))]

    step = enter(scenario, make_profile(messages=recent)).steps[-1]

    assert pick(step, Send) == []
    assert [s.reason for s in pick(step, SendSkipped)] == ["capped"]
    assert step.instance.status == COMPLETED


def test_frequency_cap_counts_only_the_window(make_scenario, make_profile, enter, now, pick):
    scenario = make_scenario({"mail": MAIL, "done": DONE}, frequency_cap={"max": 2, "per": "P1D"})
    messages = [sent_message(now - timedelta(hours=25)), sent_message(now - timedelta(hours=2))]

    step = enter(scenario, make_profile(messages=messages)).steps[-1]

    assert len(pick(step, Send)) == 1


def test_frequency_cap_per_channel_ignores_other_channels(
    make_scenario, make_profile, enter, now, pick
):
    scenario = make_scenario(
        {"mail": MAIL, "done": DONE}, frequency_cap={"max": 1, "per": "P1D", "channel": "sms"}
    )
    messages = [sent_message(now - timedelta(hours=1), channel="sms")] * 3

    step = enter(scenario, make_profile(messages=messages)).steps[-1]

    assert len(pick(step, Send)) == 1


def test_frequency_cap_delay_postpones_until_the_cap_allows(
    make_scenario, make_profile, enter, now, pick, path_of
):
    scenario = make_scenario(
        {"mail": MAIL, "done": DONE}, frequency_cap={"max": 2, "per": "P1D", "on_cap": "delay"}
    )
    recent = [sent_message(now - timedelta(hours=20)), sent_message(now - timedelta(hours=2))]

    step = enter(scenario, make_profile(messages=recent)).steps[-1]

    [send] = pick(step, Send)
    assert send.deliver_at == now + timedelta(hours=4)  # the oldest one leaves the window
    assert path_of(step)[0][1] == "queued for 2026-06-10T14:00:00Z"
    assert pick(step, SendSkipped) == []


def test_a_delayed_send_counts_against_the_cap_of_the_next_one(
    make_scenario, make_profile, enter, now, pick
):
    second = {**MAIL, "next": None}
    scenario = make_scenario(
        {"mail": {**MAIL, "next": "again"}, "again": second},
        frequency_cap={"max": 1, "per": "P1D", "on_cap": "delay"},
    )

    step = enter(scenario, make_profile()).steps[-1]

    first, then = pick(step, Send)
    assert first.deliver_at is None
    assert then.deliver_at == now + timedelta(days=1)


def test_a_capped_delay_into_quiet_hours_waits_for_their_end(
    make_scenario, make_profile, enter, now, pick
):
    scenario = make_scenario(
        {"mail": MAIL, "done": DONE},
        quiet_hours=QUIET,
        frequency_cap={"max": 1, "per": "PT12H", "on_cap": "delay"},
    )
    # The cap frees at 22:00 UTC, inside quiet hours: the message waits for 09:00.
    messages = [sent_message(now)]

    [send] = pick(enter(scenario, make_profile(messages=messages)).steps[-1], Send)

    assert send.deliver_at == datetime(2026, 6, 11, 9, tzinfo=UTC)


# --- what a message may hold ---------------------------------------------------------------

BIG = "x" * 150_000  # a profile field: one is fine, two in one message are too much


@pytest.mark.parametrize(
    "template",
    [
        {"subject": "Hi", "body": "{{ profile.bio }}", "html": "<p>{{ profile.bio }}</p>"},
        {"subject": "Hi", "body": "{{ profile.bio * 2 }}"},
        {"subject": "{% for i in range(3) %}{{ profile.bio }}{% endfor %}"},
        {"subject": "Hi", "body": "{{ profile.bio }}", "from": "{{ profile.bio }}@example.com"},
    ],
)
def test_a_send_that_renders_too_much_ends_the_journey_with_an_error(
    make_scenario, make_profile, enter, pick, path_of, template
):
    mail = {"type": "send", "channel": "email", "template": template, "next": "done"}
    scenario = make_scenario({"mail": mail, "done": DONE})

    step = enter(scenario, make_profile(bio=BIG)).steps[-1]

    assert pick(step, Send) == []
    assert pick(step, Exit) == [Exit("i1", ERROR, "render_limit", "mail")]
    assert CountStat("errors") in step.effects
    [(node, outcome)] = path_of(step)
    assert node == "mail"
    assert outcome.startswith("error: ")
    assert "more than 262144" in outcome


def test_a_message_is_measured_in_utf8_bytes(make_scenario, make_profile, enter, pick):
    mail = {"type": "send", "channel": "email", "template": {"body": "{{ profile.bio }}"}}
    scenario = make_scenario({"mail": mail})

    fits = enter(scenario, make_profile(bio="x" * 200_000)).steps[-1]
    too_large = enter(scenario, make_profile(bio="é" * 200_000)).steps[-1]  # 400,000 bytes

    assert [send.body for send in pick(fits, Send)] == ["x" * 200_000]
    assert (too_large.instance.status, too_large.instance.reason) == (ERROR, "render_limit")


def test_a_to_override_that_renders_too_much_is_an_error(make_scenario, make_profile, enter):
    mail = {
        "type": "send",
        "channel": "email",
        "to": "{{ profile.bio * 2 }}@example.com",
        "template": {"subject": "For your manager"},
    }
    scenario = make_scenario({"mail": mail})

    step = enter(scenario, make_profile(bio=BIG)).steps[-1]

    assert (step.instance.status, step.instance.reason) == (ERROR, "render_limit")


# --- recheck -------------------------------------------------------------------------

VIP = {"field": "profile.tier", "op": "eq", "value": "vip"}


def test_a_recheck_false_when_the_journey_reaches_the_send_skips_it(
    make_scenario, make_profile, enter, pick, path_of
):
    scenario = make_scenario({"mail": {**MAIL, "recheck": VIP}, "done": DONE})

    step = enter(scenario, make_profile(tier="basic")).steps[-1]

    assert pick(step, Send) == []
    assert [(s.node, s.reason) for s in pick(step, SendSkipped)] == [("mail", "recheck")]
    assert path_of(step)[0] == ("mail", "skipped: recheck")
    assert step.profile.messages == []


def test_a_send_with_a_recheck_that_holds_goes_out_marked_to_be_rechecked(
    make_scenario, make_profile, enter, pick
):
    plain = make_scenario({"mail": MAIL, "done": DONE})
    rechecked = make_scenario({"mail": {**MAIL, "recheck": VIP}, "done": DONE})

    [send] = pick(enter(rechecked, make_profile(tier="vip")).steps[-1], Send)
    [unmarked] = pick(enter(plain, make_profile(tier="vip")).steps[-1], Send)

    assert send.recheck is True
    assert unmarked.recheck is False


def test_a_recheck_sees_the_journeys_entry_event(
    make_scenario, make_profile, make_event, enter, pick
):
    recheck = {"field": "event.data.order_id", "op": "eq", "value": "A-17"}
    scenario = make_scenario({"mail": {**MAIL, "recheck": recheck}, "done": DONE})

    kept = enter(scenario, make_profile(), make_event(data={"order_id": "A-17"})).steps[-1]
    other = enter(scenario, make_profile(), make_event(data={"order_id": "B-2"})).steps[-1]

    assert len(pick(kept, Send)) == 1
    assert [s.reason for s in pick(other, SendSkipped)] == ["recheck"]


# --- variants ------------------------------------------------------------------------

LOCALISED = {
    **MAIL,
    "variants": {
        "de": {"subject": "Willkommen, {{ profile.first_name }}", "body": "Hallo"},
        "pt-BR": {"subject": "Bem-vinda", "body": "Olá"},
    },
}


@pytest.mark.parametrize(
    ("locale", "subject", "variant"),
    [
        ("de", "Willkommen, Ada", "de"),
        ("de-CH", "Willkommen, Ada", "de"),  # by language
        ("pt-BR", "Bem-vinda", "pt-BR"),
        ("pt_br", "Bem-vinda", "pt-BR"),
        ("pt", "Welcome, Ada", None),  # no telling it is Brazilian: the node's own
        ("fr", "Welcome, Ada", None),
        (None, "Welcome, Ada", None),
    ],
)
def test_the_variant_for_the_profiles_locale_is_sent(
    make_scenario, make_profile, enter, pick, locale, subject, variant
):
    scenario = make_scenario({"mail": LOCALISED, "done": DONE})

    [send] = pick(enter(scenario, make_profile(locale=locale)).steps[-1], Send)

    assert (send.subject, send.variant) == (subject, variant)


def test_a_variant_takes_the_parts_it_leaves_out_from_the_nodes_template(
    make_scenario, make_profile, enter, pick
):
    scenario = make_scenario({"mail": LOCALISED, "done": DONE})

    [send] = pick(enter(scenario, make_profile(locale="de")).steps[-1], Send)

    assert (send.subject, send.body) == ("Willkommen, Ada", "Hallo")
    assert (send.html, send.sender) == ("<p>Ada</p>", "shop@example.com")


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"variants": {"deutsch!": {"body": "x"}}}, "$.nodes.mail.variants", "pattern"),
        (
            {"variants": {"pt-BR": {"body": "x"}, "pt-br": {"body": "y"}}},
            "$.nodes.mail.variants",
            "name the same locale",
        ),
        ({"variants": {"de": {"body": "{{ oops"}}}, "$.nodes.mail.variants.de.body", "compile"),
        ({"variants": {"de": {"sender": "x"}}}, "$.nodes.mail.variants.de.sender", "unknown"),
        ({"recheck": {"field": "nowhere", "op": "eq", "value": 1}}, "$.nodes.mail.recheck", ""),
    ],
)
def test_variants_and_recheck_are_validated(change, path, message):
    document = {"name": "t", "entry": "mail", "nodes": {"mail": {**MAIL, "next": None, **change}}}
    _, problems = check_scenario(document)

    assert any(p.path.startswith(path) and message in p.message for p in problems), problems


def test_to_is_refused_on_a_push_send():
    push = {"type": "send", "channel": "push", "template": {"title": "Hi"}, "to": "x"}
    _, problems = check_scenario({"name": "t", "entry": "push", "nodes": {"push": push}})

    assert [p.path for p in problems] == ["$.nodes.push.to"]
