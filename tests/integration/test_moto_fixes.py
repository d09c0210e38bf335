"""moto's answers are the same with the local stack's changes (`chalicelib/local/moto_fixes.py`)
as without them: queries of tables and global indexes (conditions, filters, order, limits,
pages) and scans, before and after writes that move items between index partitions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.adapters.aws import client
from chalicelib.config import settings
from chalicelib.local import moto_fixes

Request = tuple[str, dict[str, Any]]  # ("query" or "scan", arguments but the table)


@pytest.fixture
def dynamodb(aws_stack: None) -> Iterator[Any]:
    yield client("dynamodb")
    moto_fixes.install()


def table(name: str) -> str:
    return settings().table(name)


def every_page(dynamodb: Any, operation: str, arguments: dict[str, Any]) -> list[Any]:
    pages, arguments = [], dict(arguments)
    while True:
        page = getattr(dynamodb, operation)(**arguments)
        pages.append(
            (page["Items"], page["Count"], page["ScannedCount"], page.get("LastEvaluatedKey"))
        )
        if "LastEvaluatedKey" not in page:
            return pages
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def unpatched(answer: Callable[[], Any]) -> Any:
    moto_fixes.uninstall()
    try:
        return answer()
    finally:
        moto_fixes.install()


def instance(n: int, **extra: Any) -> dict[str, Any]:
    item = {
        "instance_id": {"S": f"i{n:03d}"},
        "profile_key": {"S": f"customers#p{n % 4}"},
        "live_key": {"S": f"s{n % 3}#{n:03d}"},
        "n": {"N": str(n)},
    }
    if n % 5:  # a sparse index: some are in no partition of it
        item["node_key"] = {"S": f"s{n % 3}#wait"}
        item["node_entered_at"] = {"S": f"2026-06-{1 + n % 20:02d}T10:00:00Z"}
    return {**item, **extra}


REQUESTS: list[Request] = [
    ("query", {"IndexName": "by_profile", "KeyConditionExpression": "profile_key = :p",
               "ExpressionAttributeValues": {":p": {"S": "customers#p1"}}}),
    ("query", {"IndexName": "by_profile", "KeyConditionExpression":
               "profile_key = :p AND begins_with(live_key, :s)",
               "ExpressionAttributeValues": {":p": {"S": "customers#p2"}, ":s": {"S": "s1#"}},
               "Limit": 3}),
    ("query", {"IndexName": "by_node", "KeyConditionExpression": "node_key = :k AND "
               "node_entered_at > :t", "ScanIndexForward": False, "Limit": 4,
               "FilterExpression": "n > :n", "ExpressionAttributeValues": {
                   ":k": {"S": "s0#wait"}, ":t": {"S": "2026-06-05"}, ":n": {"N": "10"}}}),
    ("query", {"IndexName": "by_node", "KeyConditionExpression": "node_key = :k",
               "ExpressionAttributeValues": {":k": {"S": "nowhere"}}}),
    ("query", {"KeyConditionExpression": "instance_id = :i",
               "ExpressionAttributeValues": {":i": {"S": "i007"}}}),
    ("scan", {"FilterExpression": "n < :n", "ExpressionAttributeValues": {":n": {"N": "20"}},
              "Limit": 7}),
    ("scan", {"IndexName": "by_node", "FilterExpression": "attribute_exists(moved)"}),
    ("scan", {}),
    ("scan", {"Segment": 1, "TotalSegments": 3, "Limit": 4}),
    ("scan", {"Segment": 0, "TotalSegments": 2, "FilterExpression": "n > :n",
              "ExpressionAttributeValues": {":n": {"N": "12"}}, "Limit": 3}),
]  # fmt: skip
PROFILE_REQUESTS: list[Request] = [
    ("query", {"KeyConditionExpression": "pk = :p AND begins_with(sk, :e)", "Limit": 2,
               "ExpressionAttributeValues": {":p": {"S": "customers#ada"}, ":e": {"S": "E#"}}}),
    ("query", {"KeyConditionExpression": "pk = :p", "ScanIndexForward": False,
               "FilterExpression": "attribute_not_exists(gone)",
               "ExpressionAttributeValues": {":p": {"S": "customers#ada"}}}),
    ("query", {"KeyConditionExpression": "pk = :p",
               "ExpressionAttributeValues": {":p": {"S": "customers#nobody"}}}),
    ("scan", {"FilterExpression": "begins_with(sk, :m)",
              "ExpressionAttributeValues": {":m": {"S": "M#"}}, "Limit": 5}),
    ("scan", {"Limit": 3}),
    ("scan", {"Segment": 1, "TotalSegments": 2, "FilterExpression": "sk = :p",
              "ExpressionAttributeValues": {":p": {"S": "P"}}, "Limit": 4}),
]  # fmt: skip


def answers(dynamodb: Any) -> list[Any]:
    return [
        every_page(dynamodb, operation, {"TableName": table(name), **arguments})
        for name, requests in (("instances", REQUESTS), ("profiles", PROFILE_REQUESTS))
        for operation, arguments in requests
    ]


def test_queries_and_scans_answer_as_moto_does_before_and_after_writes(dynamodb: Any) -> None:
    for n in range(40):
        dynamodb.put_item(TableName=table("instances"), Item=instance(n))
    for sk in ["P", *(f"E#{n:02d}" for n in range(9)), *(f"M#{n}" for n in range(4))]:
        for pk in ("customers#ada", "customers#bob"):
            dynamodb.put_item(TableName=table("profiles"), Item={"pk": {"S": pk}, "sk": {"S": sk}})
    before = answers(dynamodb)  # the partition maps are made here, then kept up to date
    assert before == unpatched(lambda: answers(dynamodb))

    instances = table("instances")
    dynamodb.update_item(  # moves between partitions of both indexes, in place
        TableName=instances,
        Key={"instance_id": {"S": "i001"}},
        UpdateExpression="SET profile_key = :p, node_key = :k, moved = :y",
        ExpressionAttributeValues={
            ":p": {"S": "customers#p2"}, ":k": {"S": "s0#wait"}, ":y": {"BOOL": True}},
    )  # fmt: skip
    dynamodb.update_item(  # leaves the sparse index
        TableName=instances, Key={"instance_id": {"S": "i002"}}, UpdateExpression="REMOVE node_key"
    )
    dynamodb.update_item(  # a new item, made by an update
        TableName=instances,
        Key={"instance_id": {"S": "i900"}},
        UpdateExpression="SET profile_key = :p, live_key = :s",
        ExpressionAttributeValues={":p": {"S": "customers#p1"}, ":s": {"S": "s1#900"}},
    )
    dynamodb.put_item(TableName=instances, Item=instance(3, profile_key={"S": "customers#p1"}))
    dynamodb.delete_item(TableName=instances, Key={"instance_id": {"S": "i005"}})
    dynamodb.batch_write_item(
        RequestItems={
            instances: [
                {"PutRequest": {"Item": instance(41)}},
                {"DeleteRequest": {"Key": {"instance_id": {"S": "i009"}}}},
            ]
        }
    )
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": instances, "Item": instance(42)}},
            {"Update": {"TableName": instances, "Key": {"instance_id": {"S": "i013"}},
                        "UpdateExpression": "SET node_key = :k",
                        "ExpressionAttributeValues": {":k": {"S": "s2#wait"}}}},
            {"Delete": {"TableName": instances, "Key": {"instance_id": {"S": "i017"}}}},
        ]
    )  # fmt: skip
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(  # cancelled: every item is put back as it was
            TransactItems=[
                {"Update": {"TableName": instances, "Key": {"instance_id": {"S": "i021"}},
                            "UpdateExpression": "SET profile_key = :p",
                            "ExpressionAttributeValues": {":p": {"S": "customers#p3"}}}},
                {"Put": {"TableName": instances, "Item": instance(22),
                         "ConditionExpression": "attribute_not_exists(instance_id)"}},
            ]
        )  # fmt: skip
    dynamodb.delete_item(TableName=table("profiles"), Key={"pk": {"S": "customers#ada"},
                                                           "sk": {"S": "E#03"}})  # fmt: skip

    after = answers(dynamodb)
    assert after == unpatched(lambda: answers(dynamodb))
    assert after != before
    moved = after[0][0][0]
    assert {"S": "i001"} not in [item["instance_id"] for item in moved]  # no longer p1's


def test_a_scan_copies_only_the_items_its_filter_keeps(dynamodb: Any) -> None:
    from moto.dynamodb.models.dynamo_type import Item

    for n in range(30):
        dynamodb.put_item(TableName=table("instances"), Item=instance(n))
    copies = []
    deepcopy = Item.__deepcopy__

    def counted(self: Any, memo: dict[int, Any]) -> Any:
        copies.append(self)
        return deepcopy(self, memo)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Item, "__deepcopy__", counted)
        answer = dynamodb.scan(
            TableName=table("instances"),
            FilterExpression="n < :n",
            ExpressionAttributeValues={":n": {"N": "3"}},
        )
    assert answer["Count"] == 3
    assert answer["ScannedCount"] == 30
    assert len(copies) == 3


def test_a_scan_page_reads_from_its_start_key_not_from_the_table_s_first_item(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.table import Table

    profiles = table("profiles")
    for n in range(150):
        for sk in ("P", "E#1", "E#2"):
            item = {"pk": {"S": f"customers#p{n:03d}"}, "sk": {"S": sk}}
            dynamodb.put_item(TableName=profiles, Item=item)
    start = {"pk": {"S": "customers#p120"}, "sk": {"S": "P"}}  # its last item
    walked: list[Any] = []
    original = Table._item_comes_before_dct

    def counted(self: Any, item: Any, *args: Any) -> bool:
        walked.append(item)
        return bool(original(self, item, *args))

    monkeypatch.setattr(Table, "_item_comes_before_dct", counted)
    page = dynamodb.scan(TableName=profiles, ExclusiveStartKey=start, Limit=2)
    assert [item["pk"]["S"] for item in page["Items"]] == ["customers#p121"] * 2
    assert len(walked) == 4  # its partition and the next item, not the 360 items before them


def test_queue_attributes_answer_as_moto_does(aws_stack: None) -> None:
    from chalicelib.adapters.queues import queue_url, send

    sqs = client("sqs")
    for n in range(3):
        send("sms", {"n": n})
    sqs.receive_message(QueueUrl=queue_url("sms"), MaxNumberOfMessages=1)
    names = [
        ["All"],
        ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        ["QueueArn", "RedrivePolicy", "VisibilityTimeout"],
    ]

    def answers() -> list[Any]:
        return [
            sqs.get_queue_attributes(QueueUrl=queue_url("sms"), AttributeNames=asked)["Attributes"]
            for asked in names
        ]

    patched = answers()
    assert patched == unpatched(answers)
    assert patched[1] == {
        "ApproximateNumberOfMessages": "2",
        "ApproximateNumberOfMessagesNotVisible": "1",
    }


def test_item_reads_and_writes_answer_as_moto_does(dynamodb: Any) -> None:
    """Both runs start from the same items and make the same calls: the same answers."""
    instances, profiles = table("instances"), table("profiles")

    def calls() -> list[Any]:
        for n in range(3):
            dynamodb.put_item(TableName=instances, Item=instance(n, tags={"SS": ["a", "b"]}))
        key = {"instance_id": {"S": "i001"}}
        answers = [
            dynamodb.get_item(TableName=instances, Key=key),
            dynamodb.get_item(TableName=instances, Key={"instance_id": {"S": "nobody"}}),
            dynamodb.get_item(TableName=instances, Key=key, ProjectionExpression="n, tags"),
            dynamodb.put_item(
                TableName=instances, Item=instance(1, flag={"BOOL": True}), ReturnValues="ALL_OLD"
            ),
            dynamodb.update_item(
                TableName=instances, Key=key, UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW",
                ReturnConsumedCapacity="TOTAL",
            ),
            dynamodb.update_item(
                TableName=instances, Key=key, UpdateExpression="SET m = :m",
                ExpressionAttributeValues={":m": {"M": {"x": {"NULL": True}, "y": {"L": []}}}},
            ),
            dynamodb.batch_get_item(RequestItems={instances: {"Keys": [key, {"instance_id": {"S": "i002"}}]}}),
            dynamodb.transact_write_items(TransactItems=[
                {"Put": {"TableName": profiles, "Item": {"pk": {"S": "p"}, "sk": {"S": "P"}}}},
                {"Delete": {"TableName": instances, "Key": {"instance_id": {"S": "i000"}}}},
            ]),
            dynamodb.delete_item(TableName=instances, Key=key, ReturnValues="ALL_OLD"),
            dynamodb.batch_write_item(RequestItems={profiles: [
                {"DeleteRequest": {"Key": {"pk": {"S": "p"}, "sk": {"S": "P"}}}}
            ]}),
        ]  # fmt: skip
        try:
            dynamodb.put_item(
                TableName=instances, Item=instance(2), ConditionExpression="attribute_not_exists(n)"
            )
        except dynamodb.exceptions.ConditionalCheckFailedException as refused:
            answers.append(refused.response["Error"])
        for answer in answers:
            answer.pop("ResponseMetadata", None)
        return answers

    patched = calls()
    assert patched == unpatched(calls)
    assert patched[0]["Item"]["tags"] == {"SS": ["a", "b"]}
    assert patched[-1]["Code"] == "ConditionalCheckFailedException"
