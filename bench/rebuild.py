"""How fast the read models rebuild from the stream, beside how fast the stream itself can be read.

Publishes N events (default 100,000: incidents of eight events each - report, page, SMS request and sent,
acknowledgement, en route, on scene, done, plus roster events) to an embedded nats-server, then
1. reads them all with nats-py (the same ephemeral pull consumer the rebuild uses, no decoding): the raw rate;
2. rebuilds fresh read models from sequence 1 (decode, upcast, fold, write, tracking per batch): the rebuild rate,
   with the stream read by a child process as ``python -m services.projections.rebuild`` reads it, then again read
   in the same process, as a service replaying at its start reads it;
3. reads them all with nats-py again (the faster raw read is the ceiling);
and prints both rates, their ratio, the floor and the load average.

Run: .venv/bin/python -m bench.rebuild [events] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import nats

from services.projections.bootstrap import build_projections
from services.projections.rebuild import read_stream, replay_into
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import SystemClock
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.stream import ensure_stream, publish_event
from tests.integration.test_projections import T0, Story, team

PUBLISH_CONCURRENCY = 256
FLOOR = 0.5  # issue 16: the rebuild at >= 50% of the raw read rate of the same stream


def incident_events(count: int) -> list:
    people = team()
    events = [person.registered() for person in people.values()]
    responders = [people["clinician"], people["coach"], people["nurse"]]
    index = 0
    while len(events) < count:
        story = Story(start=T0 + timedelta(minutes=7 * index), code=f"{1000 + index % 9000}")
        who = responders[index % len(responders)]
        events.extend(story.full_response(who, ack=1 + index % 4, en_route=3, arrive=10 + index % 70, done=90))
        index += 1
    return events[:count]


async def publish(js, events: list) -> float:
    started = time.perf_counter()
    for chunk in range(0, len(events), PUBLISH_CONCURRENCY):
        await asyncio.gather(*(publish_event(js, e) for e in events[chunk : chunk + PUBLISH_CONCURRENCY]))
    return time.perf_counter() - started


async def raw_read(js) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    async for chunk in read_stream(js):
        count += len(chunk)
    return count, time.perf_counter() - started


async def main(count: int, database_url: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedNatsServer(Path(scratch) / "nats")
        server.start()
        try:
            connection = await nats.connect(server.url)
            js = connection.jetstream()
            await ensure_stream(js)
            events = incident_events(count)
            seconds = await publish(js, events)
            print(f"published {len(events):,} events in {seconds:.1f} s")
            del events  # neither reader holds the published events: a rebuilding process does not have them
            gc.collect()
            read, read_seconds = await raw_read(js)
            settings = ProjectionsSettings(var_dir=Path(scratch) / "var", database_url=database_url)
            with build_projections(settings, SystemClock(), name="bench") as read_models:
                # as `python -m services.projections.rebuild` does: the stream read by a child process
                result = await replay_into(js, read_models, reset=True, nats_url=server.url)
                incidents = len(read_models.store.incidents(status=None, limit=10**9))
                # and as a service replaying at its start does: read and written in one process
                in_process = await replay_into(js, read_models, reset=True)
            # read again after the rebuild: the faster of the two is the ceiling (a machine busy with something
            # else during one read would otherwise flatter the ratio)
            again, again_seconds = await raw_read(js)
            await connection.close()
        finally:
            server.stop()
    raw_rate = max(read / read_seconds, again / again_seconds)
    print(f"events:                                  {read:,} ({incidents:,} incidents)")
    before, after = read / read_seconds, again / again_seconds
    print(
        f"raw nats-py read of the stream:          {raw_rate:10,.0f} events/s "
        f"(the faster of {before:,.0f} before and {after:,.0f} after the rebuild)"
    )
    backend = "PostgreSQL" if database_url else "SQLite"
    print(f"rebuild into fresh read models ({backend}): {result.rate:10,.0f} events/s ({result.seconds:.1f} s)")
    print(f"rebuild / raw read ratio:                {result.rate / raw_rate:10.3f} (floor {FLOOR:.2f})")
    print(
        f"the same, read in the rebuilding process: {in_process.rate:8,.0f} events/s, ratio "
        f"{in_process.rate / raw_rate:.3f} (a service's replay at start; the read and the writing share one core)"
    )
    print(f"load average (1/5/15 min):               {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("events", nargs="?", type=int, default=100_000)
    parser.add_argument("--database-url", default="", help="postgresql://... to rebuild into PostgreSQL")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.database_url))
