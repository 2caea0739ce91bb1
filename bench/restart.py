"""Restart: how long a dispatcher process takes from start to firing its first due deadline, by history size.

While a dispatcher starts, no deadline fires (no reminder, no voice call, no escalation), so this is the blind
window after a restart. For each history size (``--sizes``, closed incidents) it:

1. builds (once, cached under ``bench/.cache``, which git ignores) a dispatcher store with that many closed
   incidents and one open P1 incident whose deadlines passed long ago. The first ``TEMPLATE`` incidents go
   through the dispatcher's own use cases (reported, paged, accepted by SMS, en route, on scene, done); the rest
   are copies of their stored events under new incident ids (the responders' records continue their versions,
   and are snapshotted as the dispatcher would), written straight through the recorder in big transactions,
   because 100,000 incidents through the use cases would take hours. The store is then opened once with this
   code, which folds the whole log and saves the roster snapshot (that time is printed as "first start without a
   snapshot"); then ``TAIL`` more incidents go through the use cases after the snapshot, as if the dispatcher had
   crashed just before saving its next one (the worst a restart sees), and the open incident last. The outbox's
   position is put at the end, so a start publishes nothing old;
2. for each of ``--runs`` runs: copies the store to a scratch directory, starts a real nats-server
   (services/runtime/nats_server.py) once, subscribes to ``crisis.>``, starts ``python -m services.dispatcher``
   on the copy and times from just before the process starts to the first event it publishes (the overdue
   deadline firing), then stops it;
3. prints, per size: stored events, store size, the median and each run, and the floor measured in the same run
   (the same process on a store with the same roster and the one open incident and no history).

Stores are SQLite, without the event cipher unless ``--cipher`` (then encrypted and compressed as ``make run``
stores are, with a fixed key that is no secret). ``--cold`` also times a start whose snapshot was deleted (the
first start after an upgrade, or after an unreadable snapshot).

``--code DIR`` runs the dispatcher from another checkout, on stores built by the code this file imports. For a
before/after against an older version, whose code may not read the events a newer one stores, build its stores
with its own code too (``git worktree add /tmp/base HEAD``; then, in /tmp/base, run this file with
``PYTHONPATH=/tmp/base`` and ``--code /tmp/base --cache /tmp/base-cache``).

Run: .venv/bin/python -m bench.restart [--sizes 1000,10000,100000] [--runs 3] [--cipher] [--code DIR] [--cold]
[--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

import nats
from eventsourcing.persistence import StoredEvent, Tracking

from services.contract.events import (
    Envelope,
    IncidentReported,
    IncidentReportedData,
    ProgressReported,
    ProgressReportedData,
    ResponderProfile,
    ResponderRegistered,
    RotationDefined,
    RotationDefinedData,
    SmsReceived,
    SmsReceivedData,
    new_event,
)
from services.dispatcher.application import Dispatcher
from services.dispatcher.bootstrap import build
from services.dispatcher.domain.incident import IncidentDispatch
from services.dispatcher.domain.roster import ResponderRecord

try:
    from services.dispatcher.roster_cache import snapshot_version
except ImportError:  # a checkout from before the roster snapshot (building a store for a "before" run)
    snapshot_version = None
from services.dispatcher.settings import DispatcherSettings
from services.runtime.clock import ManualClock
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.processor import OUTBOX_TRACKING_NAME

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / ".cache"
BUILD_FORMAT = 1  # bump when the built store changes shape: older cached stores are rebuilt
TEMPLATE = 100  # incidents through the use cases, copied to make the rest (sizes are multiples of this)
TAIL = 50  # incidents after the snapshot (about 15 stored events each: under the snapshot interval)
RESPONDERS = 12
SCENE = (39.7431, -104.9876)
HISTORY_START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=60)
COPIES = UUID("3f7d1c52-0b7e-4a61-9f0e-5e1a2b9c8d40")
BENCH_CIPHER_KEY = base64.b64encode(b"restart-bench-16").decode()  # a benchmark's key: no secret


# ---- building a store -------------------------------------------------------------------------------------


class Feeder:
    """The dispatcher fed by hand, each event the next stream sequence, as its consumer would."""

    def __init__(self, app: Dispatcher, clock: ManualClock) -> None:
        self.app, self.clock = app, clock
        self.sequence = app.processed_position()

    def feed(self, event: Envelope) -> list[Any]:
        """The domain events stored for ``event``."""
        before = self.app.recorder.max_notification_id() or 0
        self.sequence += 1
        self.app.handle(event, self.sequence)
        stored = self.app.recorder.select_notifications(start=before + 1, limit=1000)
        return [self.app.mapper.to_domain_event(n) for n in stored]

    def event(self, cls: type[Envelope], data: Any, incident_id: UUID | None = None) -> Envelope:
        now = self.clock.now()
        return new_event(cls, data, event_id=uuid4(), occurred_at=now, producer="bench", incident_id=incident_id)


def roster(feeder: Feeder) -> dict[UUID, ResponderProfile]:
    people = {}
    for n in range(RESPONDERS):
        profile = ResponderProfile(
            responder_id=uuid4(),
            name=f"Generated responder {n}",
            role="clinician",
            skills=["naloxone_carrier", "licensed_clinician"],
            languages=["en"],
            phone=f"+1555010{n:04d}",
            home_base={"lat": SCENE[0] + (n % 4) / 100, "lon": SCENE[1] + (n // 4) / 100},
            zones=["central"],
        )
        people[profile.responder_id] = profile
        feeder.feed(feeder.event(ResponderRegistered, profile))
    rotation = RotationDefinedData(
        rotation_id=uuid4(),
        name="everyone, always",
        zones=["central"],
        time_zone="America/Denver",
        handoff_time="08:00",
        shift="daily",
        handoff_weekday="monday",
        start_date=(HISTORY_START - timedelta(days=7)).date().isoformat(),
        participants=list(people),
    )
    for person in people:  # one rotation each: everyone is on call all the time
        feeder.feed(
            feeder.event(
                RotationDefined, rotation.model_copy(update={"rotation_id": uuid4(), "participants": [person]})
            )
        )
    return people


def report(feeder: Feeder, code: str) -> tuple[UUID, list[Any]]:
    incident_id = uuid4()
    data = report_data(incident_id, code)
    return incident_id, feeder.feed(feeder.event(IncidentReported, data, incident_id))


def report_data(incident_id: UUID, code: str) -> IncidentReportedData:
    """A generated P1 overdose at the scene (no PHI)."""
    return IncidentReportedData.model_validate(
        {
            "incident_id": incident_id,
            "short_code": code,
            "kind": "overdose",
            "priority": "P1",
            "needs": ["naloxone_carrier", "ems_now"],
            "guidance": [],
            "location": {"lat": SCENE[0], "lon": SCENE[1], "address": "generated"},
            "reporter": {"channel": "hotline"},
        }
        | ({"zone": "central"} if "zone" in IncidentReportedData.model_fields else {})
    )


def close_one(feeder: Feeder, people: dict[UUID, ResponderProfile], number: int) -> None:
    """One incident the whole way: reported, two paged, the first accepts by SMS, en route, on scene, done."""
    code = str(1000 + number % 9000)
    incident_id, stored = report(feeder, code)
    offered = [e for e in stored if type(e).__name__ == "PageOffered"]
    first = people[UUID(str(offered[0].responder_id))]
    feeder.clock.advance(timedelta(seconds=20))
    for body in (f"Y {code}", "OTW", "on scene"):
        sms = SmsReceivedData(
            message_sid="SM" + uuid4().hex, from_number=first.phone, to_number="+15005550006", body=body
        )
        feeder.feed(feeder.event(SmsReceived, sms))
        feeder.clock.advance(timedelta(minutes=3))
    done = ProgressReportedData.model_validate(
        {"incident_id": incident_id, "responder_id": first.responder_id, "stage": "done", "reported_by": "responder"}
    )
    feeder.feed(feeder.event(ProgressReported, done, incident_id))
    feeder.clock.advance(timedelta(minutes=10))


def copy_template(app: Dispatcher, start: int, end: int, copies: int) -> None:
    """Append ``copies`` copies of the stored events ``start``..``end``: incidents under new ids, responders'
    records continuing their versions (and snapshotted after each copy, as the dispatcher does every 50)."""
    template = app.recorder.select_notifications(start=start, limit=end - start + 1)
    incident_topic = f"{IncidentDispatch.__module__}:{IncidentDispatch.__qualname__}"
    per_record = Counter(n.originator_id for n in template if not n.topic.startswith(incident_topic))
    kinds = Counter(
        "incident" if n.topic.startswith(incident_topic) else n.topic.split(":")[1].split(".")[0] for n in template
    )
    assert set(kinds) <= {"incident", ResponderRecord.__qualname__}, f"unexpected aggregates in the template: {kinds}"
    for copy in range(1, copies + 1):
        events = [
            StoredEvent(
                originator_id=uuid5(COPIES, f"{copy}/{n.originator_id}"),
                originator_version=n.originator_version,
                topic=n.topic,
                state=n.state,
            )
            if n.topic.startswith(incident_topic)
            else StoredEvent(
                originator_id=n.originator_id,
                originator_version=n.originator_version + copy * per_record[n.originator_id],
                topic=n.topic,
                state=n.state,
            )
            for n in template
        ]
        app.recorder.insert_events(events)
        for record_id in per_record:
            app.take_snapshot(record_id)


def build_store(directory: Path, closed: int, cipher_key: str) -> dict[str, Any]:
    """A dispatcher store with ``closed`` closed incidents, a roster snapshot ``TAIL`` incidents back, and one open
    P1 incident whose deadlines passed long ago. Returns what was measured while building."""
    settings = DispatcherSettings(var_dir=directory, roster_seed_file=None, cipher_key=cipher_key)
    clock = ManualClock(HISTORY_START)
    built: dict[str, Any] = {"closed": closed}
    with build(settings, clock) as app:
        feeder = Feeder(app, clock)
        people = roster(feeder)
        if closed:
            start = (app.recorder.max_notification_id() or 0) + 1
            began = time.perf_counter()
            for number in range(TEMPLATE):
                close_one(feeder, people, number)
            built["use_case_seconds_per_incident"] = (time.perf_counter() - began) / TEMPLATE
            end = app.recorder.max_notification_id()
            began = time.perf_counter()
            copy_template(app, start, end, closed // TEMPLATE - 1)
            built["copy_seconds"] = time.perf_counter() - began
        sequence = feeder.sequence
    if closed:
        with contextlib.closing(sqlite3.connect(directory / "dispatcher.sqlite")) as store, store:
            forget_snapshot(store)  # one was saved while the template was fed
        began = time.perf_counter()
        with build(settings, clock) as app:  # folds the whole log (no snapshot yet) and saves the snapshot
            built["first_start_without_snapshot_seconds"] = time.perf_counter() - began
            if hasattr(app.known, "save_snapshot"):
                app.known.save_snapshot()
            feeder = Feeder(app, clock)
            feeder.sequence = sequence
            for number in range(TAIL):
                close_one(feeder, people, closed + number)
            sequence = feeder.sequence
    with build(settings, clock) as app:
        feeder = Feeder(app, clock)
        feeder.sequence = sequence
        report(feeder, "4821")  # the open incident: its reminder, voice call and timeout are long overdue by now
        app.recorder.insert_tracking(Tracking(OUTBOX_TRACKING_NAME, app.recorder.max_notification_id()))
        built["stored_events"] = app.recorder.max_notification_id()
        built["snapshot_position"] = getattr(app.known, "saved_position", None)
    return built


def cached_store(
    cache: Path, closed: int, rebuild: bool, cipher_key: str, *, same_code: bool
) -> tuple[Path, dict[str, Any]]:
    """The store built for ``closed``, built now if it is not cached, or if its roster snapshot is of another
    version than this checkout's (the cache's shape changed since: this code would fold the whole log)."""
    directory = cache / f"restart-v{BUILD_FORMAT}-{closed}{'-cipher' if cipher_key else ''}"
    manifest = directory / "built.json"
    current = snapshot_version() if snapshot_version else None
    if same_code and closed and manifest.exists() and snapshot_version_in(directory) != current:
        print(f"the cached store for {closed:,} has a snapshot of another version of the cache: rebuilding it")
        rebuild = True
    if rebuild and directory.exists():
        shutil.rmtree(directory)
    if not manifest.exists():
        if directory.exists():
            shutil.rmtree(directory)
        cache.mkdir(parents=True, exist_ok=True)
        (cache / ".gitignore").write_text("*\n")
        print(f"building a store with {closed:,} closed incidents in {directory} ...", flush=True)
        began = time.perf_counter()
        built = build_store(directory, closed, cipher_key)
        built["build_seconds"] = time.perf_counter() - began
        manifest.write_text(json.dumps(built, indent=2))
    return directory / "dispatcher.sqlite", json.loads(manifest.read_text())


SNAPSHOT_TABLE = "stored_roster_snapshot"


def has_snapshot_table(store: sqlite3.Connection) -> bool:
    found = store.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SNAPSHOT_TABLE,))
    return found.fetchone() is not None


def forget_snapshot(store: sqlite3.Connection) -> None:
    if has_snapshot_table(store):
        store.execute(f"DELETE FROM {SNAPSHOT_TABLE}")


def snapshot_version_in(directory: Path) -> str | None:
    with contextlib.closing(sqlite3.connect(directory / "dispatcher.sqlite")) as store:
        row = store.execute(f"SELECT version FROM {SNAPSHOT_TABLE}").fetchone() if has_snapshot_table(store) else None
    return row[0] if row else None


# ---- measuring a start ------------------------------------------------------------------------------------


@dataclass
class Start:
    seconds: float
    first_event: str


def copy_store(store: Path, into: Path, *, cold: bool = False) -> None:
    into.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(store) as source, sqlite3.connect(into / "dispatcher.sqlite") as target:
        source.backup(target)
        if cold:
            forget_snapshot(target)


def dispatcher_env(nats_url: str, var_dir: Path, code: Path, cipher_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")}
    env |= {
        "CRISIS_NATS_URL": nats_url,
        "CRISIS_VAR_DIR": str(var_dir),
        "CRISIS_DISPATCHER_OPS_PORT": "0",
        "PYTHONPATH": str(code),
        "CRISIS_CIPHER_KEY": cipher_key,
    }
    return env


@dataclass
class Bench:
    server: EmbeddedNatsServer
    code: Path
    scratch: Path
    cipher_key: str

    async def time_start(self, store: Path, *, cold: bool = False) -> Start:
        """Start a dispatcher process on a copy of ``store``; seconds until it publishes its first event."""
        var_dir = self.scratch / f"run-{uuid4().hex[:8]}"
        copy_store(store, var_dir, cold=cold)
        connection = await nats.connect(self.server.url)
        with contextlib.suppress(Exception):
            await connection.jetstream().delete_stream("CRISIS")  # each run on a fresh stream
        first: asyncio.Future[tuple[float, str]] = asyncio.get_running_loop().create_future()

        async def seen(message: Any) -> None:
            if not first.done():
                first.set_result((time.perf_counter(), json.loads(message.data).get("type", message.subject)))

        await connection.subscribe("crisis.>", cb=seen)
        await connection.flush()
        began = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "services.dispatcher"],
            cwd=self.code,
            env=dispatcher_env(self.server.url, var_dir, self.code, self.cipher_key),
            stdout=subprocess.DEVNULL,
            stderr=open(var_dir / "dispatcher.log", "w"),  # noqa: SIM115 - closed with the process
        )
        try:
            at, event_type = await asyncio.wait_for(first, timeout=3600)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
            await connection.close()
        shutil.rmtree(var_dir, ignore_errors=True)
        return Start(at - began, event_type)


# ---- the run ----------------------------------------------------------------------------------------------


def megabytes(path: Path) -> float:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6


def median(starts: list[Start]) -> float:
    return statistics.median(s.seconds for s in starts)


def summary(starts: list[Start]) -> str:
    runs = ", ".join(f"{s.seconds:.2f}" for s in starts)
    return f"{median(starts):.2f} s (min {min(s.seconds for s in starts):.2f}; runs {runs})"


async def main(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(size % TEMPLATE for size in sizes):
        raise SystemExit(f"sizes must be multiples of {TEMPLATE}")
    cipher_key = BENCH_CIPHER_KEY if args.cipher else ""
    code = Path(args.code).resolve()
    cache, same_code = Path(args.cache).resolve(), code == REPO
    stores = {size: cached_store(cache, size, args.rebuild, cipher_key, same_code=same_code) for size in [0, *sizes]}
    results: dict[int, list[Start]] = {size: [] for size in [0, *sizes]}
    cold: dict[int, Start] = {}
    with tempfile.TemporaryDirectory(prefix="restart-bench-") as scratch_dir:
        server = EmbeddedNatsServer(Path(scratch_dir) / "nats")
        server.start()
        bench = Bench(server, code, Path(scratch_dir), cipher_key)
        try:
            # round robin, the floor included, so that a busy moment on the machine hits every size alike
            for run in range(1, args.runs + 1):
                for size in [0, *sizes]:
                    results[size].append(await bench.time_start(stores[size][0]))
                print(f"  run {run}: " + ", ".join(f"{size:,}: {results[size][-1].seconds:.2f} s" for size in results))
            if args.cold:
                for size in sizes:
                    cold[size] = await bench.time_start(stores[size][0], cold=True)
        finally:
            server.stop()
    floor = results[0]
    store_kind = "SQLite, encrypted" if cipher_key else "SQLite"
    print()
    print(f"Dispatcher start to its first due deadline firing (code: {code}; {os.cpu_count()} CPUs; {store_kind})")
    print(f"floor measured in the same run (the roster and the open incident, no history): {summary(floor)}")
    print(f"first event published: {floor[0].first_event}")
    print()
    print(
        "| closed incidents | stored events | store MB | start to first deadline fired: median | x floor | "
        "first start without a snapshot |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        store, built = stores[size]
        unsnapshotted = built.get("first_start_without_snapshot_seconds")
        cold_text = f"fold in-process {unsnapshotted:.1f} s" if unsnapshotted is not None else "-"
        if size in cold:
            cold_text += f"; as a process {cold[size].seconds:.1f} s"
        print(
            f"| {size:,} | {built['stored_events']:,} | {megabytes(store):.0f} | {summary(results[size])} | "
            f"{median(results[size]) / median(floor):.2f} | {cold_text} |"
        )
    medians = [median(results[size]) for size in sizes]
    print()
    print(
        f"largest / smallest history: {max(medians) / min(medians):.2f}x (target: within 2x); "
        f"at {sizes[-1]:,}: {medians[-1]:.2f} s (target: under 2 s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="closed incidents of history, comma separated")
    parser.add_argument("--runs", type=int, default=3, help="starts timed per size")
    parser.add_argument("--code", default=str(REPO), help="the checkout whose dispatcher is started")
    parser.add_argument("--cipher", action="store_true", help="stores encrypted as make run's are")
    parser.add_argument("--cold", action="store_true", help="also time one start with the snapshot deleted")
    parser.add_argument("--cache", default=str(CACHE), help="where built stores are kept")
    parser.add_argument("--rebuild", action="store_true", help="build the stores again instead of the cached ones")
    asyncio.run(main(parser.parse_args()))
