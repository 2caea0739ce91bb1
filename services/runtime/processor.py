"""Stream processors: eventsourcing applications fed from the CRISIS stream, exactly once in effect.

A processor's policy turns each contract event into new aggregate events. The stream sequence is recorded
as eventsourcing ``Tracking`` in the same transaction as those events, so a redelivered message changes
nothing. New events leave through the outbox relay, which publishes them from the store's notification
log and records how far it got, so a crash between "stored" and "published" loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol

from eventsourcing.application import ProcessingEvent, Repository
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import IntegrityError, PersistenceError, Tracking
from eventsourcing.projection import EventSourcedProjection

from services.contract.events import Envelope
from services.runtime.background import run_forever
from services.runtime.clock import Clock
from services.runtime.stream import STREAM_NAME

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 3
"""Times a message whose save conflicted with another instance's (its position not recorded: a real conflict, not a
redelivery) is handled again at once, reading what the other wrote, as its redelivery would. Before, each conflict
waited for a redelivery with a back-off (0.2 s and up), holding up its partition: two dispatchers on one store
conflicted on about 4% of 800 reports (bench/scaleout.py). Past these, it is left to the redelivery as before."""

OUTBOX_TRACKING_NAME = f"outbox->{STREAM_NAME}"
OUTBOX_RECORD_EVERY = 16
"""Stored events the outbox relay publishes between two commits of its position (issue 16: not a commit per event).
A crash repeats at most this many publishes; the stream de-duplicates them by event id within its window."""
STORE_SETUP_ATTEMPTS = 5


class StreamProcessor(EventSourcedProjection):
    """Base for a service's state: subclasses register ``policy`` handlers per contract event class."""

    producer: ClassVar[str] = ""
    subject_suffixes: ClassVar[dict[type[Envelope], tuple[str, ...]]] = {}
    """For a handled type published on sub-subjects (``Envelope.SUBJECT_SUFFIXES``): the only ones its durable reads
    (e.g. the notifier: failed delivery statuses); a type not named here is read on all of its subjects."""
    partitioned: ClassVar[bool] = False
    """True when the processor is fed by a durable per partition (``CRISIS_PARTITIONS``, runtime/partitions.py), so
    that several instances sharing its store work on different incidents at once; else by one durable."""
    batches: ClassVar[bool] = False
    """True when ``handle_batch`` applies several stream messages in one store transaction; its consumer then
    takes up to ``CRISIS_CONSUMER_BATCH`` messages at a time (consumer.py), else one."""

    def __init__(self, env: dict[str, str] | None = None, *, clock: Clock) -> None:
        self._batch: tuple[ProcessingEvent, int] | None = None
        for attempt in range(1, STORE_SETUP_ATTEMPTS + 1):
            try:
                super().__init__(env)
                break
            except PersistenceError:
                # Services sharing one PostgreSQL database create the same eventsourcing functions on start;
                # two doing it at once collide ("pg_proc_proname_args_nsp_index", "tuple concurrently
                # updated"). The setup is idempotent: do it again (a database that is down fails each time).
                if attempt == STORE_SETUP_ATTEMPTS:
                    raise
                log.warning("store setup collided with another service's (attempt %s); retrying", attempt)
                time.sleep(0.2 * attempt)
        self.clock = clock

    def handle(self, event: Envelope, stream_sequence: int, upstream: str = STREAM_NAME) -> bool:
        """Apply one stream message. True if it changed state, False if it was already processed.

        Raises IntegrityError only for a real conflict (another instance wrote the same aggregate):
        the caller should let the message be redelivered. Inside ``handle_batch`` (on its thread) the event's
        policy adds to the batch's one ``ProcessingEvent`` instead, stored when the batch ends. ``upstream``: the name
        the position is tracked under (a partition's durable has its own, partitions.py).
        """
        batch = self._batch
        if batch is not None and batch[1] == threading.get_ident():
            batch[0].tracking = Tracking(STREAM_NAME, stream_sequence)  # the policy sees its own event's position
            self.policy(event, batch[0])
            return True
        conflicts = 0
        with self.processing_lock:
            while True:
                try:
                    self.process_event(event, Tracking(upstream, stream_sequence))
                    return True
                except IntegrityError:
                    if self.recorder.has_tracking_id(upstream, stream_sequence):
                        return False
                    conflicts += 1
                    if conflicts > CONFLICT_RETRIES:
                        raise
                    log.info("seq %s: another instance saved first; handled again at once", stream_sequence)

    def handle_batch(self, items: Sequence[tuple[Envelope, int, datetime | None]]) -> list[bool]:
        """Apply stream messages (event, stream sequence, time the stream stored it; in stream order) in one store
        transaction that records the last one's position; for each, True if it changed state, False if it was
        applied before (at or below the recorded position). Raises when nothing was applied (the caller then goes
        one message at a time). Only for a processor whose ``batches`` is True.

        One ``ProcessingEvent`` takes every event's policy in turn (each through ``handle``); while they run, the
        repository answers from the aggregates the batch's earlier events changed (``BatchRepository``), so each
        policy sees what came before it. Then, as ``EventSourcedProjection.process_event`` does for one event, the
        new events are recorded with the tracking position of the last message, in one transaction."""
        if not self.batches:
            raise NotImplementedError(f"{type(self).__name__} applies one message at a time")
        with self.processing_lock:
            position = self.processed_position()
            fresh = [(event, sequence) for event, sequence, _ in items if sequence > position]
            if fresh:
                self._apply_batch(fresh)
        return [sequence > position for _, sequence, _ in items]

    def _apply_batch(self, fresh: Sequence[tuple[Envelope, int]]) -> None:
        last = Tracking(STREAM_NAME, fresh[-1][1])
        processing_event = ProcessingEvent(tracking=last)
        repository = self.repository
        self._batch = (processing_event, threading.get_ident())
        if isinstance(repository, BatchRepository):
            repository.batch.aggregates = processing_event.aggregates
        try:
            for event, sequence in fresh:
                self.handle(event, sequence)
        finally:
            self._batch = None
            if isinstance(repository, BatchRepository):
                repository.batch.aggregates = None
        processing_event.tracking = last
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self.notify(processing_event.events)
        self._notify(recordings)

    def construct_repository(self) -> Repository:
        """The application's repository, as eventsourcing makes it, answering from a batch's changes (above)."""
        repository = super().construct_repository()
        repository.__class__ = BatchRepository
        repository.batch = threading.local()
        return repository

    @classmethod
    def handled_types(cls) -> frozenset[type[Envelope]] | None:
        """The contract event classes this processor acts on. Its durable consumer is sent only those
        (``consumer.filter_subjects``): an event of another type never reaches it, so a handler must be registered
        to be fed. By default: the classes registered on a ``singledispatchmethod`` ``policy``; a processor that
        dispatches otherwise says so by overriding this. None: every event on the stream (a processor that
        registers nothing, or registers a class every event is an instance of)."""
        return registered_types(cls, "policy")

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Events a processor registers no handler for are not sent to it (``handled_types``); one that reads every
        event (``handled_types`` None) only advances its tracking position with them."""

    def outbox(self, domain_event: Any) -> Sequence[Envelope]:
        """The contract events to publish for one stored domain event (none by default)."""
        return ()

    def processed_position(self) -> int:
        return self.recorder.max_tracking_id(STREAM_NAME) or 0


class BatchRepository(Repository):
    """A repository that, on the thread applying a batch, gives the aggregates the batch's earlier events changed
    (collected on its ``ProcessingEvent``, not stored yet) in place of their stored state. Other threads (the outbox
    relay, a sending loop) see only what is stored."""

    batch: threading.local

    def get(self, aggregate_id: Any, *, version: int | None = None, **kwargs: Any) -> Any:
        pending = getattr(self.batch, "aggregates", None)
        if version is None and pending is not None and aggregate_id in pending:
            return pending[aggregate_id]
        return super().get(aggregate_id, version=version, **kwargs)

    def __contains__(self, aggregate_id: Any) -> bool:
        pending = getattr(self.batch, "aggregates", None)
        return (pending is not None and aggregate_id in pending) or super().__contains__(aggregate_id)


def registered_types(owner: type, name: str) -> frozenset[type[Envelope]] | None:
    """The event classes registered on ``owner``'s ``singledispatchmethod`` called ``name`` (the nearest one in
    its MRO), its catch-all ``object`` left out; None if it has no registration, or one covering every event."""
    getattr(owner, name)  # binding the method applies registrations eventsourcing deferred
    method = next((vars(klass)[name] for klass in owner.__mro__ if name in vars(klass)), None)
    registry = getattr(getattr(method, "dispatcher", None), "registry", {})
    types = frozenset(t for t in registry if t is not object)
    if not types or any(issubclass(Envelope, t) for t in types):
        return None
    return types


class Follower(Protocol):
    """Background work beside a processor's consumer (the outbox relay, a sending loop, a deadline ticker):
    woken after every consumed message, run until its task is cancelled."""

    name: str

    def wake(self) -> None: ...

    async def run(self) -> None: ...


class LogFollower:
    """Follows a processor's own notification log from a recorded position, acting on each stored event.

    The position advances only after the actions before it succeeded, so a crash repeats actions, never skips one.
    It is recorded after every ``record_every`` actions and after the last one of a turn (a store commit each): a
    crash repeats at most ``record_every`` actions, so the actions must be safe to repeat (the outbox relay's
    publishes are: each event's id is derived from the stored event, and the stream drops a second publish of an id
    within its de-duplication window)."""

    def __init__(
        self,
        processor: StreamProcessor,
        name: str,
        act: Callable[[Any], Awaitable[None]],
        *,
        batch_size: int = 100,
        idle_poll_seconds: float = 0.5,
        record_every: int = 1,
    ) -> None:
        self.processor = processor
        self.name = name
        self.act = act
        self.batch_size = batch_size
        self.record_every = max(1, record_every)
        self.idle_poll_seconds = idle_poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def follow_once(self) -> int:
        """Act on everything stored since the recorded position; returns how many stored events it took."""
        recorder = self.processor.recorder
        pending = await asyncio.to_thread(self._pending)
        for taken, (notification_id, domain_event) in enumerate(pending, start=1):
            await self.act(domain_event)
            if taken % self.record_every and taken < len(pending):
                continue
            try:
                await asyncio.to_thread(recorder.insert_tracking, Tracking(self.name, notification_id))
            except IntegrityError:
                # another instance sharing this store got here first: carry on from where it is
                log.debug("%s: position %s already recorded by another instance", self.name, notification_id)
                return taken
        return len(pending)

    def _pending(self) -> list[tuple[int, Any]]:
        recorder = self.processor.recorder
        position = recorder.max_tracking_id(self.name) or 0
        notifications = recorder.select_notifications(start=position + 1, limit=self.batch_size)
        return [(n.id, self.processor.mapper.to_domain_event(n)) for n in notifications]

    async def run(self) -> None:
        """Follow the log until cancelled; a failing turn (NATS down, a store hiccup) keeps the position and is
        retried with backoff."""
        await run_forever(self._run_turn, self._wake, name=self.name)

    async def _run_turn(self) -> float:
        """Follow the log; look again at once if it took something, else after ``idle_poll_seconds``."""
        return 0.0 if await self.follow_once() else self.idle_poll_seconds


def outbox_relay(processor: StreamProcessor, publish: Callable[[Envelope], Awaitable[int]]) -> LogFollower:
    """Publishes a processor's new events to the stream, resuming from its recorded position.

    Event ids are derived from the stored event, so a publish repeated after a crash is de-duplicated
    by the stream's Nats-Msg-Id window.
    """

    async def publish_contract_events(domain_event: Any) -> None:
        for event in await asyncio.to_thread(processor.outbox, domain_event):
            await publish(event)

    return LogFollower(processor, OUTBOX_TRACKING_NAME, publish_contract_events, record_every=OUTBOX_RECORD_EVERY)
