"""Scale-out: how fast one, then two, dispatcher processes on partitions work off a backlog, on PostgreSQL.

For each configuration (``--instances``, default ``1,2``) on a fresh nats-server and a fresh PostgreSQL database:

1. a generated city's roster (bench/city.py: ``--responders`` people on call across three zones, so that reports
   far apart page different people, as in a county; the demo roster's two front-line people would make every
   report page the same two, and two instances would spend their time on conflicting saves of those two records)
   and ``--reports`` P1 overdose reports at scenes spread over the city are published with
   ``CRISIS_PARTITIONS=--partitions`` (each report in its incident's partition), before any dispatcher runs: a backlog;
2. that many ``python -m services.dispatcher`` processes start on the one store (the event cipher on, as
   ``make run``'s stores are); every instance reads every partition's durable (services/runtime/partitions.py);
3. every 0.1 s, the reports not yet applied are counted (those above their partition durable's ack floor); the
   rate is the reports applied between 10% and 90% of the backlog, over that time (so start-up, and the roster
   the first durable applies first, are not counted);
4. ``--kill`` (with two or more instances): the last instance gets SIGKILL when 40% of the backlog is done. Then
   the longest a partition made no progress after the kill is printed against the ack wait (its message in
   flight in the dead process comes back to a live one after it), and the stream is checked: every report was
   paged (nothing lost), no page id twice and no responder offered one incident twice (nothing duplicated).

The floor printed in the same run: one instance's rate (the ratio is the scale-out), and PostgreSQL's rate of empty
commits from one connection on this machine (what bounds one instance that waits on its commits).

Run: .venv/bin/python -m bench.scaleout [--reports 800] [--partitions 4] [--instances 1,2] [--kill]
[--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import nats
import psycopg

from bench.city import scenes, write_city_roster
from services.contract.events import PARTITIONS_ENV, partition_token
from services.dispatcher.adapters.roster_seed import seed_events
from services.runtime.consumer import ACK_WAIT_SECONDS
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.stream import STREAM_NAME, ensure_stream, publish_event
from tests import factories
from tests.support.stream import stream_events

REPO = Path(__file__).resolve().parent.parent
BENCH_CIPHER_KEY = "c2NhbGVvdXQtYmVuY2gxNg=="  # a benchmark's key: no secret
POLL_SECONDS = 0.1


@dataclass
class Run:
    instances: int
    rate: float = 0.0
    seconds: float = 0.0
    killed_at: float | None = None
    longest_stall_after_kill: float | None = None
    lost: int = 0
    duplicated: int = 0
    samples: list[tuple[float, int]] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # CPU seconds of each instance (the killed one: none)


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fresh_database(base: str, commit_delay_ms: float = 0.0) -> tuple[str, str]:
    """A new database; with ``commit_delay_ms``, each of its commits waits that long before its WAL flush (PostgreSQL's
    ``commit_delay`` with ``commit_siblings`` 0): a commit as slow as one to a synchronous standby or a slower disk."""
    name = f"crisis_scaleout_{uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        if commit_delay_ms:
            admin.execute(f'ALTER DATABASE "{name}" SET commit_delay = {int(commit_delay_ms * 1000)}')
            admin.execute(f'ALTER DATABASE "{name}" SET commit_siblings = 0')
    parts = urlsplit(base)
    return name, urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def drop_database(base: str, name: str) -> None:
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def commit_floor(url: str, seconds: float = 2.0) -> float:
    """Commits per second of a one-row insert from one connection: the store's own bound for one instance."""
    with psycopg.connect(url) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS bench_commits (n bigint)")
        connection.commit()
        done, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            connection.execute("INSERT INTO bench_commits VALUES (%s)", (done,))
            connection.commit()
            done += 1
        return done / (time.perf_counter() - began)


def dispatcher_env(nats_url: str, database_url: str, var_dir: Path, partitions: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")}
    return env | {
        "CRISIS_NATS_URL": nats_url,
        "CRISIS_DATABASE_URL": database_url,
        "CRISIS_VAR_DIR": str(var_dir),
        "CRISIS_DISPATCHER_OPS_PORT": "0",
        "CRISIS_CIPHER_KEY": BENCH_CIPHER_KEY,
        "CRISIS_ACK_TIMEOUT_P1_SECONDS": "3600",  # no deadline fires during the run: the backlog is the work
        PARTITIONS_ENV: str(partitions),
        "PYTHONPATH": str(REPO),
    }


async def reports_left(js, partitions: dict[str, list[int]]) -> tuple[int, dict[str, int]] | None:  # noqa: ANN001
    """Reports not yet applied (above their partition durable's ack floor: each durable applies in stream order),
    and each durable's ack floor; None until every partition's durable exists."""
    left, floors = 0, {}
    for name, sequences in partitions.items():
        try:
            info = await js.consumer_info(STREAM_NAME, name)
        except Exception:  # noqa: BLE001 - not created yet
            return None
        floors[name] = floor = info.ack_floor.stream_seq
        left += len(sequences) - bisect.bisect_right(sequences, floor)
    return left, floors


async def one_run(args: argparse.Namespace, instances: int, *, kill: bool) -> Run:
    run = Run(instances)
    name, database_url = fresh_database(args.postgres, args.commit_delay_ms)
    with tempfile.TemporaryDirectory(prefix="scaleout-") as scratch:
        args.scratch = scratch
        server = EmbeddedNatsServer(Path(scratch) / "nats")
        server.start()
        processes: list[subprocess.Popen] = []
        connection = await nats.connect(server.url)
        try:
            js = connection.jetstream()
            await ensure_stream(js)
            os.environ[PARTITIONS_ENV] = str(args.partitions)  # the bench publishes as the gateway would
            roster = write_city_roster(Path(scratch) / "roster.json", args.responders)
            for event in seed_events(roster, factories.T0):
                await publish_event(js, event)
            reports = [
                factories.incident_reported(lat, lon, short_code=f"{1000 + i % 9000}", ems_called=True)
                for i, (lat, lon) in enumerate(scenes(args.reports))
            ]
            partitions: dict[str, list[int]] = {
                f"dispatcher-{partition_token(i, args.partitions)}": [] for i in range(args.partitions)
            }
            for event in reports:
                sequence = await publish_event(js, event)
                partitions[f"dispatcher-{event.partition()}"].append(sequence)
            for number in range(instances):
                var_dir = Path(scratch) / f"dispatcher-{number}"
                var_dir.mkdir()
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "services.dispatcher"],
                        cwd=REPO,
                        env=dispatcher_env(server.url, database_url, var_dir, args.partitions),
                        stdout=subprocess.DEVNULL,
                        stderr=open(var_dir / "dispatcher.log", "w"),  # noqa: SIM115 - closed with the process
                    )
                )
            await watch(js, args, run, partitions, processes if kill else [])
            run.cpu = [c for c in (cpu_seconds(p.pid) for p in processes if p.poll() is None) if c is not None]
            run.lost, run.duplicated = await check_stream(js, reports)
        finally:
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            await connection.close()
            server.stop()
            drop_database(args.postgres, name)
    return run


async def watch(  # noqa: ANN001
    js, args: argparse.Namespace, run: Run, partitions: dict[str, list[int]], killable: list[subprocess.Popen]
) -> None:
    began = time.perf_counter()
    total = None
    last_progress: dict[str, tuple[int, float]] = {}
    stalls: list[float] = []
    while True:
        state = await reports_left(js, partitions)
        now = time.perf_counter() - began
        if state is not None:
            left, floors = state
            total = total or left
            run.samples.append((now, left))
            for durable, floor in floors.items():
                previous = last_progress.get(durable)
                if previous is None or floor != previous[0]:
                    if run.killed_at is not None and previous is not None and left:
                        stalls.append(now - max(previous[1], run.killed_at))
                    last_progress[durable] = (floor, now)
            if killable and run.killed_at is None and left <= 0.6 * total:
                killable[-1].send_signal(signal.SIGKILL)
                run.killed_at = now
            if left == 0:
                break
        if now > args.timeout:
            logs = "".join(
                f"\n--- {log}:\n" + log.read_text()[-3000:]
                for log in sorted(Path(args.scratch).glob("*/dispatcher.log"))
            )
            raise SystemExit(f"the backlog was not worked off in {args.timeout} s: {run.samples[-5:]}{logs}")
        await asyncio.sleep(POLL_SECONDS)
    if run.killed_at is not None:
        run.longest_stall_after_kill = max(stalls, default=0.0)
    at_90 = next(t for t, left in run.samples if left <= 0.9 * total)
    at_10 = next(t for t, left in run.samples if left <= 0.1 * total)
    run.rate = 0.8 * total / max(at_10 - at_90, 1e-9)
    run.seconds = run.samples[-1][0]


async def check_stream(js, reports: list) -> tuple[int, int]:  # noqa: ANN001
    """Reports never paged (after the outbox relays caught up), and pages offered twice."""
    wanted = {r.data.incident_id for r in reports}
    deadline = time.monotonic() + 60
    while True:
        pages = [e.data for e in await stream_events(js) if e.type == "dispatch.offered"]
        lost = len(wanted - {p.incident_id for p in pages})
        if not lost or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    by_page = Counter(p.page_id for p in pages)
    by_person = Counter((p.incident_id, p.responder_id) for p in pages)
    duplicated = sum(n - 1 for n in by_page.values() if n > 1) + sum(n - 1 for n in by_person.values() if n > 1)
    return lost, duplicated


async def main(args: argparse.Namespace) -> None:
    counts = [int(n) for n in args.instances.split(",")]
    name, url = fresh_database(args.postgres, args.commit_delay_ms)
    try:
        commits = commit_floor(url)
    finally:
        drop_database(args.postgres, name)
    runs = [await one_run(args, n, kill=False) for n in counts]
    killed = await one_run(args, max(counts), kill=True) if args.kill and max(counts) > 1 else None
    print(
        f"backlog: {args.reports} P1 reports on {args.partitions} partitions; PostgreSQL (commit delay"
        f" {args.commit_delay_ms:g} ms); event cipher on;"
        f" {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
    )
    print(f"floor: PostgreSQL one-connection commits {commits:8.0f}/s on this machine")
    base = runs[0].rate
    for run in runs:
        print(
            f"{run.instances} instance(s): {run.rate:7.1f} reports/s (10%-90% of the backlog), all done in"
            f" {run.seconds:5.1f} s; x{run.rate / base:.2f} of {runs[0].instances}; lost {run.lost}, duplicated"
            f" {run.duplicated}; CPU {', '.join(f'{c:.1f}' for c in run.cpu)} s"
            f" ({1000 * sum(run.cpu) / args.reports:.0f} ms per report)"
        )
    if killed is not None:
        print(
            f"{killed.instances} instances, the last SIGKILLed at {killed.killed_at:.1f} s (40% done): longest a"
            f" partition waited after the kill {killed.longest_stall_after_kill:.1f} s (ack wait {ACK_WAIT_SECONDS:g}"
            f" s); all done in {killed.seconds:.1f} s; lost {killed.lost}, duplicated {killed.duplicated}"
        )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=800)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--responders", type=int, default=150, help="front-line people in the generated city")
    parser.add_argument("--instances", default="1,2")
    parser.add_argument("--kill", action="store_true")
    parser.add_argument(
        "--commit-delay-ms",
        type=float,
        default=0.0,
        help="each commit waits this long (a synchronous standby's latency)",
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--postgres", default=os.environ.get("CRISIS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(arguments()))
