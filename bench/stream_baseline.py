"""Baseline figures the later benchmarks compare against.

Prints: raw JetStream publish rate (acked, with Nats-Msg-Id) and a dispatcher's processing rate for
incident.reported events on SQLite (tracking + aggregate events in one transaction), and their ratio.
Run: .venv/bin/python -m bench.stream_baseline [count]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import nats

from services.dispatcher.adapters.roster_seed import seed_events
from services.dispatcher.bootstrap import build
from services.dispatcher.settings import DispatcherSettings
from services.runtime.clock import SystemClock
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.stream import ensure_stream, publish_event
from tests import factories

ROSTER = Path(__file__).resolve().parents[1] / "deploy" / "demo" / "roster.json"


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedNatsServer(Path(scratch) / "nats")
        server.start()
        try:
            connection = await nats.connect(server.url)
            js = connection.jetstream()
            await ensure_stream(js)
            events = [factories.incident_reported() for _ in range(count)]
            started = time.perf_counter()
            for event in events:
                await publish_event(js, event)
            publish_rate = count / (time.perf_counter() - started)
            await connection.close()
        finally:
            server.stop()
        settings = DispatcherSettings(var_dir=Path(scratch), roster_seed_file=None)
        with build(settings, SystemClock()) as dispatcher:
            roster = seed_events(ROSTER, factories.T0)
            for sequence, event in enumerate(roster, start=1):
                dispatcher.handle(event, sequence)
            started = time.perf_counter()
            for sequence, event in enumerate(events, start=len(roster) + 1):
                dispatcher.handle(event, sequence)
            process_rate = count / (time.perf_counter() - started)
    print(f"events: {count}")
    print(f"JetStream publish (acked, Nats-Msg-Id): {publish_rate:8.0f} events/s")
    print(f"dispatcher processing on SQLite:       {process_rate:8.0f} events/s")
    print(f"processing / publish ratio:            {process_rate / publish_rate:8.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
