"""Durable, explicitly acked consumption of the CRISIS stream into a StreamProcessor.

Outcomes of one message:
- processed, or already processed (a redelivery): ack;
- unreadable (not JSON, unknown type, invalid): a ``message.dead_lettered`` event with the reason, then ack;
- a store or connection failure: nack with backoff, retried for as long as it takes (nothing is dropped);
- any other error, ``POISON_ATTEMPTS`` times in a row: dead-lettered with the error, so one bad message
  cannot block every incident behind it. Dead letters stay on the stream for a human to replay.

Each durable is sent only the subjects of the event types its processor handles (``filter_subjects``, from
``StreamProcessor.handled_types``), so an event nobody in a service acts on costs that service no read. Its
tracking position then skips the other sequence numbers; eventsourcing's single-row tracking keeps only the
highest position, and nothing checks that positions are contiguous.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from eventsourcing.persistence import PersistenceError
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.contract.events import (
    ANY_PARTITION,
    SUBJECT_PREFIX,
    Envelope,
    MessageDeadLettered,
    MessageDeadLetteredData,
    UnreadableMessage,
    decode_event,
    derived_id,
    new_event,
)
from services.runtime.background import run_forever
from services.runtime.json_logs import event_log_fields
from services.runtime.observability import EVENTS_DEAD_LETTERED, EVENTS_HANDLED
from services.runtime.processor import Follower, StreamProcessor
from services.runtime.stream import STREAM_NAME

log = logging.getLogger(__name__)

POISON_ATTEMPTS = 5
MAX_BACKOFF_SECONDS = 30.0
ACK_WAIT_SECONDS = 10.0
"""How long the server waits for an ack before redelivering. Short, because with one message in flight a
delivery lost with a dying node holds every event behind it this long (the cluster test saw 60 s stalls);
a handler that takes longer is kept alive by ``working_on`` instead of being redelivered."""
PROGRESS_INTERVAL_SECONDS = ACK_WAIT_SECONDS / 3
DEFAULT_BATCH = 32
CONTENTION_SECONDS = ACK_WAIT_SECONDS * 1.5
"""How long a batch waits for the rest of what is in flight (a dead process's messages come back after the ack
wait) before it is handed back (plus a random part of half the ack wait)."""
MORE_WAIT_SECONDS = 0.5


def consumer_batch() -> int:
    """Messages a batch-capable processor takes per store transaction: ``CRISIS_CONSUMER_BATCH`` (default 32; 1 is
    one message at a time, as before batches)."""
    return max(1, int(os.environ.get("CRISIS_CONSUMER_BATCH", DEFAULT_BATCH)))


def retry_delay(attempt: int) -> float:
    return min(MAX_BACKOFF_SECONDS, 0.2 * 2 ** max(0, attempt - 1))


async def confirm_ack(raw: Msg, *, give_up_after: float = ACK_WAIT_SECONDS) -> bool:
    """Ack and wait until the consumer's leader confirms it, re-sending until it does; True once confirmed.

    A plain ack is fire-and-forget. In a cluster, if the node leading the consumer dies before the ack is
    replicated, the new leader redelivers the message only after ack_wait (60 s), and with one message in
    flight every incident behind it waits that long. The ack subject reaches whichever node leads the consumer
    now, so an ack re-sent after the failover lands at the new leader (tests/integration/test_nats_cluster.py).
    Giving up is safe: the message is then redelivered, and the processor's tracking makes that a no-op.
    """
    deadline = time.monotonic() + give_up_after
    while True:
        try:
            await raw.ack_sync(timeout=1.0)
            return True
        except ConnectionClosedError:  # shutting down: the redelivery after restart is a no-op
            return False
        except (NatsError, TimeoutError):  # no consumer leader right now (failover): nothing to await, re-send
            if time.monotonic() > deadline:
                log.warning("ack of seq %s not confirmed; it will be redelivered", raw.metadata.sequence.stream)
                return False
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def working_on(raw: Msg) -> AsyncIterator[None]:
    """While the block runs, tell the server every few seconds that the message is still being processed, so
    a slow handler (a store slow to answer) is not redelivered to another instance meanwhile."""
    async with working_on_all([raw]):
        yield


EVERYTHING = f"{SUBJECT_PREFIX}.>"


def filter_subjects(processor: type[StreamProcessor], partition: str | None = ANY_PARTITION) -> list[str]:
    """The subjects a durable feeding ``processor`` reads: those of each event type it handles (a type's own subject,
    and its sub-subjects, or those the processor's ``subject_suffixes`` names), in no partition and in ``partition``
    (by default any: every event of those types; None: only those in no partition; a token: also those in that
    partition), sorted; or the whole stream when it handles every type."""
    types = processor.handled_types()
    if types is None:
        return [EVERYTHING]
    if not types:
        raise ValueError(f"{processor.__name__} handles no event type: a durable without a filter would read all")
    narrowed = processor.subject_suffixes
    return sorted({subject for t in types for subject in t.type_subjects(narrowed.get(t), partition=partition)})


def _filter_of(config: ConsumerConfig) -> set[str]:
    return set(config.filter_subjects or ([config.filter_subject] if config.filter_subject else [EVERYTHING]))


def set_filter(config: ConsumerConfig, subjects: Sequence[str]) -> None:
    """One subject as ``filter_subject`` (how older versions made their durables), more as ``filter_subjects``."""
    config.filter_subject, config.filter_subjects = (subjects[0], None) if len(subjects) == 1 else (None, [*subjects])


async def refresh_durable(
    js: JetStreamContext, durable: str, subjects: Sequence[str] | None = None, *, max_ack_pending: int | None = None
) -> None:
    """Bring a durable consumer made by an older version up to today's ack wait and, given ``subjects``, to that
    filter (a subscriber binds to an existing durable as it is). A new durable is created by the subscriber with
    today's settings.

    The durable is edited in place, so it keeps its delivered position: it goes on from the next message after
    the last one it was given, now reading only ``subjects``. Nothing it already processed comes again, and
    nothing after that position in the new filter is skipped. (A type added to the filter is read from there on,
    as a handler added before filters existed only saw events after its processor's position.)"""
    try:
        info = await js.consumer_info(STREAM_NAME, durable)
    except NotFoundError:
        return
    config, changes = info.config, []
    if config.ack_wait != ACK_WAIT_SECONDS:
        config.ack_wait = ACK_WAIT_SECONDS
        changes.append(f"ack wait {ACK_WAIT_SECONDS} s")
    if subjects is not None and _filter_of(config) != set(subjects):
        set_filter(config, subjects)
        changes.append(f"filter {len(subjects)} subject(s)")
    if max_ack_pending is not None and config.max_ack_pending != max_ack_pending:
        config.max_ack_pending = max_ack_pending
        changes.append(f"{max_ack_pending} in flight")
    if changes:
        await js.add_consumer(STREAM_NAME, config)
        log.info("%s: updated (%s)", durable, ", ".join(changes))


def dead_letter_event(
    consumer: str, reason: str, sequence: int, subject: str, payload: bytes, now
) -> MessageDeadLettered:
    data = MessageDeadLetteredData(
        consumer=consumer,
        reason=reason[:2000],
        stream_sequence=sequence,
        original_subject=subject,
        original_payload=payload[:8192].decode("utf-8", errors="replace"),
    )
    return new_event(
        MessageDeadLettered,
        data,
        event_id=derived_id("dead-letter", consumer, sequence),
        occurred_at=now,
        producer=consumer,
    )


class ProcessorConsumer:
    """Feeds stream messages to a processor; one per service instance."""

    def __init__(
        self,
        processor: StreamProcessor,
        followers: Sequence[Follower],
        publish: Callable[[Envelope], Awaitable[int]],
        *,
        durable: str,
        batch: int | None = None,
        subjects: Sequence[str] | None = None,
        upstream: str = STREAM_NAME,
    ) -> None:
        self.processor = processor
        self.followers = tuple(followers)
        self.publish = publish
        self.durable = durable
        self.subjects = list(subjects) if subjects is not None else filter_subjects(type(processor))
        """The durable's filter: by default the subjects of the event types the processor handles (partitions.py: a
        partition's)."""
        self.upstream = upstream
        """The name the processor's tracking records this durable's stream positions under (one per partition)."""
        self.batch = (batch or consumer_batch()) if processor.batches else 1
        """Messages per store transaction (and in flight at the durable): 1 unless the processor takes batches."""
        self.js: JetStreamContext | None = None
        self.pulling: asyncio.Task[None] | None = None
        self.puller: Any = None

    async def deliver(
        self, payload: bytes, subject: str, sequence: int, attempt: int, stored_at: datetime | None = None
    ) -> float | None:
        """Process one message (which the stream stored at ``stored_at``). Returns None to ack, or a delay in
        seconds to nack with."""
        try:
            event = decode_event(payload)
        except UnreadableMessage as exc:
            await self._dead_letter(str(exc), sequence, subject, payload, cause="unreadable")
            EVENTS_HANDLED.labels(self.durable, "unreadable", "dead_lettered").inc()
            return None
        with event_log_fields(event):  # every line logged while handling it names its incident
            return await self._handle(event, payload, subject, sequence, attempt, stored_at)

    def apply(self, event: Envelope, sequence: int, stored_at: datetime | None) -> bool:
        """Hand one event to the processor (in a worker thread); True if it changed state. A consumer whose
        processor keeps the stream's own time of each event (the projections' read models) overrides this."""
        if self.upstream == STREAM_NAME:  # (a processor may override ``handle`` without the tracking name)
            return self.processor.handle(event, sequence)
        return self.processor.handle(event, sequence, self.upstream)

    async def _handle(
        self, event: Envelope, payload: bytes, subject: str, sequence: int, attempt: int, stored_at: datetime | None
    ) -> float | None:
        handled = EVENTS_HANDLED.labels(self.durable, event.type, "processed")
        try:
            changed = await asyncio.to_thread(self.apply, event, sequence, stored_at)
        except (PersistenceError, OSError) as exc:
            log.warning("%s: seq %s failed (%s), will retry", self.durable, sequence, type(exc).__name__)
            EVENTS_HANDLED.labels(self.durable, event.type, "retried").inc()
            return retry_delay(attempt)
        except Exception as exc:
            log.exception("%s: seq %s raised (attempt %s)", self.durable, sequence, attempt)
            if attempt < POISON_ATTEMPTS:
                EVENTS_HANDLED.labels(self.durable, event.type, "retried").inc()
                return retry_delay(attempt)
            await self._dead_letter(f"{type(exc).__name__}: {exc}", sequence, subject, payload, cause="poison")
            EVENTS_HANDLED.labels(self.durable, event.type, "dead_lettered").inc()
            return None
        if changed is False:  # a redelivery of something already processed
            handled = EVENTS_HANDLED.labels(self.durable, event.type, "duplicate")
        handled.inc()
        for follower in self.followers:
            follower.wake()
        return None

    async def _dead_letter(self, reason: str, sequence: int, subject: str, payload: bytes, *, cause: str) -> None:
        # the reason can quote field values (phone numbers): it goes on the stream, not into the log
        log.error("%s: dead-lettering seq %s (%s)", self.durable, sequence, cause)
        EVENTS_DEAD_LETTERED.labels(self.durable, cause).inc()
        await self.publish(
            dead_letter_event(self.durable, reason, sequence, subject, payload, self.processor.clock.now())
        )

    async def refresh(self, js: JetStreamContext) -> None:
        """Migrate a durable an older version made (its ack wait, its filter, how many messages it has in flight)
        before subscribing to it."""
        self.js = js
        await refresh_durable(js, self.durable, self.subjects, max_ack_pending=self.batch)
        if self.batch > 1:  # pulled by this consumer, not by a subscriber that would declare it on start
            config = self.config()
            config.durable_name = self.durable
            with contextlib.suppress(NotFoundError):
                await js.consumer_info(STREAM_NAME, self.durable)
                return
            await js.add_consumer(STREAM_NAME, config)

    def config(self) -> ConsumerConfig:
        """The durable's settings: at most one batch (``batch`` messages) in flight, across all instances."""
        config = ConsumerConfig(max_ack_pending=self.batch, ack_wait=ACK_WAIT_SECONDS, max_deliver=-1)
        set_filter(config, self.subjects)
        return config

    def subscribe(self, broker: NatsBroker) -> None:
        """Declare the durable pull consumer on ``broker``, reading ``subjects``; one message in flight keeps
        stream order. An existing durable is bound as it is: ``refresh`` it first. A consumer taking batches pulls
        on ``refresh``'s JetStream connection instead (``pull_batches``), until that connection closes."""
        if self.batch > 1:
            if self.js is None:
                raise RuntimeError("refresh(js) the durable before subscribing a consumer that takes batches")
            self.pulling = asyncio.create_task(self.pull_batches(self.js), name=f"{self.durable}-batches")
            return
        config = self.config()

        @broker.subscriber(
            config.filter_subject or "",  # several subjects: named by the config's filter_subjects alone
            stream=JStream(STREAM_NAME, declare=False),
            durable=self.durable,
            pull_sub=PullSub(batch_size=1, timeout=1.0),
            config=config,
            ack_policy=AckPolicy.MANUAL,
        )
        async def on_crisis_event(msg: NatsMessage) -> None:
            async with working_on(msg.raw_message):
                delay = await self.deliver_message(msg.raw_message)
            if delay is None:
                await confirm_ack(msg.raw_message)
            else:
                await msg.nack(delay=delay)

    async def deliver_message(self, raw: Msg) -> float | None:
        """Process one stream message; None to ack it, else the delay before it is delivered again."""
        metadata = raw.metadata
        return await self.deliver(
            raw.data, raw.subject, metadata.sequence.stream, metadata.num_delivered, metadata.timestamp
        )

    # ---- batches ----------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop pulling batches (a message taken and not acked is redelivered, a no-op if it was applied)."""
        if self.pulling is not None:
            self.pulling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pulling
        if self.puller is not None:  # else draining the connection waits for it
            with contextlib.suppress(NatsError, TimeoutError):
                await self.puller.unsubscribe()
            self.puller = None

    async def pull_batches(self, js: JetStreamContext) -> None:
        """Fetch up to ``batch`` messages at a time and deliver them together, until the connection closes."""
        self.puller = puller = await js.pull_subscribe_bind(durable=self.durable, stream=STREAM_NAME)
        while True:
            try:
                messages = await puller.fetch(self.batch, timeout=1.0)
            except ConnectionClosedError:
                return
            except (NatsError, TimeoutError):  # nothing to read, or no consumer leader right now (a failover)
                continue
            if not messages:
                continue
            try:
                await self.deliver_batch(js, puller, messages)
            except ConnectionClosedError:
                return
            except Exception:  # the loop must outlive any one batch: what was not acked comes again
                log.exception("%s: batch delivery failed; its messages will be redelivered", self.durable)
                await asyncio.sleep(0.2)

    async def deliver_batch(self, js: JetStreamContext, puller: Any, messages: Sequence[Msg]) -> None:
        """Apply ``messages`` in one store transaction and ack them after it committed.

        Only when they are all the durable has in flight: a message before them held elsewhere (by a process that
        died, until the server redelivers it) must be applied first, so the batch waits, taking more from the
        durable, until it holds everything in flight, and is applied in stream order. Two live instances holding
        parts of what is in flight hand theirs back after ``CONTENTION_SECONDS`` (a random moment, so that one then
        takes all). A batch that fails is delivered one message at a time, with the outcomes of ``deliver`` (dead
        letter, retry with backoff, poison), stopping at the first retry to keep stream order."""
        held = {m.metadata.sequence.stream: m for m in messages}
        async with working_on_all(held.values()) as beating:
            give_up = time.monotonic() + CONTENTION_SECONDS + random.uniform(0.0, ACK_WAIT_SECONDS / 2)
            while not await self._alone_in_flight(js, len(held)):
                log.debug("%s: holding %s; waiting for what else is in flight", self.durable, sorted(held))
                if time.monotonic() > give_up:
                    for message in held.values():
                        with contextlib.suppress(NatsError, TimeoutError):
                            await message.nak()
                    return
                for message in await _more(puller, self.batch - len(held)):
                    held[message.metadata.sequence.stream] = message  # a redelivery replaces what it redelivers
                    beating.append(message)
            batch = [held[sequence] for sequence in sorted(held)]
            applied = await self._apply_together(batch)
        if applied:
            for message in batch[:-1]:
                with contextlib.suppress(NatsError, TimeoutError):  # a lost ack: a redelivery, then a no-op
                    await message.ack()
            await confirm_ack(batch[-1])
            return
        for position, message in enumerate(batch):  # one at a time; stop at a retry to keep stream order
            async with working_on(message):
                delay = await self.deliver_message(message)
            if delay is None:
                await confirm_ack(message)
                continue
            for later in batch[position:]:
                with contextlib.suppress(NatsError, TimeoutError):
                    await later.nak(delay=delay)
            return

    async def _alone_in_flight(self, js: JetStreamContext, count: int) -> bool:
        try:
            info = await js.consumer_info(STREAM_NAME, self.durable)
        except (NatsError, TimeoutError):  # no consumer leader right now: not known, so not alone
            return False
        return info.num_ack_pending == count

    async def _apply_together(self, batch: Sequence[Msg]) -> bool:
        """True when the whole batch was applied (or had been) in one transaction; False to go one at a time."""
        items = []
        for message in batch:
            try:
                event = decode_event(message.data)
            except UnreadableMessage:
                return False  # dead-lettered by the one-at-a-time path
            items.append((event, message.metadata.sequence.stream, message.metadata.timestamp))
        try:
            changed = await asyncio.to_thread(self.processor.handle_batch, items)
        except Exception:
            log.warning("%s: batch of %s failed; one message at a time", self.durable, len(items), exc_info=True)
            return False
        for (event, _, _), did in zip(items, changed, strict=True):
            EVENTS_HANDLED.labels(self.durable, event.type, "processed" if did else "duplicate").inc()
        for follower in self.followers:
            follower.wake()
        return True


async def _more(puller: Any, room: int) -> list[Msg]:
    """What the durable hands out next (up to ``room`` messages), waiting a moment; none on a timeout."""
    if room <= 0:
        await asyncio.sleep(MORE_WAIT_SECONDS)
        return []
    try:
        return await puller.fetch(room, timeout=MORE_WAIT_SECONDS)
    except (NatsError, TimeoutError):
        return []


@contextlib.asynccontextmanager
async def working_on_all(messages: Iterable[Msg]) -> AsyncIterator[list[Msg]]:
    """``working_on`` for every message of a batch, with one heartbeat task; a message appended to the list it
    yields is kept alive too. A lost beat (a failover) is followed by the next."""
    messages = list(messages)

    async def beat() -> float:
        for message in messages:
            with contextlib.suppress(NatsError, TimeoutError):
                await message.in_progress()
        return PROGRESS_INTERVAL_SECONDS

    async def beating() -> None:
        await asyncio.sleep(PROGRESS_INTERVAL_SECONDS)
        await run_forever(beat, None, name="in-progress")

    heartbeat = asyncio.create_task(beating(), name="in-progress")
    try:
        yield messages
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
