"""Restart of the projections service: from starting its process to its /readyz answering 200, by history size.

History is built by the projections process itself, from a stream of real events:

1. a template: ``TEMPLATE`` incidents through the dispatcher's own use cases, in process (bench/restart.py's
   ``Feeder``: reported, two paged, accepted by SMS, en route, on scene, done), taking the events fed in and the
   contract events its outbox makes of what it stored (about 20 per incident), then a cancellation of each incident,
   which settles its follow-up tasks (in a real history staff complete them; either way they leave the due index);
2. for each size (``--sizes``, incidents) the template is copied under new ids (incidents, pages, events, message
   SIDs; the roster is kept) and published, and ``python -m services.projections`` works it all off (its durables
   empty), then stops;
3. ``--runs`` starts of the process on those stores, each timed to its first ``/readyz`` 200.

The floor printed in the same run is the same start with no history. Stores are SQLite, without the event cipher.

Run: .venv/bin/python -m bench.restart_projections [--sizes 1000,10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid5

import httpx
import nats

from bench.restart import COPIES, HISTORY_START, Feeder, close_one, roster
from bench.restart_gateway import arguments, free_port, stop
from services.contract.events import IncidentCancelled, IncidentCancelledData, decode_event, new_event
from services.dispatcher.bootstrap import build
from services.dispatcher.settings import DispatcherSettings
from services.runtime.clock import ManualClock
from services.runtime.credentials import ensure_demo_credentials
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.stream import STREAM_NAME, ensure_stream, publish_event

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = 20
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SID_TEXT = re.compile(r"SM[0-9a-f]{32}")
DURABLES = ("projections", "followups", "referrals", "persons", "caring")


class Recorder(Feeder):
    """The feeder, keeping every event fed in and every contract event the dispatcher's outbox makes."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.events: list = []

    def feed(self, event):  # noqa: ANN001, ANN201
        stored = super().feed(event)
        self.events.append(event)
        for domain_event in stored:
            self.events.extend(self.app.outbox(domain_event))
        return stored


def template_events(scratch: Path, incidents: int) -> tuple[list, list, ManualClock]:
    """(the roster's events, ``incidents`` closed incidents' events, the template's clock after them), through the
    dispatcher's use cases in process."""
    clock = ManualClock(HISTORY_START)
    with build(DispatcherSettings(var_dir=scratch / "template", roster_seed_file=None), clock) as app:
        feeder = Recorder(app, clock)
        people = roster(feeder)
        roster_events, feeder.events = feeder.events, []
        for number in range(incidents):
            close_one(feeder, people, number)
        return roster_events, feeder.events, clock


def template(scratch: Path) -> tuple[list[str], list[str], set[str]]:
    """(the roster's events, one incident-set's events, the ids to keep) as JSON text."""
    roster_events, events, clock = template_events(scratch, TEMPLATE)
    for incident_id in {e.incident_id for e in events if e.incident_id is not None}:
        cancel = IncidentCancelledData(incident_id=incident_id, reason="closed (benchmark history)")
        events.append(
            new_event(
                IncidentCancelled,
                cancel,
                event_id=uuid5(COPIES, f"cancel/{incident_id}"),
                occurred_at=clock.now(),
                producer="bench",
                incident_id=incident_id,
            )
        )
    kept = {m for e in roster_events for m in UUID_TEXT.findall(e.model_dump_json())}
    return [e.model_dump_json() for e in roster_events], [e.model_dump_json() for e in events], kept


def copy(events: list[str], kept: set[str], number: int) -> list:
    def new_id(match: re.Match) -> str:
        text = match.group(0)
        return text if text in kept else str(uuid5(COPIES, f"{number}/{text}"))

    def new_sid(match: re.Match) -> str:
        return "SM" + uuid5(COPIES, f"{number}/{match.group(0)}").hex

    return [decode_event(SID_TEXT.sub(new_sid, UUID_TEXT.sub(new_id, text)).encode()) for text in events]


def projections_env(nats_url: str, var_dir: Path, port: int, credentials: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")} | {
        "CRISIS_NATS_URL": nats_url,
        "CRISIS_VAR_DIR": str(var_dir),
        "CRISIS_PROJECTIONS_PORT": str(port),
        "CRISIS_CREDENTIALS_FILE": str(credentials),
        "PYTHONPATH": str(REPO),
    }


async def ready_after(env: dict[str, str], port: int, log: Path) -> tuple[subprocess.Popen, float]:
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.projections"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "a"),  # noqa: SIM115 - closed with the process
    )
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"projections exited: {log.read_text()[-2000:]}")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return process, time.perf_counter() - began
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.02)


async def drained(js) -> bool:  # noqa: ANN001
    for name in DURABLES:
        try:
            info = await js.consumer_info(STREAM_NAME, name)
        except Exception:  # noqa: BLE001 - not made yet
            return False
        if info.num_pending or info.num_ack_pending:
            return False
    return True


async def main(args: argparse.Namespace) -> None:
    sizes = [0, *(int(s) for s in args.sizes.split(","))]
    results: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="restart-projections-") as scratch_dir:
        scratch = Path(scratch_dir)
        roster_events, incident_events, kept = template(scratch)
        credentials = scratch / "credentials.json"
        ensure_demo_credentials(credentials)
        server = EmbeddedNatsServer(scratch / "nats")
        server.start()
        var_dir, port = scratch / "var", free_port()
        env = projections_env(server.url, var_dir, port, credentials)
        try:
            connection = await nats.connect(server.url)
            js = connection.jetstream()
            await ensure_stream(js)
            for text in roster_events:
                await publish_event(js, decode_event(text.encode()))
            copies = 0
            for size in sizes:
                began = time.perf_counter()
                while copies * TEMPLATE < size:
                    for event in copy(incident_events, kept, copies):
                        await publish_event(js, event)
                    copies += 1
                process, _ = await ready_after(env, port, scratch / "projections.log")
                while not await drained(js):
                    await asyncio.sleep(0.5)
                stop(process)
                built = time.perf_counter() - began
                results[size] = []
                for _ in range(args.runs):
                    process, seconds = await ready_after(env, port, scratch / "projections.log")
                    stop(process)
                    results[size].append(seconds)
                sequences = (await js.stream_info(STREAM_NAME)).state.last_seq
                runs = ", ".join(f"{s:.2f}" for s in results[size])
                print(
                    f"{copies * TEMPLATE:>7,} incidents ({sequences:,} events on the stream, worked off in"
                    f" {built:.0f} s): start to /readyz 200 median {statistics.median(results[size]):.2f} s"
                    f" (runs {runs})",
                    flush=True,
                )
            await connection.close()
        finally:
            server.stop()
    floor, largest = statistics.median(results[0]), statistics.median(results[sizes[-1]])
    print(f"floor (no history, same run): {floor:.2f} s; largest history: {largest:.2f} s (x{largest / floor:.2f})")


if __name__ == "__main__":
    asyncio.run(main(arguments(__doc__, "1000,10000")))
