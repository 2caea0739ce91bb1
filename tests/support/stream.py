"""The one place for tests' stream and waiting helpers: publish events, read the stream back, and wait.

Wait on tracking wherever something records how far it got, as eventsourcing's own tests do
(``TrackingRecorder.wait``): a processor's stream position (``tracked``), its outbox relay's position in its own
log (``relayed``). Poll (``eventually``: bounded, with a short interval) only for what records nothing a test can
wait on: what another process or a timer put on the stream, a consumer's ack floor on the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from eventsourcing.persistence import TrackingRecorder

from services.contract.events import Envelope, decode_event
from services.runtime.processor import OUTBOX_TRACKING_NAME, StreamProcessor
from services.runtime.stream import STREAM_NAME, publish_event

WAIT_SECONDS = 15.0
T = TypeVar("T")


async def publish_all(js: Any, events: Iterable[Envelope]) -> int:
    """Publish ``events`` in order; the stream sequence of the last one (0 when there were none)."""
    last = 0
    for event in events:
        last = await publish_event(js, event)
    return last


async def last_sequence(js: Any) -> int:
    return (await js.stream_info(STREAM_NAME)).state.last_seq


async def stream_events(js: Any, first: int = 1) -> list[Envelope]:
    """Every event on the stream from sequence ``first`` on."""
    last = await last_sequence(js)
    return [decode_event((await js.get_msg(STREAM_NAME, s)).data) for s in range(first, last + 1)]


async def tracked(
    recorder: TrackingRecorder, position: int | None, name: str = STREAM_NAME, timeout: float = WAIT_SECONDS
) -> None:
    """Wait until ``recorder`` has recorded ``position`` (or a later one) under ``name`` (by default: the stream
    position of a processor, or of the read models' store). Raises TimeoutError after ``timeout`` seconds."""
    await asyncio.to_thread(recorder.wait, name, position, timeout)


async def relayed(processor: StreamProcessor, timeout: float = WAIT_SECONDS) -> None:
    """Wait until ``processor``'s outbox relay has published everything the processor has stored so far."""
    stored = await asyncio.to_thread(processor.recorder.max_notification_id)
    await tracked(processor.recorder, stored or None, OUTBOX_TRACKING_NAME, timeout)


async def eventually(
    probe: Callable[[], Awaitable[T]], what: str, timeout: float = WAIT_SECONDS, interval: float = 0.05
) -> T:
    """Poll ``probe()`` until it returns something true, and return that; AssertionError naming ``what`` after
    ``timeout`` seconds. Only for what nothing records (see the module's docstring)."""
    deadline = time.monotonic() + timeout
    while not (found := await probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)
    return found


async def wait_for_stream(
    js: Any, predicate: Callable[[list[Envelope]], bool], first: int = 1, timeout: float = WAIT_SECONDS
) -> list[Envelope]:
    """The stream's events from ``first`` once ``predicate(events)`` holds: for what a timer or another process
    publishes (nothing a test can wait on records it)."""

    async def events_once_true() -> list[Envelope] | None:
        events = await stream_events(js, first)
        return events if predicate(events) else None

    return await eventually(events_once_true, "the stream to show what was expected", timeout)


async def wait_for_consumer_to_drain(js: Any, last: int, durable: str, timeout: float = WAIT_SECONDS) -> None:
    """Wait until the durable consumer acknowledged everything up to ``last`` (server-side state)."""

    async def drained() -> bool:
        info = await js.consumer_info(STREAM_NAME, durable)
        return info.ack_floor.stream_seq >= last and info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(drained, f"consumer {durable} to drain to {last}", timeout)
