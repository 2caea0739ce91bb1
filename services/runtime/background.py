"""One way to run background work for as long as a service runs: ``run_forever(step, wake, backoff)``.

Every loop beside a stream consumer (the outbox relay, the notifier's sending loop, ...) is the same shape:
do one step, wait until it is worth looking again or until someone says something changed, and keep going
through failures without losing the work. What differs is only the step, so each loop is written as a step
and handed to ``run_forever``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[float]]
"""One turn of a loop. Returns how many seconds it may wait before the next turn (0: go again at once)."""

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """How long to wait after the ``failures``-th failed step in a row: doubling from ``base_seconds``, capped."""

    base_seconds: float = 0.2
    max_seconds: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.max_seconds, self.base_seconds * 2**failures)


DEFAULT_BACKOFF = Backoff()


async def run_forever(
    step: Step,
    wake: asyncio.Event | None,
    backoff: Backoff = DEFAULT_BACKOFF,
    *,
    name: str,
    sleep: Sleep = asyncio.sleep,
) -> NoReturn:
    """Run ``step`` again and again until the task running this is cancelled; never returns otherwise.

    - Between steps it waits the seconds the step returned, or less: setting ``wake`` ends the wait at once.
      ``wake`` is cleared before each step, so a wake-up that arrives while a step runs is not lost: the next
      wait ends at once. ``None``: nothing can wake it, it waits the full time.
    - An exception from a step means "this turn failed, the work is still there": it is logged, and the step is
      tried again after ``backoff.delay(failures in a row)`` seconds, waited with ``sleep`` (tests pass one that
      moves a clock). A step must therefore keep its position until its work is done (the outbox records its
      position only after a publish succeeded), so a retry repeats work and never skips any.
    - Cancellation always stops it, also when it did not arrive as a CancelledError: nats-py turns a
      cancellation that lands during a request into a TimeoutError, and on Python 3.11 ``asyncio.wait_for``
      can return normally and swallow one. The task's pending cancellation (``Task.cancelling()``) is checked
      before and after every step and after every failure, so such a loop stops instead of going on forever.
    """
    failures = 0
    while True:
        stop_if_cancelled()
        if wake is not None:
            wake.clear()
        try:
            pause = await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stop_if_cancelled(exc)
            failures += 1
            delay = backoff.delay(failures)
            log.exception("%s failed (%s in a row); retrying in %.1f s", name, failures, delay)
            await sleep(delay)
            continue
        failures = 0
        stop_if_cancelled()  # the step may have swallowed one and returned as if nothing happened
        if pause > 0:
            await _nap(pause, wake)


async def _nap(seconds: float, wake: asyncio.Event | None) -> None:
    if wake is None:
        await asyncio.sleep(seconds)
        return
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that arrives as the
    # wake-up completes; asyncio.timeout tells its own expiry from a cancellation from outside.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()


def stop_if_cancelled(cause: BaseException | None = None) -> None:
    """Raise CancelledError if the current task was asked to stop (``cause`` is what the cancellation became).

    A cancellation request stays counted in ``Task.cancelling()`` even when the CancelledError itself was
    swallowed or turned into another exception on the way up, so a loop checks it on every turn.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from cause


class ClockWatch:
    """A follower that runs ``check(now)`` at start and then every ``interval`` seconds, and wakes ``after`` (an
    outbox relay) when the check did something. ``check`` is a processor's deadline step (``flag_overdue``,
    ``fire_due``): it returns how many things came due and keeps the due times in its store, so a failed check (a
    store hiccup) is tried again with backoff and nothing due is lost."""

    name = "clock-watch"
    did = "deadline(s) passed"

    def __init__(self, check: Callable[[Any], int], clock: Any, interval: float, after: Callable[[], None]) -> None:
        self.check = check
        self.clock = clock
        self.interval = interval
        self.after = after

    def wake(self) -> None:
        """A stream message makes nothing due sooner; the timer is enough."""

    async def check_once(self) -> int:
        done = await asyncio.to_thread(self.check, self.clock.now())
        if done:
            log.info("%s: %s %s", self.name, done, self.did)
            self.after()
        return done

    async def run(self) -> None:
        """Check now and then every ``interval`` seconds until cancelled."""
        await run_forever(self._check_then_wait, None, name=self.name)

    async def _check_then_wait(self) -> float:
        await self.check_once()
        return self.interval
