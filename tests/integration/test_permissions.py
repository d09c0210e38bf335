"""SPEC §5: nothing works on the local stack or in the tests that the packaged template's
role would refuse on AWS.

Every AWS request the functions' code makes during a test run is recorded (a hook in
`chalicelib/adapters/aws.py`, the recorder in `tests/permissions.py`); the last test of
the run checks each one, as IAM would, against the role `infra/template.py` packages.
The other tests here pin the evaluation itself and the requests of code paths the
suites reach only rarely.
"""

from __future__ import annotations

import pytest

from chalicelib.adapters.aws import client
from chalicelib.adapters.queues import send
from chalicelib.config import QUEUES
from chalicelib.local.stack import Pump
from chalicelib.runtime import dead_letters, profiles, schedules
from infra.resources import dead_letter_name
from tests.conftest import ROLE_CHECK
from tests.permissions import (
    Recorder,
    Request,
    Role,
    arn_matches,
    packaged_role,
    recording,
    refused,
    requests_of,
)


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:us-east-1:123456789012:{resource}"


def table(name: str) -> str:
    return arn("dynamodb", f"table/scenaria-test-{name}")


def queue(name: str) -> str:
    return arn("sqs", f"scenaria-test-{name}")


# --- the evaluation ------------------------------------------------------------------------


def test_wildcards_match_as_iam_matches_them() -> None:
    assert arn_matches("*", table("profiles"))
    assert arn_matches(f"{table('instances')}/index/*", f"{table('instances')}/index/by_node")
    assert not arn_matches(table("instances"), f"{table('instances')}/index/by_node")
    assert arn_matches("arn:aws:sqs:*:*:scenaria-test-?vents", queue("events"))
    assert not arn_matches("arn:aws:sqs:*:*:scenaria-test-events", queue("events-dlq"))
    role = Role(({"Effect": "Allow", "Action": "DynamoDB:Get*", "Resource": table("p*")},))
    assert role.allows(Request("dynamodb:GetItem", table("profiles")))
    assert not role.allows(Request("dynamodb:PutItem", table("profiles")))
    assert not role.allows(Request("dynamodb:GetItem", table("stats")))


def test_not_resource_deny_and_conditions() -> None:
    role = Role(
        (
            {"Effect": "Allow", "Action": "sns:Publish", "NotResource": "arn:aws:sns:*:*:*"},
            {"Effect": "Allow", "NotAction": "sqs:Delete*", "Resource": queue("*")},
            {"Effect": "Deny", "Action": "sqs:*", "Resource": queue("*-dlq")},
            {
                "Effect": "Allow",
                "Action": "ses:SendEmail",
                "Resource": "*",
                "Condition": {"StringLike": {"ses:FromAddress": "*@shop.example"}},
            },
        )
    )
    assert role.allows(Request("sns:Publish", "*"))  # an SMS to a phone number
    assert not role.allows(Request("sns:Publish", arn("sns", "some-topic")))
    assert role.allows(Request("sqs:SendMessage", queue("events")))
    assert not role.allows(Request("sqs:DeleteMessage", queue("events")))
    assert not role.allows(Request("sqs:SendMessage", queue("events-dlq")))
    allowed = Request("ses:SendEmail", "x", (("ses:FromAddress", "news@shop.example"),))
    assert role.allows(allowed)
    assert not role.allows(Request("ses:SendEmail", "x", (("ses:FromAddress", "a@b.example"),)))
    assert not role.allows(Request("ses:SendEmail", "x"))  # the key is missing


def test_requests_are_the_actions_iam_authorises() -> None:
    writes = requests_of(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "scenaria-test-instances"}},
                {"ConditionCheck": {"TableName": "scenaria-test-idempotency"}},
            ]
        },
    )
    assert [str(r) for r in writes] == [
        f"dynamodb:PutItem on {table('instances')}",
        f"dynamodb:ConditionCheckItem on {table('idempotency')}",
    ]
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/scenaria-test-email"
    (batch,) = requests_of("sqs", "SendMessageBatch", {"QueueUrl": url, "Entries": []})
    assert str(batch) == f"sqs:SendMessage on {queue('email')}"
    (sms,) = requests_of("sns", "Publish", {"PhoneNumber": "+14155550100", "Message": "hi"})
    assert sms.resource == "*"


# --- code paths, each checked on its own ------------------------------------------------


def check(recorder: Recorder) -> None:
    assert recorder.seen, "the code made no AWS request"
    assert not refused(recorder), "the packaged role refuses:\n" + "\n".join(refused(recorder))


@pytest.mark.usefixtures("aws_stack")
def test_a_profile_import_is_allowed() -> None:
    with recording() as recorder:
        profiles.import_profiles("customers", [("ada", {"first_name": "Ada"})])
        profiles.import_profiles("customers", [("ada", {"first_name": "Ada L."})])
    assert any(r.action == "dynamodb:BatchGetItem" for r in recorder.seen)
    check(recorder)


@pytest.mark.usefixtures("aws_stack")
def test_a_segment_fan_out_is_allowed() -> None:
    with recording() as recorder:
        assert schedules.scan_segments() >= 1
    assert [r.action for r in recorder.seen] == ["dynamodb:DescribeTable"]
    check(recorder)


@pytest.mark.usefixtures("aws_stack")
def test_reading_and_redriving_a_dead_letter_queue_is_allowed() -> None:
    send(dead_letter_name("events"), {"kind": "parked"})
    with recording() as recorder:
        dead_letters.depths()
        dead_letters.redrive("events")
    moves = [r for r in recorder.seen if r.action == "sqs:StartMessageMoveTask"]
    assert [r.resource for r in moves] == [queue(dead_letter_name("events"))]
    assert Request("sqs:SendMessage", queue("events")) in recorder.seen
    check(recorder)


@pytest.mark.usefixtures("aws_stack")
def test_calls_of_the_tests_and_the_local_stack_are_not_the_functions() -> None:
    with recording() as recorder:
        client("sns").list_topics()  # a test looking for the feedback topic
        send("events", {"kind": "test"})  # a test using an adapter
        Pump("events", lambda event, context: None, 10).run_once()  # Lambda's poller
    assert not recorder.seen


def test_lambda_event_sources_get_what_they_need() -> None:
    """Lambda polls each consumed queue with the function's role (not recorded: the local
    stack's pumps stand in for it)."""
    role = packaged_role()
    for name in QUEUES:
        for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes"):
            assert role.allows(Request(f"sqs:{action}", queue(name))), (action, name)


def test_the_role_reaches_the_stage_queues_and_no_other() -> None:
    role = packaged_role()
    for name in QUEUES:
        assert role.allows(Request("sqs:SendMessage", queue(name)))
        assert role.allows(Request("sqs:GetQueueUrl", queue(dead_letter_name(name))))
        # nothing but a redrive, which sends to the queue, writes to a dead-letter queue
        assert not role.allows(Request("sqs:SendMessage", queue(dead_letter_name(name))))
    assert not role.allows(Request("sqs:SendMessage", arn("sqs", "scenaria-test-eu-events")))
    # the stage's own secrets (read only on AWS: the tests give the key in the environment)
    for name in ("api-key", "vapid-private-key"):
        (read,) = requests_of("ssm", "GetParameter", {"Name": f"/scenaria/test/{name}"})
        assert role.allows(read)
    (other,) = requests_of("ssm", "GetParameter", {"Name": "/scenaria/test-eu/api-key"})
    assert not role.allows(other)


def test_every_request_the_suites_made_is_allowed_by_the_role(
    functions_requests: Recorder,
) -> None:
    """Run last (tests/conftest.py): every request recorded during this run."""
    assert test_every_request_the_suites_made_is_allowed_by_the_role.__name__ == ROLE_CHECK
    if not functions_requests.seen:
        pytest.skip("no test before this one made an AWS request")
    problems = refused(functions_requests)
    assert not problems, "the packaged role refuses what the code does:\n" + "\n".join(problems)
