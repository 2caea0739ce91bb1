"""End-to-end load: overdose reports in at the gateway, the first page SMS out at the sandbox.

Against the whole stack (every service a separate process, as ``make run`` starts them), with a seeded city
(``bench/city.py``: a few hundred responders, everyone on call) and open-loop load (sends go at their scheduled
times whatever the stack answers, so a slow stack cannot slow the load down):

1. the floor: on the SAME nats-server, on a scratch stream (never CRISIS), the raw JetStream publish-to-consume
   latency of one hop (acked publish with Nats-Msg-Id, a durable pull consumer shaped like the services': one
   message in flight, ack confirmed), that consumer's throughput, and its throughput when it also commits one
   SQLite transaction per message in the stack's filesystem (the least a service does per message);
2. a ladder of rates (``--rates``, ``--step`` seconds each): for each, p50/p95/p99 latency from just before the
   ``POST /v1/incidents`` to the first SMS of that incident arriving at the sandbox (the sandbox's own receive
   stamp), the completion rate, and whether the backlog stayed flat: the end-to-end backlog (reports posted
   and not yet paged, rebuilt afterwards from the send and arrival times) and the services' durable JetStream
   consumers' pending counts (sampled each second) must not grow over the step's second half. The ladder stops
   at the first rate whose backlog grows; the highest flat rate is the answer;
3. a sustained run for ``--duration`` seconds at that rate (or ``--rate``): reports/s paged, p50/p95/p99,
   per-process CPU, events per report by type, each consumer's pace while it had a backlog, and the p50 of
   each leg (POST -> report stored -> first page offered -> its SMS request -> SMS at the sandbox, by the
   stream's own stamps);

and prints them beside the floor, as ratios, in a Markdown table ready to paste into bench/RESULTS.md.

An SMS is matched to its report through the stream, never by its text: the sandbox message's SID is the
``message_sid`` of an ``sms.sent``, which names its notification; that notification's ``notification.requested``
names the incident, and the 201 for the report named the same incident id. The benchmark reads the two subjects
with ordered consumers of its own (ephemeral, so left out of the pending counts). The text cannot be the key:
pages carry nothing the reporter typed (only a gazetteer place or a service zone), and the 4-digit short code
repeats across incidents (9,000 values) and a responder's page code moves off it when that responder already
has an open page with that code.

By default it starts its own stack through the launcher in a temporary directory on free ports (SQLite stores,
encrypted JetStream, as ``make run``) and stops it at the end, on Ctrl-C or on an error. The stack gets settings
that keep the measurement about the software: ``CRISIS_SMS_RATE_PER_SECOND`` raised (``--sms-rate``; the
default 1 SMS/s of a long code would cap everything at 0.5 P1 reports/s) with ``CRISIS_SMS_IN_FLIGHT`` 1
(``--sms-in-flight``: calls to the SMS sandbox under way at once; more did not help against the local sandbox,
whose calls take milliseconds, see bench/RESULTS.md), and the P1
reminder, voice call and acknowledgement timeout pushed beyond the run (nobody answers the pages here, so they
would otherwise add reminders, calls and escalations on top of the load; ``--keep-timers`` leaves them as configured).
``--url`` targets an already running stack instead (its settings as they are; a fresh roster is not seeded).

Run: .venv/bin/python -m bench.e2e [--quick] [--duration 90] [--rates 2,4,6,8,10,12,14,16] [--step 20]
     [--responders 300] [--rate R] [--scratch /dev/shm] [--no-status-callbacks] [--keep-timers]
     .venv/bin/python -m bench.e2e --url http://127.0.0.1:8080 --token $CRISIS_TOKEN
     [--sandbox-url http://127.0.0.1:8025] [--nats-url nats://crisis:$(cat var/nats.password)@127.0.0.1:14222]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from bench.city import overdose_report, scenes, write_city_roster
from services.contract.envelope import SUBJECT_PREFIX
from services.dispatcher.adapters.roster_seed import seed_events
from services.runtime.clock import SystemClock
from services.runtime.nats_server import nats_server_binary
from services.runtime.stream import STREAM_NAME

FOUR_SERVICES = ("projections", "notifier", "dispatcher", "intake_gateway")
CPU_CEILING_MS = 100  # issue 16: CPU per report of the four services together

ROOT = Path(__file__).resolve().parents[1]
SERVICE_DURABLES = ("dispatcher", "notifier", "projections")
HTTP_CONCURRENCY = 64
TIMERS_OFF_SECONDS = "86400"  # a day: beyond any run


# --- the stack -------------------------------------------------------------------------------------------------


@dataclass
class Target:
    gateway: str
    sandbox: str
    nats_url: str
    token: str
    stores: str
    var_dir: Path = Path(tempfile.gettempdir())  # where the stack keeps its stores, as far as we know
    launcher_pid: int | None = None
    roster_events: int = 0
    settings: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_settings(args: argparse.Namespace) -> dict[str, str]:
    """The settings the benchmark gives its own stack (see the module docstring for why)."""
    settings = {
        "CRISIS_SMS_RATE_PER_SECOND": str(args.sms_rate),
        "CRISIS_SMS_RATE_BURST": str(max(1, int(args.sms_rate))),
        "CRISIS_SMS_IN_FLIGHT": str(args.sms_in_flight),
    }
    if args.no_status_callbacks:
        settings["CRISIS_TWILIO_STATUS_CALLBACK_URL"] = ""  # the launcher's default points them at the gateway
    if not args.keep_timers:
        settings |= {
            "CRISIS_P1_REMINDER_SECONDS": TIMERS_OFF_SECONDS,
            "CRISIS_P1_VOICE_SECONDS": TIMERS_OFF_SECONDS,
            "CRISIS_ACK_TIMEOUT_P1_SECONDS": TIMERS_OFF_SECONDS,
        }
    return settings


@contextlib.contextmanager
def own_stack(args: argparse.Namespace) -> Iterator[Target]:
    """The launcher in a temporary var dir on free ports, with a city roster; stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="bench-e2e-", dir=args.scratch) as scratch:
        var_dir = Path(scratch) / "var"
        roster = write_city_roster(Path(scratch) / "city-roster.json", args.responders)
        ports = {name: free_port() for name in ("nats", "gateway", "projections", "sandbox")}
        settings = stack_settings(args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")} | settings
        env |= {
            "CRISIS_VAR_DIR": str(var_dir),
            "CRISIS_NATS_PORT": str(ports["nats"]),
            "CRISIS_GATEWAY_PORT": str(ports["gateway"]),
            "CRISIS_PROJECTIONS_PORT": str(ports["projections"]),
            "CRISIS_SANDBOX_PORT": str(ports["sandbox"]),
            "CRISIS_ROSTER_SEED_FILE": str(roster),
        }
        launcher = subprocess.Popen(
            [sys.executable, "-m", "services.runtime.launcher"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the benchmark, which stops the launcher in order
        )
        try:
            banner = read_banner(launcher)
            tokens = dict(re.findall(r"^  (intake|responder|director|admin) +(\S+)$", banner, re.M))
            if "intake" not in tokens:
                raise RuntimeError("no intake token in the launcher's banner:\n" + banner)
            yield Target(
                gateway=f"http://127.0.0.1:{ports['gateway']}",
                sandbox=f"http://127.0.0.1:{ports['sandbox']}",
                # the launcher's nats-server requires its user and password (kept in var/, never printed)
                nats_url=f"nats://crisis:{(var_dir / 'nats.password').read_text().strip()}@127.0.0.1:{ports['nats']}",
                token=tokens["intake"],
                stores=f"SQLite (WAL), one file per service, and JetStream file storage (encrypted, aes), in "
                f"{var_dir} on {filesystem(var_dir)} (the launcher's defaults)",
                var_dir=var_dir,
                launcher_pid=launcher.pid,
                roster_events=len(seed_events(roster, SystemClock().now())),
                settings=settings,
            )
        finally:
            stop_launcher(launcher)


def filesystem(path: Path) -> str:
    """The type and device of the filesystem holding ``path`` (SQLite commits wait for its syncs)."""
    best = ("", "?", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, kind = line.split()[:3]
        if str(path.resolve()).startswith(mount.rstrip("/") + "/") and len(mount) > len(best[0]):
            best = (mount, kind, device)
    return f"{best[1]} ({best[2]})"


def read_banner(launcher: subprocess.Popen, timeout: float = 120.0) -> str:
    """The launcher's banner, printed once every service is healthy; its output is drained until it exits."""
    lines: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert launcher.stdout is not None
        for line in launcher.stdout:
            lines.append(line)
            if line.startswith("Try it:"):
                ready.set()
        ready.set()

    threading.Thread(target=drain, name="launcher-output", daemon=True).start()
    if not ready.wait(timeout) or not any(line.startswith("Try it:") for line in lines):
        raise RuntimeError("the launcher did not become ready:\n" + "".join(lines[-40:]))
    return "".join(lines)


def stop_launcher(launcher: subprocess.Popen) -> None:
    if launcher.poll() is None:
        launcher.send_signal(signal.SIGINT)  # the launcher stops its children in order, then nats-server
        try:
            launcher.wait(60)
        except subprocess.TimeoutExpired:
            launcher.kill()  # its children die with it (PR_SET_PDEATHSIG)
            launcher.wait()


# --- per-process CPU (own stack only) --------------------------------------------------------------------------


def process_tree(root: int) -> dict[int, str]:
    """The launcher's descendants, named by the module they run (or nats-server)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        words = [a.decode(errors="replace") for a in argv if a]
        if "-m" in words and words.index("-m") + 1 < len(words):
            names[int(entry.name)] = words[words.index("-m") + 1].removeprefix("services.")
        elif words and words[0].endswith("nats-server"):
            names[int(entry.name)] = "nats-server"
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found[child] = names.get(child, "?")
                frontier.append(child)
    return found


def cpu_seconds(pids: dict[int, str]) -> dict[str, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for pid, name in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    own = os.times()
    used["bench (this client)"] = own.user + own.system
    return used


# --- arrivals at the sandbox -----------------------------------------------------------------------------------


class SmsIndex:
    """Which incident each SMS the notifier sent belongs to, from the stream: ``sms.sent`` names the provider's
    message SID and the notification, ``notification.requested`` the notification and its incident.

    Pages carry no text the reporter typed (only a gazetteer place or a zone), and the 4-digit code repeats, so
    the stream, not the wording, ties an SMS to its report. Two ordered (ephemeral) consumers read the two
    subjects from the moment ``start`` returns (every report is posted after it); they read independently, so
    an ``sms.sent`` may be read before its ``notification.requested`` and waits for it.
    """

    def __init__(self, js) -> None:
        self.js = js
        self.incident_of_notification: dict[str, str] = {}
        self.incident_of_sid: dict[str, str] = {}
        self.waiting: dict[str, list[str]] = {}  # notification -> message SIDs read before its request
        self._subscriptions: list = []

    async def start(self) -> None:
        for event_type, handle in (("notification.requested", self._requested), ("sms.sent", self._sent)):
            subscription = await self.js.subscribe(
                f"{SUBJECT_PREFIX}.{event_type}",
                stream=STREAM_NAME,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,  # not the stream's history (a --url stack may hold a lot)
                cb=handle,
            )
            self._subscriptions.append(subscription)

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions.clear()

    async def _requested(self, message) -> None:
        data = json.loads(message.data)["data"]
        if not data.get("incident_id"):
            return  # not about an incident, so about no report of ours
        notification, incident = data["notification_id"], data["incident_id"]
        self.incident_of_notification[notification] = incident
        for sid in self.waiting.pop(notification, []):
            self.incident_of_sid[sid] = incident

    async def _sent(self, message) -> None:
        data = json.loads(message.data)["data"]
        notification, sid = data["notification_id"], data["message_sid"]
        incident = self.incident_of_notification.get(notification)
        if incident is None:
            self.waiting.setdefault(notification, []).append(sid)
        else:
            self.incident_of_sid[sid] = incident


class SandboxInbox:
    """When the first SMS of each report's incident arrived, by the sandbox's own receive stamp.

    Reads ``/sandbox/api/phones`` and the conversations whose message count changed since the last look; an SMS
    is tied to its report through ``SmsIndex`` (message SID -> incident -> report number).
    """

    def __init__(self, client: httpx.AsyncClient, base: str, since: float, index: SmsIndex, load: Load) -> None:
        self.client = client
        self.base = base
        self.since = since
        self.index = index
        self.load = load
        self.counts: dict[str, int] = {}
        self.first: dict[int, float] = {}
        self.messages = 0
        self.unmatched: dict[str, float] = {}  # SMS seen at the sandbox whose sms.sent was not read yet

    async def refresh(self) -> None:
        phones = (await self.client.get(f"{self.base}/sandbox/api/phones")).json()["phones"]
        changed = [
            p["phone"]
            for p in phones
            if self.counts.get(p["phone"]) != p["message_count"]
            and datetime.fromisoformat(p["last_message_at"]).timestamp() >= self.since
        ]
        limit = asyncio.Semaphore(8)

        async def read(phone: str) -> None:
            async with limit:
                response = await self.client.get(
                    f"{self.base}/sandbox/api/messages", params={"phone": phone, "kind": "sms"}
                )
            for message in response.json()["messages"]:
                arrived = datetime.fromisoformat(message["created_at"]).timestamp()
                if message["direction"] != "outbound" or arrived < self.since:
                    continue
                self.unmatched[message["sid"]] = arrived

        await asyncio.gather(*(read(phone) for phone in changed))
        for p in phones:
            if p["phone"] in changed:
                self.counts[p["phone"]] = p["message_count"]
        self.messages = sum(self.counts.values())
        self._match()

    def _match(self) -> None:
        number_of = self.load.number_of_incident()
        for sid, arrived in list(self.unmatched.items()):
            incident = self.index.incident_of_sid.get(sid)
            if incident is None:
                continue
            del self.unmatched[sid]
            n = number_of.get(incident)
            if n is not None:
                self.first[n] = min(arrived, self.first.get(n, math.inf))

    async def wait_for(self, numbers: set[int], timeout: float, every: float = 1.0) -> set[int]:
        """Look every ``every`` seconds until each report in ``numbers`` has an SMS; returns those still missing."""
        deadline = time.monotonic() + timeout
        while True:
            await self.refresh()
            missing = numbers - self.first.keys()
            if not missing or time.monotonic() > deadline:
                return missing
            await asyncio.sleep(every)  # the stack is another set of processes: look now and then, not in a loop


# --- JetStream: pending counts and the floor ------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # wall clock
    pending: dict[str, int]  # per durable: not yet delivered + delivered and not yet acked
    acked: dict[str, int]  # per durable: messages it has acked so far (its ack floor)
    last_seq: int
    subjects: dict[str, int]


class StreamWatch:
    """Samples every durable CRISIS consumer's pending count and the stream's subjects once a second."""

    def __init__(self, js) -> None:
        self.js = js
        self.samples: list[Sample] = []

    async def sample(self) -> Sample:
        # the services' durable consumers only, not this benchmark's own ordered readers (``SmsIndex``)
        consumers = [c for c in await self.js.consumers_info(STREAM_NAME) if c.config.durable_name]
        info = await self.js.stream_info(STREAM_NAME, subjects_filter="crisis.>")
        sample = Sample(
            time.time(),
            {c.name: (c.num_pending or 0) + (c.num_ack_pending or 0) for c in consumers},
            {c.name: c.ack_floor.consumer_seq if c.ack_floor else 0 for c in consumers},
            info.state.last_seq,
            dict(info.state.subjects or {}),
        )
        self.samples.append(sample)
        return sample

    async def run(self, every: float = 1.0) -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed sample is a gap, not a failure
                await self.sample()
            await asyncio.sleep(every)

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end]


async def wait_until_settled(watch: StreamWatch, roster_events: int, timeout: float = 120.0) -> None:
    """Until the roster is on the stream and every service's consumer has caught up with it."""
    deadline = time.monotonic() + timeout
    previous = -1
    while time.monotonic() < deadline:
        sample = await watch.sample()
        caught_up = all(sample.pending.get(name) == 0 for name in SERVICE_DURABLES)
        if caught_up and sample.last_seq >= roster_events and sample.last_seq == previous:
            return
        previous = sample.last_seq
        await asyncio.sleep(1.0)
    raise RuntimeError(f"the stack did not settle: {watch.samples[-1] if watch.samples else 'no sample'}")


@dataclass
class Floor:
    latencies: list[float]
    consume_rate: float
    publish_rate: float
    commit_rate: float  # the same consumer committing one SQLite transaction per message


async def jetstream_floor(nc, count: int, rate: float, burst: int, store_dir: Path) -> Floor:
    """One hop on a scratch stream of the same server: acked publish -> services-shaped pull consumer.

    Latency: ``count`` messages published open-loop at ``rate``/s, each timed from just before its publish to
    its delivery. Throughput: ``burst`` messages published as fast as acks come back, then consumed; then
    ``burst // 4`` more through the same consumer recording each in a SQLite file (WAL, as the eventsourcing
    stores are) in ``store_dir``, the least a service does per message: its tracking row.
    """
    js = nc.jetstream()
    name = f"BENCH_E2E_FLOOR_{os.getpid()}"
    subject = f"bench.e2e-floor.{os.getpid()}"
    await js.add_stream(StreamConfig(name=name, subjects=[subject], storage=StorageType.FILE))
    try:
        # the services' consumer: durable pull, one message in flight, explicit ack confirmed by the server
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=1, ack_wait=60)
        consumer = await js.pull_subscribe(subject, durable="floor", stream=name, config=config)
        latencies: list[float] = []
        consumed = asyncio.Event()
        target = count
        tracking: list[sqlite3.Connection] = []

        def record(sequence: int) -> None:
            tracking[0].execute("INSERT INTO tracking VALUES (?)", (sequence,))

        async def consume() -> None:
            while True:
                try:
                    messages = await consumer.fetch(1, timeout=1.0)
                except nats.errors.TimeoutError:
                    continue
                for message in messages:
                    latencies.append(time.perf_counter() - float(message.data))
                    if tracking:
                        await asyncio.to_thread(record, message.metadata.sequence.stream)
                    await message.ack_sync()
                if len(latencies) >= target:
                    consumed.set()

        async def publish(sequence: int) -> None:
            await js.publish(subject, str(time.perf_counter()).encode(), headers={"Nats-Msg-Id": f"f{sequence}"})

        consumer_task = asyncio.create_task(consume())
        try:
            await open_loop(count, rate, publish)
            await asyncio.wait_for(consumed.wait(), 60)
            hop = list(latencies)
            latencies.clear()
            target = burst
            consumed.clear()
            started = time.perf_counter()
            queue = iter(range(count, count + burst))

            async def publisher() -> None:
                for sequence in queue:
                    await publish(sequence)

            await asyncio.gather(*(publisher() for _ in range(HTTP_CONCURRENCY)))
            published = time.perf_counter()
            await asyncio.wait_for(consumed.wait(), 120)
            finished = time.perf_counter()

            with tempfile.TemporaryDirectory(prefix="bench-e2e-floor-", dir=store_dir) as scratch:
                connection = sqlite3.connect(Path(scratch) / "t.sqlite", isolation_level=None, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("CREATE TABLE tracking (sequence INTEGER PRIMARY KEY)")
                tracking.append(connection)
                latencies.clear()
                consumed.clear()
                target = max(1, burst // 4)
                queue = iter(range(count + burst, count + burst + target))
                committing = time.perf_counter()
                await asyncio.gather(*(publisher() for _ in range(HTTP_CONCURRENCY)))
                await asyncio.wait_for(consumed.wait(), 120)
                committed = time.perf_counter()
                connection.close()
        finally:
            consumer_task.cancel()
            await asyncio.gather(consumer_task, return_exceptions=True)
            await consumer.unsubscribe()
        return Floor(
            hop, burst / (finished - started), burst / (published - started), target / (committed - committing)
        )
    finally:
        await js.delete_stream(name)


STAGES = ("incident.reported", "dispatch.offered", "notification.requested")


async def stage_times(js, first_seq: int, last_seq: int) -> dict[str, dict[str, float]]:
    """Per incident: when the stream stored its first event of each of ``STAGES`` (the server's own stamp)."""
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=first_seq, ack_policy=AckPolicy.NONE
    )
    reader = await js.pull_subscribe(f"{SUBJECT_PREFIX}.>", stream=STREAM_NAME, config=config)
    found: dict[str, dict[str, float]] = {}
    try:
        seq = first_seq
        while seq < last_seq:
            try:
                messages = await reader.fetch(500, timeout=2.0)
            except nats.errors.TimeoutError:
                break
            for message in messages:
                seq = message.metadata.sequence.stream
                event = json.loads(message.data)
                if event.get("type") in STAGES and event.get("incident_id"):
                    stamps = found.setdefault(event["incident_id"], {})
                    stamps.setdefault(event["type"], message.metadata.timestamp.timestamp())
    finally:
        await reader.unsubscribe()
    return found


def stage_breakdown(batch: list[Report], arrivals: dict[int, float], stamps: dict[str, dict[str, float]]) -> str:
    """p50 of each leg from the POST to the first SMS: a line saying where the time goes."""
    legs: dict[str, list[float]] = {}
    for report in batch:
        times = stamps.get(report.incident_id, {})
        if report.n not in arrivals or any(stage not in times for stage in STAGES):
            continue
        points = [
            ("POST -> incident.reported stored (gateway)", report.t0, times["incident.reported"]),
            ("-> first dispatch.offered stored (dispatcher)", times["incident.reported"], times["dispatch.offered"]),
            (
                "-> its notification.requested stored",
                times["dispatch.offered"],
                times["notification.requested"],
            ),
            (
                "-> first SMS at the sandbox (notifier + provider call)",
                times["notification.requested"],
                arrivals[report.n],
            ),
        ]
        for leg, start, end in points:
            legs.setdefault(leg, []).append(end - start)
    if not legs:
        return "no stage times found"
    count = len(next(iter(legs.values())))
    return f"p50 per leg ({count} reports): " + "; ".join(f"{leg} {ms(percentile(v, 0.5))}" for leg, v in legs.items())


# --- load ------------------------------------------------------------------------------------------------------


@dataclass
class Report:
    n: int
    phase: str
    scheduled: float  # wall clock
    t0: float = 0.0  # wall clock, just before the POST
    http_seconds: float = 0.0
    status: int = 0
    short_code: str = ""
    incident_id: str = ""


async def open_loop(count: int, rate: float, send) -> None:
    """Start ``send(i)`` for i in range(count) at ``rate`` per second on schedule, then wait for all of them."""
    started = time.perf_counter() + 0.05
    tasks = []
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)


class Load:
    """Posts overdose reports at scheduled times, keeping the incident id each 201 names (its SMS are found by it)."""

    def __init__(self, client: httpx.AsyncClient, target: Target, first_n: int, places: list) -> None:
        self.client = client
        self.target = target
        self.next_n = first_n
        self.places = places
        self.reports: dict[int, Report] = {}
        self.failures = 0

    def number_of_incident(self) -> dict[str, int]:
        return {r.incident_id: n for n, r in self.reports.items() if r.incident_id}

    async def post(self, report: Report) -> None:
        body = overdose_report(self.places[report.n % len(self.places)], report.n)
        report.t0 = time.time()
        started = time.perf_counter()
        try:
            response = await self.client.post(f"{self.target.gateway}/v1/incidents", json=body)
            report.status = response.status_code
            if response.status_code == 201:
                answer = response.json()
                report.short_code, report.incident_id = answer["short_code"], answer["incident_id"]
            else:
                print(f"  report {report.n}: HTTP {response.status_code} {response.text[:160]}", file=sys.stderr)
        except httpx.HTTPError as exc:
            print(f"  report {report.n}: {type(exc).__name__}", file=sys.stderr)
            self.failures += 1
            if self.failures > 20:
                raise RuntimeError("the gateway stopped answering") from exc
        report.http_seconds = time.perf_counter() - started

    async def run(self, phase: str, rate: float, seconds: float) -> list[Report]:
        count = max(1, round(rate * seconds))
        base = self.next_n
        self.next_n += count
        origin = time.time() + 0.05
        batch = [Report(base + i, phase, origin + i / rate) for i in range(count)]
        for report in batch:
            self.reports[report.n] = report
        await open_loop(count, rate, lambda i: self.post(batch[i]))
        return batch


# --- figures ---------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (per second); 0 with fewer than three points."""
    if len(points) < 3:
        return 0.0
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


@dataclass
class Phase:
    name: str
    rate: float
    seconds: float
    sent: int
    accepted: int
    paged: int
    latencies: list[float]
    http: list[float]
    completion_rate: float
    backlog_growth: float  # reports/s, end to end, over the second half
    backlog_end: int
    pending_growth: dict[str, float]  # per durable, messages/s over the second half
    pending_max: dict[str, int]
    capacity: dict[str, float]  # per durable, messages/s acked while it had a backlog
    send_lag_p99: float
    events: int
    events_by_type: dict[str, int]
    sms_queue_end: int
    flat: bool
    sms_path_flat: bool  # the end-to-end backlog alone (what the read models do aside)
    why: str


def sms_queue(sample: Sample) -> int:
    """Notifications requested and not yet settled (sent, failed, placed as a call, or dropped as moot)."""
    s = sample.subjects
    ended = ("crisis.sms.sent", "crisis.sms.failed", "crisis.call.placed", "crisis.notification.dropped")
    settled = sum(s.get(subject, 0) for subject in ended)
    return s.get("crisis.notification.requested", 0) - settled


def judge(
    name: str, rate: float, seconds: float, batch: list[Report], arrivals: dict[int, float], watch: StreamWatch
) -> Phase:
    start = min(r.scheduled for r in batch)
    end = start + seconds
    accepted = [r for r in batch if r.status == 201]
    latencies = [arrivals[r.n] - r.t0 for r in accepted if r.n in arrivals]
    done_in_window = sum(1 for r in accepted if start <= arrivals.get(r.n, math.inf) <= end)
    # end-to-end backlog at time t: reports posted by t whose first SMS had not arrived by t
    half = start + seconds / 2
    grid = [half + i * 0.5 for i in range(int((end - half) / 0.5) + 1)]
    backlog = [(t, sum(1 for r in accepted if r.t0 <= t < arrivals.get(r.n, math.inf))) for t in grid]
    growth = slope(backlog)
    samples = watch.between(start, end)
    late = [s for s in samples if s.at >= half]
    durables = sorted({name for s in samples for name in s.pending})
    pending_growth = {d: slope([(s.at, s.pending.get(d, 0)) for s in late]) for d in durables}
    pending_max = {d: max(s.pending.get(d, 0) for s in samples) for d in durables}
    # what a consumer gets through while it has a backlog is its capacity here
    capacity = {}
    for d in durables:
        busy = [
            (a, b)
            for a, b in zip(samples, samples[1:], strict=False)
            if min(a.pending.get(d, 0), b.pending.get(d, 0)) > 5
        ]
        if len(busy) >= 3:
            done = sum(b.acked.get(d, 0) - a.acked.get(d, 0) for a, b in busy)
            capacity[d] = done / sum(b.at - a.at for a, b in busy)
    events = samples[-1].last_seq - samples[0].last_seq if len(samples) > 1 else 0
    by_type = (
        {k: v - samples[0].subjects.get(k, 0) for k, v in samples[-1].subjects.items()} if len(samples) > 1 else {}
    )
    lag = [r.t0 - r.scheduled for r in batch]
    allowed = max(0.05 * rate, 0.2)  # reports/s of growth that still counts as flat (noise on 2 shared cores)
    reasons = []
    sms_path_flat = len(latencies) == len(batch) and growth <= allowed
    if len(accepted) < len(batch):
        reasons.append(f"{len(batch) - len(accepted)} not accepted")
    if len(latencies) < len(accepted):
        reasons.append(f"{len(accepted) - len(latencies)} never paged")
    if growth > allowed:
        reasons.append(f"backlog +{growth:.2f}/s")
    for durable, grew in pending_growth.items():
        if grew > max(0.25 * rate, 1.0):  # messages/s; a report brings ~12, so ~2% of what arrives
            reasons.append(f"{durable} pending +{grew:.1f}/s")
    return Phase(
        name=name,
        rate=rate,
        seconds=seconds,
        sent=len(batch),
        accepted=len(accepted),
        paged=len(latencies),
        latencies=latencies,
        http=[r.http_seconds for r in accepted],
        completion_rate=done_in_window / seconds,
        backlog_growth=growth,
        backlog_end=backlog[-1][1] if backlog else 0,
        pending_growth=pending_growth,
        pending_max=pending_max,
        capacity=capacity,
        send_lag_p99=percentile(lag, 0.99),
        events=events,
        events_by_type={k.removeprefix("crisis."): v for k, v in by_type.items() if v},
        sms_queue_end=sms_queue(late[-1]) if late else 0,
        flat=not reasons,
        sms_path_flat=sms_path_flat,
        why=", ".join(reasons) or "flat",
    )


def ms(seconds: float) -> str:
    return (
        "n/a" if math.isnan(seconds) else f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"
    )


def print_phase(phase: Phase) -> None:
    grown = sorted(phase.pending_growth.items(), key=lambda kv: -kv[1])[:3]
    print(
        f"  {phase.name}: {phase.rate:g}/s x {phase.seconds:g} s: sent {phase.sent}, 201 {phase.accepted}, "
        f"paged {phase.paged}; e2e p50 {ms(percentile(phase.latencies, 0.5))} p95 "
        f"{ms(percentile(phase.latencies, 0.95))} p99 {ms(percentile(phase.latencies, 0.99))}; "
        f"intake p50 {ms(percentile(phase.http, 0.5))}; paged in window {phase.completion_rate:.2f}/s; "
        f"backlog slope {phase.backlog_growth:+.2f}/s (at end {phase.backlog_end}); send lag p99 "
        f"{ms(phase.send_lag_p99)}; pending slope " + ", ".join(f"{d} {g:+.1f}/s" for d, g in grown) + "; "
        "max pending "
        + ", ".join(f"{d} {v}" for d, v in sorted(phase.pending_max.items()))
        + (
            "; acked/s while backlogged " + ", ".join(f"{d} {v:.0f}" for d, v in sorted(phase.capacity.items()))
            if phase.capacity
            else ""
        )
        + f" -> {phase.why}",
        flush=True,
    )


def machine() -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown",
    )
    memory = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")),
        "0",
    )
    version = subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    return [
        f"CPU: {cpu}, {os.cpu_count()} cores (nproc); memory {int(memory) / 1024 / 1024:.1f} GiB; "
        f"load average at start {os.getloadavg()[0]:.2f}",
        f"Python {platform.python_version()} ({platform.system()} {platform.release()}); {version}",
    ]


# --- the run ---------------------------------------------------------------------------------------------------


async def run(target: Target, args: argparse.Namespace) -> None:
    for line in machine():
        print(line)
    print(f"stores: {target.stores}")
    if target.settings:
        print("stack settings: " + " ".join(f"{k}={v}" for k, v in sorted(target.settings.items())))
    nc = await nats.connect(target.nats_url)
    watch = StreamWatch(nc.jetstream())
    watcher: asyncio.Task | None = None
    index: SmsIndex | None = None
    limits = httpx.Limits(max_connections=HTTP_CONCURRENCY, max_keepalive_connections=HTTP_CONCURRENCY)
    headers = {"Authorization": f"Bearer {target.token}"}
    try:
        print(f"nats-server (the stack's): {nc._server_info.get('version')}; waiting for the roster to settle ...")
        await wait_until_settled(watch, target.roster_events)
        pids = process_tree(target.launcher_pid) if target.launcher_pid else {}
        async with (
            httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client,
            httpx.AsyncClient(timeout=30) as sandbox_client,
        ):
            since = time.time()
            first_n = 0 if target.launcher_pid else (int(since) % 9000 + 1000) * 1000
            places = scenes(4096)
            load = Load(client, target, first_n, places)
            index = SmsIndex(nc.jetstream())
            await index.start()
            inbox = SandboxInbox(sandbox_client, target.sandbox, since - 1, index, load)
            warm = await load.run("warm-up", 2.0, args.warmup / 2.0)
            missing = await inbox.wait_for({r.n for r in warm if r.status == 201}, 60)
            if missing or not any(r.status == 201 for r in warm):
                raise RuntimeError(f"warm-up: {len(missing)} of {len(warm)} reports were never paged; check the stack")
            warm_lat = [inbox.first[r.n] - r.t0 for r in warm]
            print(f"warm-up: {len(warm)} reports paged, e2e p50 {ms(percentile(warm_lat, 0.5))}", flush=True)

            floor = await jetstream_floor(nc, args.floor_count, args.floor_rate, args.floor_burst, target.var_dir)
            print(
                f"floor (scratch stream, same server): hop p50 {ms(percentile(floor.latencies, 0.5))} p95 "
                f"{ms(percentile(floor.latencies, 0.95))} p99 {ms(percentile(floor.latencies, 0.99))}; "
                f"serial consumer {floor.consume_rate:,.0f} msg/s, {floor.commit_rate:,.0f} msg/s with a SQLite "
                f"commit each on {filesystem(target.var_dir)}; acked publish {floor.publish_rate:,.0f} msg/s",
                flush=True,
            )

            watcher = asyncio.create_task(watch.run())
            steps: list[Phase] = []
            best: float | None = None
            for rate in args.rates:
                # what the rest needs at most: this step, its drain, the sustained phase and its drain
                if time.monotonic() + args.step + args.duration + 3 * args.drain_timeout > args.deadline:
                    print(f"  ladder stopped before {rate:g}/s: the run's time budget (--budget) is spent")
                    break
                batch = await load.run(f"step {rate:g}/s", rate, args.step)
                await inbox.wait_for({r.n for r in batch if r.status == 201}, args.drain_timeout)
                phase = judge(f"step {rate:g}/s", rate, args.step, batch, inbox.first, watch)
                print_phase(phase)
                steps.append(phase)
                if not phase.flat:
                    break
                best = rate
                await settle(watch, inbox, load, args.drain_timeout)

            sustained_rate = args.rate or best or args.rates[0]
            await settle(watch, inbox, load, args.drain_timeout)
            cpu_before, wall_before = cpu_seconds(pids), time.monotonic()
            first_seq = (await watch.sample()).last_seq + 1
            batch = await load.run("sustained", sustained_rate, args.duration)
            cpu_after, wall = cpu_seconds(pids), time.monotonic() - wall_before
            await inbox.wait_for({r.n for r in batch if r.status == 201}, args.drain_timeout)
            sustained = judge("sustained", sustained_rate, args.duration, batch, inbox.first, watch)
            print_phase(sustained)
            last_seq = (await watch.sample()).last_seq
            legs = stage_breakdown(batch, inbox.first, await stage_times(watch.js, first_seq, last_seq))
            cores = {name: (cpu_after[name] - cpu_before.get(name, 0.0)) / wall for name in cpu_after}
            print_summary(target, args, floor, steps, best, sustained, cores, legs)
    finally:
        if watcher:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        if index:
            await index.stop()
        await nc.close()


async def settle(watch: StreamWatch, inbox: SandboxInbox, load: Load, timeout: float) -> None:
    """Between phases: every report so far paged and every consumer caught up, so no phase inherits a backlog."""
    started = time.monotonic()
    deadline = started + timeout
    missing = await inbox.wait_for({n for n, r in load.reports.items() if r.status == 201}, timeout)
    while True:
        sample = await watch.sample()
        if all(pending == 0 for pending in sample.pending.values()) and sms_queue(sample) <= 0:
            break
        if time.monotonic() > deadline:
            print(f"  not settled after {timeout:g} s: pending {sample.pending}, SMS queue {sms_queue(sample)}")
            break
        await asyncio.sleep(1.0)
    if missing:
        print(f"  {len(missing)} reports still without an SMS")
    print(f"  settled in {time.monotonic() - started:.1f} s", flush=True)


def print_summary(
    target: Target,
    args: argparse.Namespace,
    floor: Floor,
    steps: list[Phase],
    best: float | None,
    sustained: Phase,
    cores: dict[str, float],
    legs: str,
) -> None:
    hop = {q: percentile(floor.latencies, q) for q in (0.5, 0.95, 0.99)}
    lat = {q: percentile(sustained.latencies, q) for q in (0.5, 0.95, 0.99)}
    events_per_report = sustained.events / sustained.sent if sustained.sent else math.nan
    throughput = sustained.paged / sustained.seconds
    command = " ".join(["python -m bench.e2e", *sys.argv[1:]])
    print()
    print(f"### Results ({command})")
    print()
    print("| step (open loop) | sent | paged | e2e p50 | e2e p95 | e2e p99 | intake p50 | backlog slope | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for phase in [*steps, sustained]:
        print(
            f"| {phase.name} ({phase.seconds:g} s) | {phase.sent} | {phase.paged} | "
            f"{ms(percentile(phase.latencies, 0.5))} | {ms(percentile(phase.latencies, 0.95))} | "
            f"{ms(percentile(phase.latencies, 0.99))} | {ms(percentile(phase.http, 0.5))} | "
            f"{phase.backlog_growth:+.2f}/s | {phase.why} |"
        )
    print()
    print("| figure | end to end | JetStream floor (same server, same run) | ratio |")
    print("|---|---|---|---|")
    best_text = f"{best:g} reports/s" if best is not None else f"below {args.rates[0]:g} reports/s"
    print(f"| highest rate with a flat backlog (every consumer) | {best_text} | - | - |")
    sms_flat = [phase.rate for phase in steps if phase.sms_path_flat]
    sms_text = f"{max(sms_flat):g} reports/s" if sms_flat else "none"
    print(f"| highest step with the report-to-SMS backlog flat (read models aside) | {sms_text} | - | - |")
    print(
        f"| sustained ({sustained.seconds:g} s at {sustained.rate:g}/s) | {throughput:.2f} reports/s paged "
        f"({sustained.completion_rate:.2f}/s within the window) | {floor.consume_rate:,.0f} msg/s through one "
        f"serial consumer | {throughput / floor.consume_rate:.5f} |"
    )
    print(
        f"| events on the stream per report | {events_per_report:.1f} | 1 | x{events_per_report:.1f} "
        f"(each read only by the services that handle its type) |"
    )
    for q, label in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        print(f"| latency {label} | {ms(lat[q])} | {ms(hop[q])} one hop | x{lat[q] / hop[q]:.0f} |")
    print(f"| acked publish rate | - | {floor.publish_rate:,.0f} msg/s | - |")
    print(
        f"| serial consumer + 1 SQLite commit per message ({filesystem(target.var_dir)}) | - | "
        f"{floor.commit_rate:,.0f} msg/s (= {floor.commit_rate / events_per_report:.1f} reports/s at "
        f"{events_per_report:.1f} events each) | {throughput / floor.commit_rate * events_per_report:.2f} |"
    )
    print()
    if cores:
        print(f"CPU during the sustained phase (cores busy, of {os.cpu_count()}; ms of CPU per report paged):")
        for name, busy in sorted(cores.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<28} {busy:5.2f}  {busy / throughput * 1000 if throughput else math.nan:7.1f} ms")
        four = sum(cores.get(name, 0.0) for name in FOUR_SERVICES)
        four_ms = four / throughput * 1000 if throughput else math.nan
        print(
            f"  {'the four services together':<28} {four:5.2f}  {four_ms:7.1f} ms"
            f" (issue 16's ceiling: {CPU_CEILING_MS} ms; {', '.join(FOUR_SERVICES)})"
        )
    for phase in [*steps, sustained]:
        if phase.capacity and not math.isnan(events_per_report):
            rates = ", ".join(
                f"{d} {v:.0f} msg/s (= {v / events_per_report:.1f} reports/s)"
                for d, v in sorted(phase.capacity.items(), key=lambda kv: kv[1])
            )
            print(f"consumers' pace while backlogged, {phase.name}: {rates}")
    if sustained.sent and sustained.events_by_type:
        mix = sorted(sustained.events_by_type.items(), key=lambda kv: -kv[1])
        print(
            "events per report (sustained phase, window): " + ", ".join(f"{k} {v / sustained.sent:.2f}" for k, v in mix)
        )
    print(f"where the time goes, sustained phase, {legs}")
    print(f"load average at the end (1/5/15 min): {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    grown = ", ".join(f"{d} {v}" for d, v in sorted(sustained.pending_max.items()))
    print(f"max JetStream pending during the sustained phase: {grown}; SMS queue at its end {sustained.sms_queue_end}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=90, help="seconds of the sustained phase (default 90)")
    parser.add_argument("--rate", type=float, help="reports/s of the sustained phase (default: highest flat step)")
    parser.add_argument(
        "--rates", default="2,4,6,8,10,12,14,16", help="the ladder, reports/s, comma separated (default 2,4,...,16)"
    )
    parser.add_argument("--step", type=float, default=20, help="seconds per ladder step (default 20)")
    parser.add_argument("--responders", type=int, default=300, help="front-line responders in the city roster")
    parser.add_argument("--warmup", type=float, default=10, help="warm-up reports (at 2/s) before measuring")
    parser.add_argument("--drain-timeout", type=float, default=60, help="seconds to wait for a phase's pages")
    parser.add_argument("--floor-count", type=int, default=500, help="floor latency messages")
    parser.add_argument("--floor-rate", type=float, default=100, help="floor latency messages/s")
    parser.add_argument("--floor-burst", type=int, default=2000, help="floor throughput messages")
    parser.add_argument("--sms-rate", type=float, default=1000, help="own stack: CRISIS_SMS_RATE_PER_SECOND")
    parser.add_argument(
        "--sms-in-flight",
        type=int,
        default=1,
        help="own stack: CRISIS_SMS_IN_FLIGHT, provider calls under way at once (as a Messaging Service would be run)",
    )
    parser.add_argument(
        "--scratch",
        help="own stack: where its temporary var dir goes (default: the system temp dir; /dev/shm "
        "puts the SQLite stores and JetStream files in memory, taking disk syncs out)",
    )
    parser.add_argument("--keep-timers", action="store_true", help="own stack: leave P1 reminder/voice/timeout")
    parser.add_argument(
        "--no-status-callbacks",
        action="store_true",
        help="own stack: no delivery status callbacks (each SMS otherwise brings three sms.status_updated events)",
    )
    parser.add_argument(
        "--budget", type=float, default=540, help="seconds the whole run may take; the ladder stops early to keep it"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: short steps, 20 s sustained")
    parser.add_argument("--url", help="a running gateway (default: start a stack)")
    parser.add_argument("--token", default=os.environ.get("CRISIS_TOKEN"), help="intake bearer token, with --url")
    parser.add_argument("--sandbox-url", default="http://127.0.0.1:8025", help="with --url")
    parser.add_argument(
        "--nats-url",
        default=os.environ.get("CRISIS_NATS_URL", "nats://127.0.0.1:14222"),
        help="with --url; make run's nats-server wants nats://crisis:<var/nats.password>@127.0.0.1:14222",
    )
    args = parser.parse_args()
    if args.quick:
        args.rates, args.step, args.duration, args.warmup = "2,5", 10, 20, 4
        args.floor_count, args.floor_burst = 200, 500
    args.rates = [float(r) for r in str(args.rates).split(",") if r.strip()]
    args.deadline = time.monotonic() + args.budget
    if args.url and not args.token:
        parser.error("--url needs --token (or CRISIS_TOKEN): the intake token the launcher printed")
    return args


def interrupted(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    args = parse_args()
    # Ctrl-C and SIGTERM unwind at once, so the stack is stopped and the scratch stream deleted. Our own SIGINT
    # handler, not asyncio.run's: that one only cancels the main task, and a cancellation that lands while a
    # client library's wait_for completes is swallowed on Python 3.11, so the run would go on.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if args.url:
            target = Target(args.url.rstrip("/"), args.sandbox_url.rstrip("/"), args.nats_url, args.token, "as run")
            asyncio.run(run(target, args))
        else:
            with own_stack(args) as target:
                asyncio.run(run(target, args))
    except KeyboardInterrupt:
        print("interrupted; the stack was stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
