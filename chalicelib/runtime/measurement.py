"""Measuring what a scenario earns (SPEC §8) at run time: conversions, experiment
decisions, and the numbers the stats endpoint adds.

The decisions are the engine's (`chalicelib/engine/measure.py`); this module feeds them
the stored records through the storage port and commits what they return:

- every event is offered to each of the profile's instances whose conversion window is
  still open (`conversions`); a conversion is written on the instance with its counters,
  guarded by the instance's revision, so a redelivered event counts nothing twice; opens
  and clicks of a message count for the split branches its instance took (`engagement`);
- the minute tick decides the experiments that are due (`decide_experiments`): only
  active scenarios with experiment nodes are looked at, and an undecided experiment is
  looked at again when its decision says (at `decide_after`, then daily);
- a live edit carries an experiment on to the new version when its branches did not
  change, else it starts again there (`carry_experiments`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.adapters.clock import now as clock_now
from chalicelib.engine import measure
from chalicelib.engine.compiled import CompiledScenario
from chalicelib.engine.state import CONTROL, HOLDOUT, TREATMENT
from chalicelib.engine.statistics import Proportion, lift, p_best, p_value
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event
from chalicelib.scenarios.model import ExperimentNode

from .commit import Commit
from .segments import library
from .storage import Conflict, ExperimentDecision, Storage
from .unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

ATTEMPTS = 5
GROUPS = (TREATMENT, HOLDOUT, CONTROL)
BRANCH_COUNTERS = ("entered", "conversions", "opened", "clicked")


# --- conversions --------------------------------------------------------------------------


def conversions(uow: UnitOfWork, profile_db: str, profile_id: str, event: Event) -> int:
    """Offer the event to the profile's instances (any status) whose conversion window is
    open; commit each conversion. Returns how many instances converted."""
    converted = 0
    for stored in uow.instances_of_profile(profile_db, profile_id, since=clock_now()):
        instance_id = stored.instance.instance_id
        for _ in range(ATTEMPTS):
            current = uow.instance(instance_id)
            if current is None:
                break
            now = clock_now()
            scenario = uow.version(current.instance.scenario_id, current.instance.version)
            if scenario.conversion is None or scenario.conversion.event != event.type:
                break
            deadline = measure.conversion_deadline(scenario, current.instance)
            if deadline is None or deadline < now:
                break
            profile = uow.profile(profile_db, profile_id, scenario.reads_history)
            step = measure.convert(scenario, current.instance, profile.view, event, now, library)
            if not step.effects:
                break
            commit = Commit(now)
            commit.add(step, current)
            try:
                uow.commit(commit)
            except Conflict:
                continue  # the instance moved meanwhile: offer it again as it is now
            converted += 1
            break
    return converted


def engagement(uow: UnitOfWork, profile_db: str, profile_id: str, event: Event) -> bool:
    """A `message.opened` / `message.clicked` event: count it for the split branches the
    message's instance took before it was sent (once per node and status). True when
    counted. The profile's messages name the instance, however long ago it ended."""
    status = event.type.removeprefix("message.")
    scenario_id, message_id = event.data.get("scenario_id"), event.data.get("message_id")
    if status not in measure.ENGAGEMENTS or not scenario_id or not message_id:
        return False
    profile = uow.profile(profile_db, profile_id).view
    message = next((m for m in profile.messages if m.message_id == message_id), None)
    if message is None or message.instance_id is None:
        return False
    for _ in range(ATTEMPTS):
        current = uow.instance(message.instance_id)
        if current is None:
            return False
        step = measure.engage(current.instance, message, status)
        if not step.effects:
            return False
        commit = Commit(clock_now())
        commit.add(step, current)
        try:
            uow.commit(commit)
        except Conflict:
            continue
        return True
    return False


# --- experiment decisions -----------------------------------------------------------------


def decide_experiments(storage: Storage, now: datetime) -> int:
    """Decide every due experiment of the active scenarios; returns the decisions taken."""
    decided = 0
    for scenario_id in storage.experiment_scenarios():
        meta = storage.scenario(scenario_id)
        if meta is None or not meta.active:
            continue
        scenario = storage.version(scenario_id, meta.version)
        stored = storage.decisions(scenario_id, meta.version)
        for node_id, node in scenario.nodes.items():
            if not isinstance(node, ExperimentNode):
                continue
            before = stored.get(node_id)
            if before is not None and (
                before.winner is not None
                or (before.decide_again_at is not None and before.decide_again_at > now)
            ):
                continue
            versions = before.versions if before else (meta.version,)
            counts, first = experiment_counts(storage, scenario_id, versions, node_id, node)
            decision = measure.decide(node, counts, first, now)
            record = ExperimentDecision(
                scenario_id, meta.version, node_id, versions, decision.winner,
                decision.decided_at, decision.decide_again_at, decision.p_best,
            )  # fmt: skip
            if record != before:  # while nobody has entered: nothing new to write each minute
                storage.put_decision(record)
            if decision.winner is not None:
                decided += 1
                logger.info(
                    "experiment decided",
                    extra={"scenario_id": scenario_id, "node": node_id, "winner": decision.winner},
                )
    return decided


def experiment_counts(
    storage: Storage,
    scenario_id: str,
    versions: tuple[int, ...],
    node_id: str,
    node: ExperimentNode,
) -> tuple[dict[str, Proportion], datetime | None]:
    """Per branch: the profiles that took it and the metric's count among them, over the
    versions the experiment runs in; and its first entry."""
    counter = measure.METRIC_COUNTER[node.metric]
    entered: dict[str, int] = {}
    hits: dict[str, int] = {}
    first: datetime | None = None
    for version in versions:
        counters = storage.version_counters(scenario_id, version)
        for branch in node.branches:
            name = branch.name
            entered[name] = entered.get(name, 0) + counters.counts.get(
                f"branch_entered|{node_id}|{name}", 0
            )
            hits[name] = hits.get(name, 0) + counters.counts.get(f"{counter}|{node_id}|{name}", 0)
        at = counters.firsts.get(f"first_entry|{node_id}")
        if at is not None and (first is None or at < first):
            first = at
    proportions = {
        name: Proportion(min(hits[name], entered[name]), entered[name]) for name in entered
    }
    return proportions, first


def carry_experiments(
    storage: Storage, old: CompiledScenario, new: CompiledScenario
) -> list[ExperimentDecision]:
    """A live edit: each experiment node of `new` whose branches are as in `old` goes on
    with the old version's counts and winner; any other starts again (nothing stored)."""
    carried = []
    before = storage.decisions(old.scenario_id, old.version)
    for node_id, node in new.nodes.items():
        if not measure.same_experiment(old.nodes.get(node_id), node):
            continue
        was = before.get(node_id)
        versions = (*(was.versions if was else (old.version,)), new.version)
        decision = ExperimentDecision(
            new.scenario_id, new.version, node_id, versions,
            was.winner if was else None, was.decided_at if was else None,
            was.decide_again_at if was else None, dict(was.p_best) if was else {},
        )  # fmt: skip
        storage.put_decision(decision)
        carried.append(decision)
    return carried


# --- what the stats endpoint adds ---------------------------------------------------------


def group_stats(counts: Mapping[str, int]) -> dict[str, Any]:
    """`conversions`, `conversion_rate`, and the `treatment`, `holdout` and `control`
    groups, the held-out ones with `lift` and `p_value` against the treatment."""
    entered = sum(counts.get(f"group_entered|{group}", 0) for group in GROUPS)
    converted = sum(counts.get(f"group_conversions|{group}", 0) for group in GROUPS)
    tallies = {
        group: _proportion(
            counts.get(f"group_conversions|{group}", 0), counts.get(f"group_entered|{group}", 0)
        )
        for group in GROUPS
    }
    treated = tallies[TREATMENT]
    answer: dict[str, Any] = {
        "conversions": converted,
        "conversion_rate": _proportion(converted, entered).rate,
        TREATMENT: _group(treated),
    }
    for group in (HOLDOUT, CONTROL):
        answer[group] = {
            **_group(tallies[group]),
            "lift": lift(treated, tallies[group]),
            "p_value": p_value(treated, tallies[group]),
        }
    return answer


def branch_stats(counts: Mapping[str, int]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per split node (`ab_split`, `experiment`) and branch: entered, conversions with the
    rate, opened and clicked."""
    branches: dict[str, dict[str, dict[str, Any]]] = {}
    for name, count in counts.items():
        kind, _, rest = name.partition("|")
        counter = kind.removeprefix("branch_")
        if not kind.startswith("branch_") or counter not in BRANCH_COUNTERS or "|" not in rest:
            continue
        node, _, branch = rest.partition("|")
        table = branches.setdefault(node, {}).setdefault(branch, dict.fromkeys(BRANCH_COUNTERS, 0))
        table[counter] += count
    for nodes in branches.values():
        for table in nodes.values():
            table["conversion_rate"] = _proportion(table["conversions"], table["entered"]).rate
    return branches


def experiment_stats(storage: Storage, scenario: CompiledScenario) -> dict[str, dict[str, Any]]:
    """Per experiment node of a version: its metric, winner and `decided_at`, and per
    branch `entered`, the metric's `count` and `rate`, and `p_best` now."""
    stored = storage.decisions(scenario.scenario_id, scenario.version)
    answer: dict[str, dict[str, Any]] = {}
    for node_id, node in scenario.nodes.items():
        if not isinstance(node, ExperimentNode):
            continue
        decision = stored.get(node_id)
        versions = decision.versions if decision else (scenario.version,)
        counts, _ = experiment_counts(storage, scenario.scenario_id, versions, node_id, node)
        tallies = [counts[branch.name] for branch in node.branches]
        chances = p_best(tallies)
        answer[node_id] = {
            "metric": node.metric,
            "winner": decision.winner if decision else None,
            "decided_at": (
                format_datetime(decision.decided_at) if decision and decision.decided_at else None
            ),
            "branches": {
                branch.name: {
                    "entered": tally.size,
                    "count": tally.hits,
                    "rate": tally.rate,
                    "p_best": chance,
                }
                for branch, tally, chance in zip(node.branches, tallies, chances, strict=True)
            },
        }
    return answer


def _group(tally: Proportion) -> dict[str, Any]:
    return {"entered": tally.size, "conversions": tally.hits, "conversion_rate": tally.rate}


def _proportion(hits: int, size: int) -> Proportion:
    """Counters of different days may not pair up (a conversion counted on a day whose
    entries fall outside the range asked): never more hits than size."""
    return Proportion(max(0, min(hits, size)), max(0, size))
