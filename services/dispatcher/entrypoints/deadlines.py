"""The clock's side of dispatch: fires reminders, voice calls and acknowledgement deadlines as they pass."""

from __future__ import annotations

import asyncio
import logging

from services.dispatcher.application import Dispatcher
from services.runtime.background import Backoff, run_forever
from services.runtime.clock import Clock

log = logging.getLogger(__name__)


class DeadlineTicker:
    """Runs beside the stream consumer. Deadlines live in the store, so one that passed while the
    dispatcher was down fires on the first tick after it starts again."""

    name = "dispatcher-deadlines"

    def __init__(self, dispatcher: Dispatcher, clock: Clock, *, longest_nap_seconds: float = 1.0) -> None:
        self.dispatcher = dispatcher
        self.clock = clock
        self.longest_nap_seconds = longest_nap_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was stored (a new page, perhaps with an earlier deadline): look again now."""
        self._wake.set()

    async def tick(self) -> int:
        return await asyncio.to_thread(self.dispatcher.fire_due)

    async def step(self) -> float:
        """Fire what is due; then wait until the next deadline, at most ``longest_nap_seconds``."""
        await self.tick()
        nap = self.longest_nap_seconds
        if (upcoming := self.dispatcher.next_deadline()) is not None:
            nap = min(nap, max(0.0, (upcoming - self.clock.now()).total_seconds()))
        return nap

    async def run(self) -> None:
        # a store hiccup: the deadlines are still in the store; try again within the longest nap, never later
        retry = Backoff(base_seconds=0.1, max_seconds=self.longest_nap_seconds)
        await run_forever(self.step, self._wake, retry, name="firing deadlines")
