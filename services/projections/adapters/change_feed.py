"""Tells waiting browsers that the read models moved on: the processing thread reports each new stream
position, and every Server-Sent-Events stream waiting on the event loop wakes up. It carries only a number."""

from __future__ import annotations

import asyncio


class ChangeFeed:
    def __init__(self, loop: asyncio.AbstractEventLoop, position: int = 0) -> None:
        self.loop = loop
        self.position = position
        self._changed = asyncio.Condition()

    def notify_threadsafe(self, position: int) -> None:
        """Call from any thread after a change was committed."""
        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self._advance(position)))

    async def _advance(self, position: int) -> None:
        async with self._changed:
            self.position = max(self.position, position)
            self._changed.notify_all()

    async def wait_beyond(self, position: int, timeout: float) -> int | None:
        """The new position once it is past ``position``; None if ``timeout`` seconds pass first."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.position > position), timeout)
            except TimeoutError:
                return None
            return self.position
