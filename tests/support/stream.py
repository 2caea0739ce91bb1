"""The one place for tests' stream and waiting helpers: publish events, read the stream back, and wait.

Wait on what records or announces progress, as eventsourcing's own tests do (``TrackingRecorder.wait``):
a processor's stream position (``tracked``), its outbox relay's position in its own log (``relayed``), the
messages arriving on a subject (``SubjectWatch``, ``watching``), the writes to a key-value entry (``kv_value``,
a KV watch). Poll (``eventually``: bounded, with a short interval, failing with what it waited for) only for what
announces nothing a test can await: another process's HTTP answers, a consumer's ack floor on the server, a
cluster electing a leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from eventsourcing.persistence import TrackingRecorder
from nats.js.errors import NotFoundError

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


async def stream_types(js: Any, first: int = 1) -> list[str]:
    """The type of every event on the stream from sequence ``first`` on, in stream order."""
    return [event.type for event in await stream_events(js, first)]


async def tracked(
    recorder: TrackingRecorder, position: int | None, name: str = STREAM_NAME, timeout: float = WAIT_SECONDS
) -> None:
    """Wait until ``recorder`` has recorded ``position`` (or a later one) under ``name`` (by default: the stream
    position of a processor, or of the read models' store). Raises TimeoutError after ``timeout`` seconds."""
    await asyncio.to_thread(recorder.wait, name, position, timeout)


async def taken_in(js: Any, durable: str, timeout: float = WAIT_SECONDS) -> None:
    """Wait until ``durable`` has acknowledged everything on the stream its filter reads (its consumer acks once the
    processor committed). For a filtered processor, whose tracking records neither the positions of the events it
    is not sent nor that of an unreadable message it dead-lettered, this is how to know it took everything in."""
    await wait_for_consumer_to_drain(js, await last_sequence(js), durable, timeout)


async def relayed(processor: StreamProcessor, timeout: float = WAIT_SECONDS) -> None:
    """Wait until ``processor``'s outbox relay has published everything the processor has stored so far."""
    stored = await asyncio.to_thread(processor.recorder.max_notification_id)
    await tracked(processor.recorder, stored or None, OUTBOX_TRACKING_NAME, timeout)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    what: str | Callable[[], str],
    timeout: float = WAIT_SECONDS,
    interval: float = 0.05,
) -> T:
    """Poll ``probe()`` until it returns something true, and return that. After ``timeout`` seconds, raise
    AssertionError naming ``what`` (a callable is asked only then, so it can show the last answer seen).
    Only for what announces nothing a test can await (see the module's docstring)."""
    deadline = time.monotonic() + timeout
    while not (found := await probe()):
        if time.monotonic() > deadline:
            described = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out after {timeout:g} s waiting for {described}")
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


async def last_on(js: Any, subjects: list[str]) -> int:
    """The stream sequence of the last message on any of ``subjects`` (0: none); wildcards allowed (the server
    finds the last message matching one, ``crisis.*.<type>`` for a type in any partition)."""
    last = 0
    for subject in subjects:
        with contextlib.suppress(NotFoundError):
            last = max(last, (await js.get_last_msg(STREAM_NAME, subject)).seq)
    return last


async def wait_for_consumer_to_drain(js: Any, last: int, durable: str, timeout: float = WAIT_SECONDS) -> None:
    """Wait until the durable consumer acknowledged everything up to ``last`` (server-side state). A durable reads
    only its filter's subjects, so its ack floor stops at the last message on those: that one (read from the
    stream, not from the consumer's pending count, which the server updates after the publish is acknowledged)."""

    async def drained() -> bool:
        info = await js.consumer_info(STREAM_NAME, durable)
        floor = min(last, await last_on(js, info.config.filter_subjects or [info.config.filter_subject or ">"]))
        return info.ack_floor.stream_seq >= floor and info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(drained, f"consumer {durable} to drain to {last}", timeout)


async def kv_value(
    js: Any, bucket: str, key: str, accept: Callable[[Any], bool], what: str, timeout: float = WAIT_SECONDS
) -> Any:
    """The JSON value of ``key`` in ``bucket`` once ``accept`` takes it: the current entry first, then each write,
    through a KV watch (nothing polled). AssertionError naming ``what`` after ``timeout`` seconds."""
    watcher = await (await js.key_value(bucket)).watch(key)
    try:
        async with asyncio.timeout(timeout):
            async for entry in watcher:  # None marks the end of the current entries; deletes carry no value
                if entry is not None and entry.value and accept(value := json.loads(entry.value)):
                    return value
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from None
    finally:
        await watcher.stop()
    raise AssertionError(f"the watch of {bucket}/{key} stopped before {what}")


def envelope_of(msg: Any) -> Envelope:
    return decode_event(msg.data)


class SubjectWatch(Generic[T]):
    """Every message on a subscription as it arrives, each turned into a ``T`` by ``decode`` (by default the
    event it carries), and a wait on what they show: awaited on their arrival, not polled."""

    def __init__(self, decode: Callable[[Any], T] = envelope_of) -> None:
        self.seen: list[T] = []
        self._decode = decode
        self._arrived = asyncio.Condition()

    async def on_message(self, msg: Any) -> None:
        """The subscription's callback (``cb=watch.on_message``)."""
        item = self._decode(msg)
        async with self._arrived:
            self.seen.append(item)
            self._arrived.notify_all()

    async def until(self, predicate: Callable[[list[T]], bool], what: str, timeout: float = WAIT_SECONDS) -> list[T]:
        """Everything seen so far, once ``predicate(seen)`` holds; AssertionError naming ``what`` after ``timeout``."""
        async with self._arrived:
            try:
                await asyncio.wait_for(self._arrived.wait_for(lambda: predicate(self.seen)), timeout)
            except TimeoutError:
                raise AssertionError(
                    f"timed out after {timeout:g} s waiting for {what} ({len(self.seen)} messages seen)"
                ) from None
            return list(self.seen)


@contextlib.asynccontextmanager
async def watching(nc: Any, subject: str, decode: Callable[[Any], T] = envelope_of) -> AsyncIterator[SubjectWatch[T]]:
    """A ``SubjectWatch`` of the core NATS messages on ``subject`` (wildcards allowed) from now on."""
    watch: SubjectWatch[T] = SubjectWatch(decode)
    subscription = await nc.subscribe(subject, cb=watch.on_message)
    try:
        yield watch
    finally:
        await subscription.unsubscribe()
