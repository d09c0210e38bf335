"""Delivery feedback (`POST /feedback`): a message's status changes, and journeys hear of it.

Each change is recorded on the message and in the profile's message history (which
`message` conditions read), and emitted as the `message.*` event of SPEC §4 so that
`wait_for` nodes react. `unsubscribed` revokes the channel's consent.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import Any

from chalicelib.adapters import store
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event

from .profiles import publish, upsert

STATUSES = ("delivered", "opened", "clicked", "bounced", "unsubscribed", "failed")


class UnknownMessage(LookupError):
    pass


def record(message_id: str, status: str, at: datetime) -> dict[str, Any]:
    row = store.messages.get({"message_id": message_id})
    if row is None or row.get("kind") != "message":
        raise UnknownMessage(f"no message {message_id!r}")
    stamp = format_datetime(at)
    if status in (row.get("feedback") or {}):
        return row  # already known: feedback is delivered at least once
    feedback = {**(row.get("feedback") or {}), status: stamp}
    store.messages.update(
        {"message_id": message_id}, "SET feedback = :map", values={":map": feedback}
    )
    history = {
        "pk": store.profile_partition(row["profile_db"], row["profile_id"]),
        "sk": f"M#{row['deliver_at']}#{message_id}",
    }
    with suppress(ConditionFailed):  # unless the profile was erased meanwhile
        store.profiles.update(
            history,
            "SET statuses.#s = :at",
            "attribute_exists(pk)",
            names={"#s": status},
            values={":at": stamp},
        )
    event = Event(
        f"message.{status}",
        at,
        {
            "message_id": message_id,
            "scenario_id": row["scenario_id"],
            "node": row["node"],
            "channel": row["channel"],
        },
        id=f"{message_id}:{status}",
    )
    publish(row["profile_db"], row["profile_id"], [event])
    if status == "unsubscribed":
        profile = store.profiles.get({**history, "sk": "P"}) or {}
        consents = dict((profile.get("fields") or {}).get("consents") or {})
        consents[row["channel"]] = False
        upsert(row["profile_db"], row["profile_id"], {"consents": consents}, "api")
    return store.messages.get({"message_id": message_id}) or row
