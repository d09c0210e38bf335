"""Every table and queue of a Scenaria stack, defined once.

`chalice package` gets them as CloudFormation through `infra/template.py`; the local
stack creates the very same ones on moto (`chalicelib/local`). Both call the functions
below, so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.config import QUEUES, resource_name
from chalicelib.config import dead_letter_name as dead_letter_name  # the functions need it too


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str | None = None
    hash_type: str = "S"
    range_type: str = "S"


@dataclass(frozen=True)
class Table:
    name: str
    purpose: str
    hash_key: str
    range_key: str | None = None
    range_type: str = "S"
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None
    stream: bool = False

    def attribute_definitions(self) -> list[dict[str, str]]:
        types = {self.hash_key: "S"}
        if self.range_key:
            types[self.range_key] = self.range_type
        for index in self.indexes:
            types[index.hash_key] = index.hash_type
            if index.range_key:
                types[index.range_key] = index.range_type
        return [{"AttributeName": name, "AttributeType": kind} for name, kind in types.items()]

    def key_schema(self) -> list[dict[str, str]]:
        return _key_schema(self.hash_key, self.range_key)

    def index_definitions(self) -> list[dict[str, Any]]:
        return [
            {
                "IndexName": index.name,
                "KeySchema": _key_schema(index.hash_key, index.range_key),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in self.indexes
        ]


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


TABLES: tuple[Table, ...] = (
    Table(
        "scenarios",
        "scenario metadata (sk `meta`), immutable versions (sk `V#000001`), the index of "
        "active event triggers (pk `E#<event type>`) and of schedule triggers (pk `SCHEDULE`)",
        hash_key="pk",
        range_key="sk",
    ),
    Table(
        "segments", "segment definitions: a named condition over a profile database", "segment_id"
    ),
    Table(
        "profiles",
        "a profile (sk `P`) with its event history (sk `E#…`, expiring) and the messages "
        "sent to it with their statuses (sk `M#…`): one Query reads the engine's view; "
        "its list lines (`L#<list>#<product>`), latest views (`V#<product>`) and cart stage "
        "(`CART`), the lines and views in the sparse `watchers` index by product",
        hash_key="pk",
        range_key="sk",
        indexes=(Index("watchers", "product_id", "pk"),),
        ttl_attribute="expires_at",
    ),
    Table(
        "instances",
        "journey instances; by profile (captures, event routing), by scenario and node "
        "while active (real-time view, stop, clear, live edits)",
        hash_key="instance_id",
        indexes=(
            Index("by_profile", "profile_key", "live_key"),
            Index("by_node", "node_key", "node_entered_at"),
            Index("by_scenario", "active_scenario", "instance_id"),
        ),
    ),
    Table(
        "timers",
        "one wake-up per waiting instance; TTL at its due time is the backstop, the sweeper "
        "reads the sharded due-time index",
        hash_key="instance_id",
        indexes=(Index("by_due", "shard", "due", range_type="N"),),
        ttl_attribute="expires_at",
        stream=True,
    ),
    Table(
        "messages",
        "the outbox and delivery record of every message, by deterministic id; undispatched "
        "ones are in the sparse `pending` index",
        hash_key="message_id",
        indexes=(Index("pending", "pending_shard", "dispatch_at", range_type="N"),),
    ),
    Table(
        "stats",
        "counters per scenario, version, day and shard (shards spread hot scenarios)",
        hash_key="scenario_id",
        range_key="sk",
    ),
    Table("promo_codes", "promo code pools: codes and who took them", "pool", range_key="code"),
    Table(
        "idempotency",
        "event ids, hook idempotency keys and other once-only records, expiring",
        hash_key="key",
        ttl_attribute="expires_at",
    ),
    Table(
        "products",
        "the catalogue: each product's main feed and regional data, its version and the "
        "document before its latest change",
        hash_key="product_id",
    ),
    Table(
        "api_keys",
        "scoped API keys: role, groups and a salted hash of the secret, by key id",
        hash_key="key_id",
    ),
)


@dataclass(frozen=True)
class Queue:
    name: str
    visibility_timeout: int = 180  # six times the consumer's 30 s timeout, as AWS advises
    max_receive_count: int = 5
    attributes: dict[str, str] = field(default_factory=dict)


QUEUE_DEFINITIONS: tuple[Queue, ...] = tuple(Queue(name) for name in QUEUES)


def create_table_arguments(table: Table, stage: str) -> dict[str, Any]:
    """Keyword arguments for boto3 `create_table`."""
    arguments: dict[str, Any] = {
        "TableName": resource_name(stage, table.name),
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": table.attribute_definitions(),
        "KeySchema": table.key_schema(),
    }
    if table.indexes:
        arguments["GlobalSecondaryIndexes"] = table.index_definitions()
    if table.stream:
        arguments["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
    return arguments
