"""DynamoDB's Time to Live for the local stack: moto never expires an item.

Every table with a TTL attribute (`infra/resources.py`) loses the items whose attribute
is a moment past, by the stack's clock (virtual or real): expired timers, idempotency
records, events past the history's 400 days. As on AWS, a deletion reaches the table's
stream: the timers' TTL backstop (`timer_expired`) gets it as a REMOVE by the DynamoDB
service, and a timer the sweeper had not fired is woken.

moto keeps, besides, every model object it ever made (`instances_tracked`, for its
dashboard), each transaction's whole-table backup among them: a stack driven for an
hour held gigabytes of copies. Each reaping lets them go, and trims what moto keeps of
every e-mail, SMS and notification it was given (for tests to inspect; nothing on the
local stack reads them) to the latest `KEEP_SENT`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

Records = list[dict[str, Any]]
KEEP_SENT = 1000  # of each kind, newest last, as the push sink keeps its pushes


def reap(now: datetime, on_stream: Callable[[str, Records], None]) -> int:
    """Delete every item whose TTL attribute is before `now`; hand the deletions of a table
    with a stream to `on_stream(table's physical name, records)`. Returns how many went."""
    from moto.core.model_instances import reset_model_data

    from chalicelib.adapters.aws import client
    from chalicelib.config import settings
    from chalicelib.runtime.commit import epoch
    from infra.resources import TABLES

    dynamodb, removed = client("dynamodb"), 0
    for table in TABLES:
        if not table.ttl_attribute:
            continue
        name = settings().table(table.name)
        key_names = [table.hash_key, *([table.range_key] if table.range_key else [])]
        records = []
        for item in _expired(name, table.ttl_attribute, epoch(now)):
            key = {attribute: item[attribute] for attribute in key_names}
            try:  # only if it is still expired: a write since may have moved it on
                dynamodb.delete_item(
                    TableName=name,
                    Key=key,
                    ConditionExpression="#ttl < :now",
                    ExpressionAttributeNames={"#ttl": table.ttl_attribute},
                    ExpressionAttributeValues={":now": {"N": str(epoch(now))}},
                )
            except dynamodb.exceptions.ConditionalCheckFailedException:
                continue
            removed += 1
            if table.stream:
                records.append(_removal(name, key, item, now))
        for start in range(0, len(records), 100):
            on_stream(name, records[start : start + 100])
    for table in moto_tables():
        _forget_stream_records(table)
    _forget_sent(KEEP_SENT)
    reset_model_data()
    return removed


def moto_tables() -> Iterator[Any]:
    """moto's tables of every account and region (moto runs in this process)."""
    from moto.dynamodb.models import dynamodb_backends

    for account in dynamodb_backends.values():
        for backend in account.values():
            yield from backend.tables.values()


def _expired(name: str, attribute: str, now: int) -> list[dict[str, Any]]:
    """Items of table `name` whose numeric `attribute` is before `now` (DynamoDB JSON):
    read off moto's table in place, where a Scan would copy every item it looks at."""
    found = []
    for table in moto_tables():
        if table.name != name:
            continue
        partitions = table.items.values()
        items = (
            [item for partition in partitions for item in partition.values()]
            if table.range_key_attr
            else list(partitions)
        )
        for item in items:
            value = item.attrs.get(attribute)
            if value is not None and value.type == "N" and float(value.value) < now:
                found.append(item.to_json()["Attributes"])
    return found


def _forget_stream_records(table: Any) -> None:
    """moto keeps every stream record of a table for ever; DynamoDB Streams 24 hours, and
    nothing on the local stack reads them (the TTL deletions above are delivered as they
    happen). The sequence numbers of later records go on from where these end."""
    shard = table.stream_shard
    if shard is not None and shard.items:
        shard.starting_sequence_number += len(shard.items)
        shard.items = []


def _forget_sent(keep: int) -> None:
    """Only the latest `keep` of the e-mails SES sent, the SMS and the notifications SNS
    published: moto keeps every one for ever."""
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    for ses in (backend for account in ses_backends.values() for backend in account.values()):
        del ses.sent_messages[:-keep]
    for sns in (backend for account in sns_backends.values() for backend in account.values()):
        while len(sns.sms_messages) > keep:
            sns.sms_messages.popitem(last=False)
        for topic in sns.topics.values():
            del topic.sent_notifications[:-keep]


def _removal(table: str, key: dict[str, Any], old: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A stream record of a deletion by TTL, as DynamoDB Streams delivers it to Lambda."""
    from chalicelib.config import settings
    from chalicelib.runtime.commit import epoch

    region = settings().region
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": {
            "ApproximateCreationDateTime": epoch(now),
            "Keys": key,
            "OldImage": old,
            "SequenceNumber": str(uuid.uuid4().int)[:21],
            "SizeBytes": 0,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "eventSourceARN": f"arn:aws:dynamodb:{region}:000000000000:table/{table}/stream/local",
    }
