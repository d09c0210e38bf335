"""The local stack expires items as DynamoDB's TTL does, through its clock: a timer the
sweeper missed is deleted and its deletion, through the timers' stream, wakes the
instance; expired idempotency records go; what moto keeps of each message sent is
trimmed."""

from __future__ import annotations

import pytest

from chalicelib.adapters import store
from chalicelib.local import ttl
from tests.e2e.harness import Stack, email, on_event, person, scenario


def test_a_timer_the_sweeper_misses_is_expired_and_still_wakes_its_instance(
    stack: Stack,
) -> None:
    stack.create(
        scenario(
            {"wait": {"type": "pause", "duration": "PT1H", "next": "hello"}, "hello": email("Hi")},
            [on_event("signup", "wait")],
        )
    )
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.drain()
    instance_id = stack.instance("ada").instance_id
    # out of the sweeper's due-time index (a sparse index): only TTL can end this pause
    store.timers.update({"instance_id": instance_id}, "REMOVE #s", names={"#s": "shard"})

    stack.advance("PT2H")

    assert store.timers.get({"instance_id": instance_id}) is None
    assert [m["subject"] for m in stack.sent(profile_id="ada")] == ["Hi"]


def test_event_ids_are_forgotten_after_their_window(stack: Stack) -> None:
    stack.upsert("ada", person("ada"))
    assert stack.event("signup", "ada", event_id="e1")["accepted"] == 1
    assert stack.event("signup", "ada", event_id="e1")["duplicates"] == 1
    remembered = len(list(store.idempotency.scan()))

    stack.advance("P8D")  # the dedup window is 7 days

    assert len(list(store.idempotency.scan())) < remembered


def test_moto_keeps_only_the_latest_e_mails_sms_and_notifications(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    monkeypatch.setattr(ttl, "KEEP_SENT", 2)
    stack.create(
        scenario(
            {"hello": email("Hi", "text"), "text": {"type": "send", "channel": "sms",
                                                    "template": {"body": "Hi"}}},
            [on_event("signup", "hello")],
            reentry="parallel",
        )
    )  # fmt: skip
    for n in range(4):
        stack.upsert(f"p{n}", person(f"p{n}", number=n))
        stack.event("signup", f"p{n}")
    stack.drain()
    ses = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    sns = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    assert len(ses.sent_messages) == 4
    assert len(sns.sms_messages) == 4
    latest = ses.sent_messages[-1]

    stack.advance("PT1H")  # the stack's TTL runs every 15 minutes

    assert len(ses.sent_messages) == 2
    assert ses.sent_messages[-1] is latest
    assert len(sns.sms_messages) == 2
    assert all(len(topic.sent_notifications) <= 2 for topic in sns.topics.values())
    assert len(stack.sent()) == 8  # the stack's own records of what it sent are all there
