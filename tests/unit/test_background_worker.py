"""``run_forever``, the one background loop: a failing step is logged and retried after backoff (a moved clock
stands in for waiting), a wake-up ends a wait at once, and cancellation always stops it, also when the
cancellation reached the step as another exception (nats-py turns one into a TimeoutError) or was swallowed.

Nothing here sleeps: the tests await events the steps set, with a timeout only as a guard against a hang.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from services.runtime.background import Backoff, run_forever
from services.runtime.clock import ManualClock
from tests.factories import T0

GUARD_SECONDS = 5.0  # only reached if the loop hangs
NEVER = 3600.0  # a wait no test lets run out


class ScriptedStep:
    """A step that does what ``script`` says on each call (raise it, or return it as the pause), and then
    blocks until cancelled. Records when it was called on ``clock``."""

    def __init__(self, clock: ManualClock, script: list[float | Exception]) -> None:
        self.clock = clock
        self.script = list(script)
        self.called_at: list[float] = []
        self.calls = asyncio.Condition()
        self.done = asyncio.Event()

    async def __call__(self) -> float:
        self.called_at.append((self.clock.now() - T0).total_seconds())
        async with self.calls:
            self.calls.notify_all()
        if not self.script:
            self.done.set()
            await asyncio.Future()  # blocks until the task is cancelled
        outcome = self.script.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def until_called(self, times: int) -> None:
        async with self.calls:
            await asyncio.wait_for(self.calls.wait_for(lambda: len(self.called_at) >= times), GUARD_SECONDS)


class ObservedEvent(asyncio.Event):
    """An event that tells when someone starts waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited_on = asyncio.Event()

    async def wait(self) -> bool:
        self.waited_on.set()
        return await super().wait()


def moving_sleep(clock: ManualClock, slept: list[float]) -> Callable[[float], Awaitable[None]]:
    """A ``sleep`` that moves the clock instead of waiting."""

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(timedelta(seconds=seconds))

    return sleep


async def stopped(task: asyncio.Task[object]) -> bool:
    """Cancel ``task`` and report whether it ended as cancelled (not retrying, not with another error)."""
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=GUARD_SECONDS)
    return task in done and task.cancelled()


async def test_a_failing_step_is_logged_and_retried_after_a_doubling_backoff(caplog) -> None:
    clock = ManualClock(T0)
    slept: list[float] = []
    boom = RuntimeError("store down")
    step = ScriptedStep(clock, [boom, boom, boom, 0.0, boom, 0.0])
    with caplog.at_level(logging.ERROR, logger="services.runtime.background"):
        task = asyncio.create_task(
            run_forever(
                step, None, Backoff(base_seconds=0.2, max_seconds=1.0), name="relay", sleep=moving_sleep(clock, slept)
            )
        )
        await asyncio.wait_for(step.done.wait(), GUARD_SECONDS)
    assert slept == [0.4, 0.8, 1.0, 0.4]  # doubling, capped; a success starts the count again
    assert step.called_at == [0.0, 0.4, 1.2, 2.2, 2.2, 2.6, 2.6]
    failures = [r.getMessage() for r in caplog.records]
    assert failures[0] == "relay failed (1 in a row); retrying in 0.4 s"
    assert len(failures) == 4 and all(r.exc_info and r.exc_info[1] is boom for r in caplog.records)
    assert await stopped(task)


def test_the_default_backoff_doubles_from_0_4_s_up_to_30_s() -> None:
    assert [Backoff().delay(n) for n in (1, 2, 3, 7, 8, 20)] == [0.4, 0.8, 1.6, 25.6, 30.0, 30.0]


async def test_a_wake_up_ends_the_wait_and_one_during_a_step_is_not_lost() -> None:
    clock = ManualClock(T0)
    wake = ObservedEvent()

    class WokenWhileRunning(ScriptedStep):
        async def __call__(self) -> float:
            if len(self.called_at) == 1:
                wake.set()  # as the consumer does when a message arrives while the step runs
            return await super().__call__()

    step = WokenWhileRunning(clock, [NEVER, NEVER])
    task = asyncio.create_task(run_forever(step, wake, name="sender"))
    await asyncio.wait_for(wake.waited_on.wait(), GUARD_SECONDS)  # the first step asked for an hour's pause
    wake.set()
    await step.until_called(2)  # the wake-up ended it; the second step set wake itself ...
    await asyncio.wait_for(step.done.wait(), GUARD_SECONDS)  # ... so the third followed without a pause
    assert step.called_at == [0.0, 0.0, 0.0]
    assert await stopped(task)


async def test_cancellation_stops_it_while_it_waits_or_backs_off() -> None:
    wake = ObservedEvent()
    napping = ScriptedStep(ManualClock(T0), [NEVER])
    task = asyncio.create_task(run_forever(napping, wake, name="napping"))
    await asyncio.wait_for(wake.waited_on.wait(), GUARD_SECONDS)
    assert await stopped(task)

    backing_off = asyncio.Event()

    async def backoff_sleep(seconds: float) -> None:
        backing_off.set()
        await asyncio.Future()  # a backoff longer than the test

    failing = ScriptedStep(ManualClock(T0), [RuntimeError("down")])
    task = asyncio.create_task(run_forever(failing, None, name="backing-off", sleep=backoff_sleep))
    await asyncio.wait_for(backing_off.wait(), GUARD_SECONDS)
    assert await stopped(task)
    assert failing.called_at == [0.0]


async def test_cancellation_stops_it_when_the_step_turned_it_into_a_timeout_error(caplog) -> None:
    entered = asyncio.Event()
    slept: list[float] = []

    async def fetch_like_nats_py() -> float:
        entered.set()
        try:
            await asyncio.Future()
        except asyncio.CancelledError:
            raise TimeoutError from None  # what nats-py does to a cancellation that lands during a request
        return 0.0

    task = asyncio.create_task(
        run_forever(fetch_like_nats_py, None, name="follower", sleep=moving_sleep(ManualClock(T0), slept))
    )
    await asyncio.wait_for(entered.wait(), GUARD_SECONDS)
    with caplog.at_level(logging.ERROR, logger="services.runtime.background"):
        assert await stopped(task)
    assert slept == [] and caplog.records == []  # stopped, not logged and retried


@pytest.mark.parametrize("pause", [0.0, NEVER])
async def test_cancellation_stops_it_when_the_step_swallowed_it(pause: float) -> None:
    entered = asyncio.Event()
    steps = 0

    async def swallowing_step() -> float:
        nonlocal steps
        steps += 1
        entered.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.Future()  # like asyncio.wait_for on Python 3.11 when its awaitable completes as well
        return pause  # ... and the step returns as if nothing happened, asking for a pause or for none

    task = asyncio.create_task(run_forever(swallowing_step, None, name="swallower"))
    await asyncio.wait_for(entered.wait(), GUARD_SECONDS)
    assert await stopped(task)
    assert steps == 1
