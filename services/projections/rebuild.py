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
import contextlib
import gc
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import nats
from nats.js import JetStreamContext

from services.contract.events import UnreadableMessage, decode_event
from services.projections.domain.progress import RecordedEvent
from services.projections.read_models import ReadModels
from services.projections.stream_reader import FETCH_SIZE, RawMessage, read_stream, read_stream_in_child

__all__ = ["BATCH_SIZE", "FETCH_SIZE", "RawMessage", "ReplayResult", "read_stream", "replay_into", "rebuild"]

BATCH_SIZE = 5000
"""Events a replay applies in one transaction. Large: each transaction folds and saves every incident it touches
once, and commits once; a failure costs at most this many events applied again by the next replay."""
YOUNG_COLLECTION_THRESHOLD = 50_000
"""Allocations between two young-generation garbage collections during a replay (Python's default is 700). A replay
allocates millions of short-lived objects while the writer's cache holds thousands of incidents' events; at the
default, collecting measured as much time as the replay's own work (bench/rebuild.py)."""


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
    js: JetStreamContext,
    read_models: ReadModels,
    *,
    reset: bool,
    batch: int = BATCH_SIZE,
    nats_url: str | None = None,
) -> ReplayResult:
    """Apply the stream to ``read_models`` from the position after theirs (from 1 after ``reset``).

    Batches of ``batch`` messages are decoded and applied one after the other, in stream order, each in its own
    transaction (in a worker thread); while one is being written, the next is fetched: with ``nats_url``, by a child
    process (``stream_reader.read_stream_in_child``: the read and the writing on two cores), else in this process
    through ``js``. A failure stops the replay after the batch in flight has committed or failed: what is committed
    stays, with its position, and a replay carries on from there. The store writes them in bulk (``bulk_load``:
    the same rows, fewer statements, commits made durable at the end).
    """
    if reset:
        await asyncio.to_thread(read_models.reset)
    start = time.perf_counter()
    first = read_models.processed_position() + 1
    fetch = min(batch, FETCH_SIZE)
    chunks = read_stream_in_child(nats_url, first, fetch) if nats_url else read_stream(js, first, fetch)
    applied = skipped = 0
    writing: asyncio.Future[tuple[int, int]] | None = None
    with _young_collections_less_often(), read_models.store.bulk_load():
        try:
            async with contextlib.aclosing(chunks):  # a child reader is stopped with the replay, not at collection
                async for chunk in _batches(chunks, batch):
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
        return await replay_into(connection.jetstream(), read_models, reset=True, batch=batch, nats_url=nats_url)
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
