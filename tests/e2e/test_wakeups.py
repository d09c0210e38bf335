"""Wake-ups of short pauses (SPEC §5: within 1 s, never early). SQS delays are whole
seconds: a commit rounds a pause's delay down when that leaves under 0.75 s to wait,
and the steps consumer waits out the rest; a wake-up arriving earlier still goes back
to the queue. Time here is a clock moved by hand that the runtime takes for real time,
and waiting moves it: nothing in these tests depends on how fast they run."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from harness import START, Stack, pause, scenario

from chalicelib.adapters import store
from chalicelib.adapters.clock import SystemClock, use_clock
from chalicelib.bootstrap import bootstrap, services
from chalicelib.config import settings
from chalicelib.runtime import steps
from chalicelib.runtime.messages import Wake


class HandMovedClock(SystemClock):
    """A real clock as far as the runtime can tell, whose time moves only when told."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment


@dataclass
class Precise:
    """The stack with delayed wake-ups on: what commits sent, what `steps` sent back."""

    stack: Stack
    clock: HandMovedClock
    sent: list[tuple[str, Any, int]] = field(default_factory=list)  # (queue, message, delay)
    started: int = 0  # how many of them the capture sent
    waited: list[float] = field(default_factory=list)

    def send(self, queue: str, batch: Sequence[tuple[Any, int]]) -> int:
        self.sent.extend((queue, message, delay) for message, delay in batch)
        return 1

    @property
    def handed_back(self) -> list[tuple[str, Any, int]]:
        """What was sent after the capture: wake-ups `steps` sent back to the queue."""
        return self.sent[self.started :]

    def start_pause(self, duration: str) -> tuple[Wake, int]:
        """Capture a profile into a pause; the wake-up it sent and its delay."""
        scenario_id = self.stack.create(
            scenario({"wait": pause(duration, "done"), "done": {"type": "exit"}})
        )
        self.stack.upsert("ada", {"first_name": "Ada"})
        self.stack.post(f"/scenarios/{scenario_id}/profiles", {"profile_id": "ada"}, status=201)
        self.started = len(self.sent)
        (wake,) = [(body, delay) for queue, body, delay in self.sent if isinstance(body, Wake)]
        return wake

    def sleep(self, seconds: float) -> None:
        self.waited.append(seconds)
        self.clock.moment += timedelta(seconds=seconds)


@pytest.fixture
def precise(stack: Stack) -> Iterator[Precise]:
    clock = HandMovedClock(START)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCENARIA_PRECISE_DELAYS", "1")
        settings.cache_clear()
        previous = use_clock(clock)
        found = Precise(stack, clock)
        wired = services()
        bootstrap(wired.storage, found)
        patch.setattr(steps.time, "sleep", found.sleep)
        try:
            yield found
        finally:
            use_clock(previous)
            bootstrap(wired.storage, wired.queues)
    settings.cache_clear()


def test_a_delay_is_rounded_down_when_under_three_quarters_of_a_second_is_left_to_wait(
    precise: Precise,
) -> None:
    body, delay = precise.start_pause("PT5.7S")
    assert delay == 5
    assert body.wake_at == "2026-06-10T10:00:05.700000Z"


def test_a_delay_is_rounded_up_when_more_would_be_left_to_wait(precise: Precise) -> None:
    body, delay = precise.start_pause("PT5.8S")
    assert delay == 6
    assert body.wake_at == "2026-06-10T10:00:05.800000Z"


def test_a_wake_up_a_fraction_of_a_second_early_waits_out_the_rest(precise: Precise) -> None:
    body, delay = precise.start_pause("PT5.3S")
    precise.clock.moment = START + timedelta(seconds=delay)  # SQS hands it over now
    steps.process(body)
    assert precise.waited == [pytest.approx(0.3)]
    instance = precise.stack.instance("ada")
    assert instance.status == "completed"
    assert instance.path[1]["at"] == "2026-06-10T10:00:05.300000Z"  # on time, not early
    assert store.timers.get({"instance_id": instance.instance_id}) is None
    assert not precise.handed_back


def test_a_wake_up_seconds_early_goes_back_to_the_queue_for_the_rest(precise: Precise) -> None:
    body, _ = precise.start_pause("PT5.3S")
    precise.clock.moment = START + timedelta(seconds=2)
    steps.process(body)
    assert precise.handed_back == [("steps", body, 4)]  # 3.3 s still to go: never early
    assert not precise.waited
    instance = precise.stack.instance("ada")
    assert (instance.status, instance.node) == ("active", "wait")
    assert store.timers.get({"instance_id": instance.instance_id}) is not None

    precise.clock.moment = START + timedelta(seconds=6)  # the wake-up sent back arrives
    steps.process(body)
    assert precise.stack.instance("ada").status == "completed"


def test_a_repeated_wake_up_changes_nothing(precise: Precise) -> None:
    body, _ = precise.start_pause("PT5S")
    precise.clock.moment = START + timedelta(seconds=5)
    steps.process(body)
    before = precise.stack.instance("ada")
    steps.process(body)
    assert precise.stack.instance("ada") == before
    assert not precise.handed_back
    assert not precise.waited


def test_in_virtual_time_an_early_wake_up_leaves_the_pause_to_the_sweeper(stack: Stack) -> None:
    scenario_id = stack.create(scenario({"wait": pause("PT5M", "done"), "done": {"type": "exit"}}))
    stack.upsert("ada", {"first_name": "Ada"})
    stack.post(f"/scenarios/{scenario_id}/profiles", {"profile_id": "ada"}, status=201)
    instance = stack.instance("ada")
    steps.process(
        Wake(instance_id=instance.instance_id, step=instance.step, wake_at="2026-06-10T10:05:00Z")
    )
    assert stack.instance("ada").node == "wait"  # virtual time does not wait on the wall clock
    stack.advance("PT6M")
    assert stack.instance("ada").status == "completed"


def test_with_a_real_clock_every_queue_is_pumped_by_a_thread_of_its_own(stack: Stack) -> None:
    scenario_id = stack.create(
        scenario(
            {"hello": {"type": "exit"}},
            [{"id": "go", "type": "event", "event": "signup", "next": "hello"}],
        )
    )
    stack.upsert("ada", {"first_name": "Ada"})
    stack.event("signup", "ada")  # the events queue, then a capture
    stack.runtime.start(clock_is_real=True)
    try:
        names = {thread.name for thread in stack.runtime._threads}
        assert {f"pump-{pump.queue}-0" for pump in stack.runtime.pumps} < names
        for _ in range(600):  # however slow the machine: this waits for the outcome only
            if stack.instances("ada", scenario_id):
                break
            threading.Event().wait(0.1)
        assert stack.instance("ada", scenario_id).status == "completed"
    finally:
        stack.runtime.stop()
    assert not any(thread.is_alive() for thread in stack.runtime._threads)
