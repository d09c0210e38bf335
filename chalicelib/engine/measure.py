"""Measuring what a scenario earns (SPEC §8): groups, conversions, experiment decisions.

Pure, like the interpreter. What it needs from storage the runtime passes in: the
stack's control percent, the per-branch counts of an experiment, an instance and the
event or message status that may measure it. What it finds comes back as data: a
group, a `Step` with the counters to add, a `Decision`.

- **Groups.** A captured profile is in the stack's global control group when a hash of
  its profile key alone falls under the control percent (the same profiles in every
  scenario), else held out when a hash of (scenario id, profile key) falls under the
  scenario's `holdout.percent` (stable across versions: the version is not hashed),
  else treated. `transactional` scenarios treat everyone.
- **Conversions** are measured for every instance, whatever its status, within
  `conversion.within` of its entry: the runtime calls `convert` for each of the
  profile's instances whose window is open (`conversion_deadline`) when an event comes.
- **Experiments** are decided by `decide` on counts the runtime keeps per branch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chalicelib.scenarios.durations import parse_duration
from chalicelib.scenarios.facts import Event, Facts, Message, Predicate, Profile
from chalicelib.scenarios.model import ExperimentNode, Node

from .compiled import CompiledScenario, WindowLimit
from .effects import CountStat, Effect
from .interpreter import Step
from .state import CONTROL, HOLDOUT, TREATMENT, Instance
from .statistics import Proportion, p_best

# Experiments not decided yet are decided again this long after each attempt.
DECIDE_AGAIN_AFTER = timedelta(days=1)
# The per-branch counter (CountStat name) of each experiment metric.
METRIC_COUNTER = {
    "conversion": "branch_conversions",
    "opened": "branch_opened",
    "clicked": "branch_clicked",
}
ENGAGEMENTS = ("opened", "clicked")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- groups -------------------------------------------------------------------------


def control_point(profile: Profile) -> float:
    """The profile's stable point in [0, 100) for the stack's global control group."""
    return _point(f"{profile.profile_db}/{profile.profile_id}", b"control")


def holdout_point(scenario_id: str, profile: Profile) -> float:
    """The profile's stable point in [0, 100) for one scenario's holdout."""
    return _point(f"{scenario_id}/{profile.profile_db}/{profile.profile_id}", b"holdout")


def group_of(scenario: CompiledScenario, profile: Profile, control_percent: float) -> str:
    """The measurement group a captured profile joins: CONTROL, HOLDOUT or TREATMENT."""
    model = scenario.model
    if model.transactional:
        return TREATMENT
    if control_percent > 0 and control_point(profile) < control_percent:
        return CONTROL
    if model.holdout is not None and holdout_point(scenario.scenario_id, profile) < (
        model.holdout.percent
    ):
        return HOLDOUT
    return TREATMENT


def _point(key: str, purpose: bytes) -> float:
    """A point in [0, 100) in steps of 0.01, independent for each purpose (personalised
    hashes), and of the schedule sample's point (`schedules.sample_point`)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, person=purpose).digest()
    return int.from_bytes(digest, "big") % 10_000 / 100


# --- conversions and engagement -----------------------------------------------------


def conversion_deadline(scenario: CompiledScenario, instance: Instance) -> datetime | None:
    """Until when an instance can convert; None when the scenario measures no conversion."""
    if scenario.conversion is None:
        return None
    return instance.entered_at + scenario.conversion.within


def convert(
    scenario: CompiledScenario,
    instance: Instance,
    profile: Profile,
    event: Event,
    now: datetime,
    segments: Mapping[str, Predicate] | None = None,
) -> Step:
    """Whether `event` converts the instance (active or ended); if so, what to count.

    It converts when it matches the scenario's `conversion` (type and `where`, which may
    read `event.*`, `entry.*` and `profile.*`), occurred within `within` of the entry,
    is not the capturing event itself, and the instance has not converted before. The
    step then records the conversion on the instance and counts `conversions` in the
    instance's group and `branch_conversions` for every split branch it took; otherwise
    it returns the instance unchanged with no effects.
    """
    conversion = scenario.conversion
    entered = instance.entered_at
    if (
        conversion is None
        or "conversion" in instance.measured
        or event.type != conversion.event
        or not entered <= event.occurred_at <= entered + conversion.within
        or (event.id is not None and event.id == instance.entry.id)
    ):
        return Step(instance, [], profile)
    facts = Facts(
        profile, now, scenario.tz, event, instance.entry, instance.vars, entered,
        scenario.scenario_id, segments or {},
    )  # fmt: skip
    if not conversion.where(facts):
        return Step(instance, [], profile)
    converted = instance.copy()
    converted.measured["conversion"] = event.occurred_at
    effects: list[Effect] = [CountStat("conversions", group=instance.group)]
    effects += [
        CountStat("branch_conversions", node, taken.name)
        for node, taken in instance.branches.items()
    ]
    return Step(converted, effects, profile)


def engage(instance: Instance, message: Message, status: str) -> Step:
    """A message of the instance was opened or clicked: count it for the split branches.

    Counted once per split node and status, and only for a branch taken before the
    message was sent (`branch_opened` / `branch_clicked`); anything else changes nothing.
    """
    if status not in ENGAGEMENTS or message.instance_id != instance.instance_id:
        return Step(instance, [])
    at = message.statuses.get(status, message.at)
    counted = [
        (node, taken.name)
        for node, taken in instance.branches.items()
        if taken.at <= message.at and f"{status}|{node}" not in instance.measured
    ]
    if not counted:
        return Step(instance, [])
    engaged = instance.copy()
    for node, _ in counted:
        engaged.measured[f"{status}|{node}"] = at
    return Step(engaged, [CountStat(f"branch_{status}", node, name) for node, name in counted])


# --- experiments --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """An experiment's decision: its winner (or None yet), each branch's p_best, and when.

    `decide_again_at` is None once decided, and while no profile has entered yet.
    """

    winner: str | None
    p_best: dict[str, float]
    decided_at: datetime | None = None
    decide_again_at: datetime | None = None


def decide(
    node: ExperimentNode,
    counts: Mapping[str, Proportion],
    first_entry: datetime | None,
    now: datetime,
) -> Decision:
    """Decide an experiment from its counts: per branch name, the metric's count (`hits`)
    of the profiles that took the branch (`size`; see METRIC_COUNTER).

    Not before `decide_after` from the first entry, nor while a branch has fewer than
    `min_per_branch` profiles; then the branch with the best rate wins when its p_best
    is at least `confidence` (a tie on the rate goes to the higher p_best, then to the
    earlier branch). Undecided, it is decided again a day later.
    """
    names = [branch.name for branch in node.branches]
    tallies = [counts.get(name, Proportion(0, 0)) for name in names]
    shares = dict(zip(names, p_best(tallies), strict=True))
    if first_entry is None:
        return Decision(None, shares)
    due = first_entry + parse_duration(node.decide_after)
    if now < due:
        return Decision(None, shares, decide_again_at=due)
    if any(tally.size < node.min_per_branch for tally in tallies):
        return Decision(None, shares, decide_again_at=now + DECIDE_AGAIN_AFTER)
    best = max(
        range(len(names)),
        key=lambda i: (tallies[i].hits / tallies[i].size, shares[names[i]], -i),
    )
    if shares[names[best]] >= node.confidence:
        return Decision(names[best], shares, decided_at=now)
    return Decision(None, shares, decide_again_at=now + DECIDE_AGAIN_AFTER)


def same_experiment(old: Node | None, new: Node | None) -> bool:
    """Whether a new version's node goes on with an old version's experiment: editing the
    branches (names, shares or where they lead) restarts it (SPEC §8)."""
    return (
        isinstance(old, ExperimentNode)
        and isinstance(new, ExperimentNode)
        and old.branches == new.branches
    )


# --- limits -------------------------------------------------------------------------


def entry_window(limit: WindowLimit, now: datetime) -> tuple[datetime, datetime]:
    """The window of an entry (or rate) limit that `now` falls in: [start, end).

    Windows are fixed, back to back from the Unix epoch (a `P1D` window is a UTC day), so
    the runtime keeps one counter per window.
    """
    start = _EPOCH + (now - _EPOCH) // limit.window * limit.window
    return start, start + limit.window
