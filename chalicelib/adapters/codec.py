"""How engine values are stored: instances, events, messages and profiles as item values."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from chalicelib.engine.orders import Item, OrderState
from chalicelib.engine.sessions import SessionState
from chalicelib.engine.state import ACTIVE, TREATMENT, BranchTaken, Instance
from chalicelib.scenarios.durations import format_datetime, parse_datetime
from chalicelib.scenarios.facts import Event, Message


def profile_key(profile_db: str, profile_id: str) -> str:
    """`<database>#<id>`, one string for one profile of one database.

    Both names may hold `#`, so the database's `%` and `#` are percent-encoded: its part
    then ends at the first `#`, and `a#b`/`c` can never meet `a`/`b#c`. A name without
    either character is stored as it is.
    """
    return f"{profile_db.replace('%', '%25').replace('#', '%23')}#{profile_id}"


def time_text(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment is not None else None


def time_value(text: Any) -> datetime | None:
    return parse_datetime(text) if text else None


def _moment(text: str) -> datetime:
    moment = parse_datetime(text)
    assert moment is not None
    return moment


def event_to_values(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "occurred_at": format_datetime(event.occurred_at),
        "data": event.data,
    }


def event_from_values(values: dict[str, Any]) -> Event:
    occurred = time_value(values["occurred_at"])
    assert occurred is not None
    return Event(values["type"], occurred, values.get("data") or {}, values.get("id"))


def message_from_values(values: dict[str, Any]) -> Message:
    statuses = {status: time_value(at) for status, at in (values.get("statuses") or {}).items()}
    at = time_value(values["at"])
    assert at is not None
    return Message(
        values["message_id"],
        values["scenario_id"],
        values["node"],
        values["channel"],
        at,
        {status: moment for status, moment in statuses.items() if moment is not None},
        values.get("instance_id"),
    )


def instance_to_values(
    instance: Instance, rev: int, seen: list[str], until: datetime | None = None
) -> dict[str, Any]:
    """The instance item, with the index keys that exist only while it is active and the
    `by_profile` index's `live_key` (see `live_key`)."""
    active = instance.status == ACTIVE
    return {
        "instance_id": instance.instance_id,
        "rev": rev,
        "scenario_id": instance.scenario_id,
        "version": instance.version,
        "profile_db": instance.profile_db,
        "profile_id": instance.profile_id,
        "profile_key": profile_key(instance.profile_db, instance.profile_id),
        "live_key": live_key(instance, until),
        "entry": event_to_values(instance.entry),
        "entered_at": format_datetime(instance.entered_at),
        "trigger_id": instance.trigger_id,
        "limit_key": instance.limit_key,
        "status": instance.status,
        "node": instance.node,
        "node_entered_at": time_text(instance.node_entered_at),
        "waiting": instance.waiting,
        "wake_at": time_text(instance.wake_at),
        "step": instance.step,
        "vars": instance.vars,
        "codes": instance.codes,
        "path": instance.path,
        "reason": instance.reason,
        "ended_at": time_text(instance.ended_at),
        "group": instance.group,
        "reentry_key": instance.reentry_key,
        "branches": {
            node: {"name": taken.name, "at": format_datetime(taken.at)}
            for node, taken in instance.branches.items()
        },
        "measured": {name: format_datetime(at) for name, at in instance.measured.items()},
        "seen_events": seen[-20:],
        # sparse index keys: only active instances are found by node and by scenario
        "node_key": f"{instance.scenario_id}#{instance.node}" if active and instance.node else None,
        "active_scenario": instance.scenario_id if active else None,
    }


LIVE = "~"  # sorts after every epoch second: an active instance matters at any moment


def live_key(instance: Instance, until: datetime | None) -> str:
    """`<until>#<scenario id>#<instance id>`: until when the instance concerns its profile's
    events, as zero-padded epoch seconds rounded up (`LIVE` while it is active), so that
    `live_key >= live_since(moment)` finds those that still matter at a moment."""
    if instance.status == ACTIVE:
        prefix = LIVE
    else:
        end = max(filter(None, (until, instance.ended_at)), default=instance.entered_at)
        prefix = f"{math.ceil(end.timestamp()):011d}"
    return f"{prefix}#{instance.scenario_id}#{instance.instance_id}"


def live_since(moment: datetime) -> str:
    """The smallest `live_key` of an instance that still matters at `moment`."""
    return f"{math.floor(moment.timestamp()):011d}"


def instance_from_values(values: dict[str, Any]) -> tuple[Instance, int, list[str]]:
    """The instance, its revision (for optimistic locking) and the event ids it has seen."""
    instance = Instance(
        instance_id=values["instance_id"],
        scenario_id=values["scenario_id"],
        version=values["version"],
        profile_id=values["profile_id"],
        profile_db=values["profile_db"],
        entry=event_from_values(values["entry"]),
        trigger_id=values.get("trigger_id"),
        limit_key=values.get("limit_key"),
        status=values["status"],
        node=values.get("node"),
        node_entered_at=time_value(values.get("node_entered_at")),
        waiting=values.get("waiting"),
        wake_at=time_value(values.get("wake_at")),
        step=values["step"],
        vars=values.get("vars") or {},
        codes=values.get("codes") or {},
        path=values.get("path") or [],
        reason=values.get("reason"),
        ended_at=time_value(values.get("ended_at")),
        group=values.get("group") or TREATMENT,
        reentry_key=values.get("reentry_key"),
        branches={
            node: BranchTaken(taken["name"], _moment(taken["at"]))
            for node, taken in (values.get("branches") or {}).items()
        },
        measured={name: _moment(at) for name, at in (values.get("measured") or {}).items()},
    )
    return instance, values["rev"], list(values.get("seen_events") or [])


# --- orders ---


def order_to_values(order: OrderState) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "values": order.values,
        "items": [_item_to_values(item) for item in order.items],
        "changed_at": format_datetime(order.changed_at),
        "created_items": list(order.created_items),
        "all_reached": list(order.all_reached),
        "seen": list(order.seen),
    }


def _item_to_values(item: Item) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "values": item.values,
        "changed_at": format_datetime(item.changed_at),
        "reached": list(item.reached),
    }


def order_from_values(values: dict[str, Any]) -> OrderState:
    items = tuple(
        Item(item["item_id"], item.get("values") or {}, _moment(item["changed_at"]),
             tuple(item.get("reached") or ()))
        for item in values.get("items") or []
    )  # fmt: skip
    return OrderState(
        values["order_id"], values.get("values") or {}, items, _moment(values["changed_at"]),
        tuple(values.get("created_items") or ()), tuple(values.get("all_reached") or ()),
        tuple(values.get("seen") or ()),
    )  # fmt: skip


def session_to_values(session: SessionState) -> dict[str, Any]:
    return {
        "started_at": format_datetime(session.started_at),
        "last_at": format_datetime(session.last_at),
        "pages": session.pages,
        "products": list(session.products),
        "ordered": session.ordered,
    }


def session_from_values(values: dict[str, Any]) -> SessionState:
    return SessionState(
        _moment(values["started_at"]), _moment(values["last_at"]), int(values.get("pages", 0)),
        tuple(values.get("products") or ()), bool(values.get("ordered")),
    )  # fmt: skip
