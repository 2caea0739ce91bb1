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
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime

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
    SUBJECT_PREFIX,
    Envelope,
    MessageDeadLettered,
    MessageDeadLetteredData,
    UnreadableMessage,
    decode_event,
    derived_id,
    new_event,
    subject_for,
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

    async def beat() -> float:
        with contextlib.suppress(NatsError, TimeoutError):  # a lost beat (a failover): the next one may get through
            await raw.in_progress()
        return PROGRESS_INTERVAL_SECONDS

    async def beating() -> None:
        await asyncio.sleep(PROGRESS_INTERVAL_SECONDS)
        await run_forever(beat, None, name="in-progress")

    heartbeat = asyncio.create_task(beating(), name="in-progress")
    try:
        yield
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat


EVERYTHING = f"{SUBJECT_PREFIX}.>"


def filter_subjects(processor: type[StreamProcessor]) -> list[str]:
    """The subjects a durable feeding ``processor`` reads: one per event type it handles, sorted; or the whole
    stream when it handles every type."""
    types = processor.handled_types()
    if types is None:
        return [EVERYTHING]
    if not types:
        raise ValueError(f"{processor.__name__} handles no event type: a durable without a filter would read all")
    return sorted({subject_for(t.TYPE) for t in types})


def _filter_of(config: ConsumerConfig) -> set[str]:
    return set(config.filter_subjects or ([config.filter_subject] if config.filter_subject else [EVERYTHING]))


def set_filter(config: ConsumerConfig, subjects: Sequence[str]) -> None:
    """One subject as ``filter_subject`` (how older versions made their durables), more as ``filter_subjects``."""
    config.filter_subject, config.filter_subjects = (subjects[0], None) if len(subjects) == 1 else (None, [*subjects])


async def refresh_durable(js: JetStreamContext, durable: str, subjects: Sequence[str] | None = None) -> None:
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
    ) -> None:
        self.processor = processor
        self.followers = tuple(followers)
        self.publish = publish
        self.durable = durable
        self.subjects = filter_subjects(type(processor))
        """The durable's filter: the subjects of the event types the processor handles."""

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
        return self.processor.handle(event, sequence)

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
        """Migrate a durable an older version made (its ack wait, its filter) before subscribing to it."""
        await refresh_durable(js, self.durable, self.subjects)

    def subscribe(self, broker: NatsBroker) -> None:
        """Declare the durable pull consumer on ``broker``, reading ``subjects``; one message in flight keeps
        stream order. An existing durable is bound as it is: ``refresh`` it first."""
        config = ConsumerConfig(max_ack_pending=1, ack_wait=ACK_WAIT_SECONDS, max_deliver=-1)
        set_filter(config, self.subjects)

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
