"""Rebuild the read models: replay the CRISIS stream from sequence 1 into fresh tables.

    python -m services.projections.rebuild                  # in place (stop the projections service first)
    python -m services.projections.rebuild --into rebuilt   # into a side store named "rebuilt", to compare

In place, the read-model tables are dropped and the position reset, then every event is applied again in
batches (each batch and its stream position in one transaction); a service started afterwards carries on from
the rebuilt position. The audit log is never touched. Messages no one can read are skipped, as the live
consumer skips them (they are dead letters on the stream already).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import ServiceUnavailableError

from services.contract.events import SUBJECT_PREFIX, UnreadableMessage, decode_event
from services.projections.domain.progress import RecordedEvent
from services.projections.read_models import ReadModels
from services.runtime.stream import STREAM_NAME

BATCH_SIZE = 5000
"""Events a replay applies in one transaction. Large: each transaction folds and saves every incident it touches
once, and commits once; a failure costs at most this many events applied again by the next replay."""
FETCH_SIZE = 500  # messages one pull request asks for (several make a transaction)
YOUNG_COLLECTION_THRESHOLD = 50_000
"""Allocations between two young-generation garbage collections during a replay (Python's default is 700). A replay
allocates millions of short-lived objects while the writer's cache holds thousands of incidents' events; at the
default, collecting measured as much time as the replay's own work (bench/rebuild.py)."""
UNANSWERED_FETCHES = 60  # about 30 s of "JetStream unavailable" before a rebuild gives up


@dataclass(frozen=True)
class RawMessage:
    sequence: int
    stored_at: object
    data: bytes


async def read_stream(js: JetStreamContext, first: int = 1, batch: int = FETCH_SIZE) -> AsyncIterator[list[RawMessage]]:
    """Every message from ``first`` to the stream's last sequence (as it was when called), in batches.

    Uses an ephemeral pull consumer without acks: reading changes nothing on the server.
    """
    last = (await js.stream_info(STREAM_NAME)).state.last_seq
    if last < first:
        return
    subscription = await js.pull_subscribe(
        f"{SUBJECT_PREFIX}.>",
        stream=STREAM_NAME,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=first,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,
            max_waiting=1,
        ),
    )
    unanswered = 0
    try:
        while True:
            try:
                messages = await subscription.fetch(batch, timeout=5)
            except NatsTimeout:
                info = await js.stream_info(STREAM_NAME)
                if info.state.last_seq < last:  # the stream was purged under us
                    return
                continue
            except ServiceUnavailableError:
                # a cluster still moving its leaders after a node died: wait for it, a while, as services do
                unanswered += 1
                if unanswered > UNANSWERED_FETCHES:
                    raise
                await asyncio.sleep(0.5)
                continue
            unanswered = 0
            chunk = [RawMessage(m.metadata.sequence.stream, m.metadata.timestamp, m.data) for m in messages]
            chunk = [m for m in chunk if m.sequence <= last]
            if chunk:
                yield chunk
            if not chunk or chunk[-1].sequence >= last:
                return
    finally:
        await subscription.unsubscribe()


@dataclass(frozen=True)
class ReplayResult:
    events: int
    skipped: int
    seconds: float
    position: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def replay_into(
    js: JetStreamContext, read_models: ReadModels, *, reset: bool, batch: int = BATCH_SIZE
) -> ReplayResult:
    """Apply the stream to ``read_models`` from the position after theirs (from 1 after ``reset``).

    Batches of ``batch`` messages are decoded and applied one after the other, in stream order, each in its own
    transaction (in a worker thread); while one is being written, the next is fetched. A failure stops the replay
    after the batch in flight has committed or failed: what is committed stays, with its position, and a replay
    carries on from there. The store writes them in bulk (``bulk_load``: the same rows, fewer statements, commits
    made durable at the end).
    """
    if reset:
        await asyncio.to_thread(read_models.reset)
    start = time.perf_counter()
    first = read_models.processed_position() + 1
    applied = skipped = 0
    writing: asyncio.Future[tuple[int, int]] | None = None
    with _young_collections_less_often(), read_models.store.bulk_load():
        try:
            async for chunk in _batches(read_stream(js, first, min(batch, FETCH_SIZE)), batch):
                if writing is not None:
                    applied, skipped = _add(applied, skipped, await writing)
                writing = asyncio.ensure_future(asyncio.to_thread(_decode_and_apply, read_models, chunk))
        finally:
            if writing is not None:
                applied, skipped = _add(applied, skipped, await writing)
    return ReplayResult(applied, skipped, time.perf_counter() - start, read_models.processed_position())


async def _batches(chunks: AsyncIterator[list[RawMessage]], size: int) -> AsyncIterator[list[RawMessage]]:
    """The fetched chunks, joined into batches of ``size`` messages (the last one shorter)."""
    batch: list[RawMessage] = []
    async for chunk in chunks:
        batch.extend(chunk)
        while len(batch) >= size:
            yield batch[:size]
            batch = batch[size:]
    if batch:
        yield batch


def _add(applied: int, skipped: int, batch: tuple[int, int]) -> tuple[int, int]:
    return applied + batch[0], skipped + batch[1]


def _decode_and_apply(read_models: ReadModels, chunk: list[RawMessage]) -> tuple[int, int]:
    """Decode a chunk and apply its readable events in one transaction; (applied, unreadable)."""
    recorded, unreadable = _decoded(chunk)
    _apply_locked(read_models, recorded)
    return len(recorded), unreadable


def _decoded(chunk: list[RawMessage]) -> tuple[list[RecordedEvent], int]:
    """The chunk's readable events, and how many were not (skipped, as the live consumer skips them)."""
    recorded: list[RecordedEvent] = []
    for message in chunk:
        try:
            recorded.append(RecordedEvent(message.sequence, message.stored_at, decode_event(message.data)))  # type: ignore[arg-type]
        except UnreadableMessage:
            pass
    return recorded, len(chunk) - len(recorded)


@contextmanager
def _young_collections_less_often() -> Iterator[None]:
    """Raise the young-generation collection threshold for the replay; restored afterwards."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], YOUNG_COLLECTION_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _apply_locked(read_models: ReadModels, batch: list[RecordedEvent]) -> None:
    with read_models.processing_lock:
        read_models.apply_batch(batch)


async def rebuild(nats_url: str, read_models: ReadModels, batch: int = BATCH_SIZE) -> ReplayResult:
    connection = await nats.connect([u.strip() for u in nats_url.split(",")])
    try:
        return await replay_into(connection.jetstream(), read_models, reset=True, batch=batch)
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> None:
    from services.projections.bootstrap import build_projections
    from services.projections.settings import ProjectionsSettings

    parser = argparse.ArgumentParser(prog="python -m services.projections.rebuild", description=__doc__.split("\n")[0])
    parser.add_argument("--into", metavar="NAME", help="rebuild into a side store with this name instead of in place")
    parser.add_argument("--batch", type=int, default=BATCH_SIZE, help="events per transaction (default %(default)s)")
    args = parser.parse_args(argv)
    settings = ProjectionsSettings()
    read_models = build_projections(settings, name=args.into) if args.into else build_projections(settings)
    with read_models:
        result = asyncio.run(rebuild(settings.nats_url, read_models, args.batch))
    print(
        f"rebuilt {'read models' if not args.into else args.into}: {result.events} events "
        f"({result.skipped} unreadable skipped) in {result.seconds:.1f} s, {result.rate:,.0f} events/s; "
        f"position {result.position}",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
