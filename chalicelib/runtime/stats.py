"""Statistics: the sharded per-day counters, written and summed into SPEC §3.3's shape.

A scenario's counters live in items keyed `scenario_id`, `{version:06d}#{day}#{shard}`.
Journey steps add theirs in their commit (`commit.py`); delivery feedback and revenue
add theirs each in one write with what makes it count once (`count_once`). Counter names:

- `entered`, `completed`, `exited`, `removed`, `errors`: journeys;
- `moved_in`, `moved_out`: journeys a live edit moved onto a newer version, counted in
  the new version and out of the old one (with `node_moved_in|<node>`,
  `node_moved_out|<node>` at the node they were on), so that a version's `active` and
  `current` count the profiles now in it; summed over versions they cancel out;
- `node_entered|<node>`, `node_exited|<node>`: nodes;
- `ch_<status>|<channel>|<node>`: messages of a send node by delivery status, and
  `skipped` ones (by the journey, or by the channel worker when they were to leave);
- `revenue_cents`: `order.created` totals attributed to the scenario, in cents;
- `conversions`, and `group_entered|<group>`, `group_conversions|<group>` per measurement
  group (treatment, holdout, control); `branch_<entered|conversions|opened|clicked>|<node>|
  <branch>` per split branch; `first_entry|<node>`, an experiment's first entry (kept at
  its first value, not a counter). SPEC §8, see `measurement.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

from chalicelib.bootstrap import services

from . import measurement
from .storage import Changes, Conflict, DayCounters, Once, StatsDelta

logger = logging.getLogger(__name__)

TOTALS = ("entered", "completed", "exited", "removed", "errors")
MOVES = ("moved_in", "moved_out")
CHANNEL_STATUSES = (
    "sent", "delivered", "opened", "clicked", "bounced", "unsubscribed", "failed", "skipped",
)  # fmt: skip
REVENUE = "revenue_cents"
MEASURED = ("group_", "branch_")  # per measurement group, per split branch (measurement.py)
ATTEMPTS = 5  # transactions cancelled by a concurrent writer are tried again this often


def channel_counter(status: str, channel: str, node: str) -> str:
    """The counter of a send node's messages on a channel that reached a status."""
    return f"ch_{status}|{channel}|{node}"


def count_once(write: Callable[[], None], counted: Callable[[], bool]) -> bool:
    """Make `write` (counters with what makes them count once), once.

    True when this call wrote it; False when `counted()` says an earlier call did. A
    `Conflict` is either that (someone counted it: False) or a concurrent write to one of
    the items (nobody did: try again).
    """
    for _ in range(ATTEMPTS):
        try:
            write()
        except Conflict:
            if counted():
                return False
            logger.info("counting conflicted with a concurrent write, trying again")
            continue
        return True
    raise RuntimeError(f"counting kept conflicting after {ATTEMPTS} attempts")


def commit_once(once: Once, *deltas: StatsDelta) -> bool:
    """Commit the counters with a once-only record, once: True when this call did; False
    when the record says an earlier one did."""
    storage = services().storage
    changes = Changes(stats=list(deltas), once=[once])
    return count_once(lambda: storage.commit(changes), lambda: storage.once_done(once.key))


def scenario_stats(
    scenario_id: str, version: int | None = None, start: date | None = None, end: date | None = None
) -> dict[str, Any]:
    """Counters of a scenario, for one version or summed over all, between two days.

    Besides SPEC §3.3's shape, each node that sent messages has `channels` too, of the
    same shape as the scenario's; one version's counters have `moved_in` and `moved_out`
    too, at the top and on each node."""
    totals = dict.fromkeys((*TOTALS, *MOVES), 0)
    nodes: dict[str, dict[str, Any]] = {}
    channels: dict[str, dict[str, int]] = {}
    cents = 0
    measured: dict[str, int] = {}
    for part in _counters(scenario_id, version, start, end):
        for name, count in part.counts.items():
            if name in totals:
                totals[name] += count
            elif name == REVENUE:
                cents += count
            elif name.startswith("node_"):
                kind, _, node = name.partition("|")
                _node(nodes, node)[kind.removeprefix("node_")] += count
            elif name.startswith("ch_"):
                _count_channel(nodes, channels, name, count)
            elif name.startswith(MEASURED):
                measured[name] = measured.get(name, 0) + count
    moved_in, moved_out = (totals.pop(name) for name in MOVES)
    for counters in nodes.values():
        node_in, node_out = (counters.pop(name) for name in MOVES)
        counters["current"] = counters["entered"] + node_in - counters["exited"] - node_out
        if version is not None:
            counters.update(moved_in=node_in, moved_out=node_out)
    ended = sum(totals[name] for name in TOTALS if name != "entered")
    moves = {"moved_in": moved_in, "moved_out": moved_out} if version is not None else {}
    return {
        **totals,
        **moves,
        "active": totals["entered"] + moved_in - moved_out - ended,
        "nodes": nodes,
        "channels": channels,
        "revenue": cents / 100,
        **measurement.group_stats(measured),
        "branches": measurement.branch_stats(measured),
        "experiments": _experiments(scenario_id, version),
    }


def _experiments(scenario_id: str, version: int | None) -> dict[str, Any]:
    """The experiments of that version, else of the current one."""
    storage = services().storage
    if version is None:
        meta = storage.scenario(scenario_id)
        if meta is None or meta.version == 0:
            return {}
        version = meta.version
    try:
        scenario = storage.version(scenario_id, version)
    except LookupError:
        return {}
    return measurement.experiment_stats(storage, scenario)


def daily_totals(
    scenario_id: str,
    version: int | None = None,
    start: date | None = None,
    end: date | None = None,
    most: int = 366,
) -> list[dict[str, Any]]:
    """The scenario-wide counters day by day, oldest first: `entered`, `completed`,
    `exited`, `removed`, `errors`, `revenue` and any other counter kept for the whole
    scenario (not per node or message). Every day from `start` (else the first counted
    day) to `end` (else the last) is listed, zeros where nothing was counted; at most
    `most` days, the latest."""
    days: dict[date, dict[str, Any]] = {}
    for part in _counters(scenario_id, version, start, end):
        totals = days.setdefault(part.day, {})
        for name, count in part.counts.items():
            if "|" not in name:
                totals[name] = totals.get(name, 0) + count
    first, last = start or min(days, default=None), end or max(days, default=None)
    if first is None or last is None:
        return []
    first = max(first, last - timedelta(days=most - 1))
    listed = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        counted = days.get(day, {})
        cents = counted.pop(REVENUE, 0)
        listed.append(
            {"day": day.isoformat(), **dict.fromkeys(TOTALS, 0), **counted, "revenue": cents / 100}
        )
    return listed


def _node(nodes: dict[str, dict[str, Any]], node: str) -> dict[str, Any]:
    return nodes.setdefault(
        node, {"entered": 0, "exited": 0, "current": 0, "moved_in": 0, "moved_out": 0}
    )


def _count_channel(
    nodes: dict[str, dict[str, Any]],
    channels: dict[str, dict[str, int]],
    name: str,
    count: int,
) -> None:
    """Add a `ch_<status>|<channel>|<node>` counter to the scenario's and the node's channels."""
    kind, channel, node = name.split("|", 2)
    status = kind.removeprefix("ch_")
    if status not in CHANNEL_STATUSES:
        return
    for table in (channels, _node(nodes, node).setdefault("channels", {})):
        table.setdefault(channel, dict.fromkeys(CHANNEL_STATUSES, 0))[status] += count


def _counters(
    scenario_id: str, version: int | None, start: date | None, end: date | None
) -> Iterator[DayCounters]:
    """The scenario's counters (of one version, else of all) of the days from start to end."""
    for part in services().storage.day_counters(scenario_id, version):
        if not ((start and part.day < start) or (end and part.day > end)):
            yield part
