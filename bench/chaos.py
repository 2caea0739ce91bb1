"""Chaos: many incidents across a seeded city while every service and the nats-server are SIGKILLed and restarted.

The services run as separate processes exactly as `make run` starts them, on an embedded nats-server this
run owns (free ports, a fresh directory). While overdose reports arrive (each posted with an
Idempotency-Key and retried as a real client would: on refused connections, 409 and 503), a chaos loop kills
a random victim (nats-server, dispatcher, notifier, projections or intake gateway) with SIGKILL at random
moments and restarts it after a random outage. Simulated responders read their pages in the SMS sandbox and
answer some of them ("Y <code>"), retrying a reply the gateway did not take; the supervisor and the clinical
director never answer, so unanswered incidents climb to the top of the ladder. With check-ins on (the default,
minutes of 5 s), a responder who accepted texts ARRIVED, then OK once, CLEAR, or nothing at all, so every step
of a missed check-in (reminder, call, supervisor and partner, 911) fires while the services are being killed.
A service that exits by itself is restarted, as a supervisor (systemd, Kubernetes) would, and reported.

``ChaosPlan(cluster=True, instances=...)`` runs the same on a 3-node JetStream cluster with several instances of
a service (``tests/e2e/test_cluster_flow.py``).

Then the chaos stops, everything settles, the services are stopped, and the run checks what it promises:
every incident was recorded once and paged; each is acknowledged or escalated to the top of its ladder;
every event each service stored reached the stream (no event lost); every page request ended in an SMS
sent or a recorded failure; no check-in timer was lost (each one ended, or climbed all four steps) and none
fired a step twice, out of order or early; duplicate SMS stay within the documented bound (one per notifier
kill); and the projections equal a clean rebuild from sequence 1.

    .venv/bin/python -m bench.chaos                    # the large run (~6 minutes)
    .venv/bin/python -m bench.chaos --incidents 40 --report-seconds 60 --seed 3

`tests/e2e/test_chaos.py` runs the small plan (under 2 minutes) in `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from uuid import UUID

import httpx
import nats

from bench.city import DIRECTOR_PHONE, SUPERVISOR_PHONE, overdose_report, scenes, write_city_roster
from services.contract.events import Envelope, UnreadableMessage, decode_event
from services.runtime.credentials import ensure_demo_credentials
from services.runtime.nats_server import EmbeddedNatsServer, die_with_parent
from services.runtime.stream import STREAM_NAME
from tests.support.nats_cluster import NatsCluster, free_ports

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = "services.intake_gateway"
SERVICES = {
    "projections": "services.projections",
    "dispatcher": "services.dispatcher",
    "notifier": "services.notifier",
    "intake-gateway": GATEWAY,
}
VICTIMS = ("nats", *SERVICES)
DURABLES = ("dispatcher", "notifier", "projections", "followups", "intake_gateway_incident_state")
PAGE_CODE = re.compile(r"\bY (\d{4})\b")
CIPHER_KEY = base64.b64encode(b"chaos-run-key-0123456789abcdef!!").decode()  # generated for the run, not a secret


@dataclass(frozen=True)
class ChaosPlan:
    incidents: int = 150
    responders: int = 150
    report_seconds: float = 240.0  # reports are spread evenly over this
    kill_every: tuple[float, float] = (3.0, 8.0)  # seconds between kills, uniform
    down_for: tuple[float, float] = (0.2, 3.0)  # seconds a victim stays dead, uniform
    chaos_tail: float = 30.0  # the kills go on this long after the last report, while deadlines fire
    answer_share: float = 0.5  # pages a responder answers (by code, reproducible from the seed)
    answer_delay: tuple[float, float] = (0.5, 4.0)
    ack_timeout_seconds: int = 10  # per ladder step (production default 90 s for P1)
    seed: int = 1
    settle_timeout: float = 240.0
    victims: tuple[str, ...] = VICTIMS  # "nats-leader": the cluster node leading the stream at that moment
    max_kills: int | None = None
    cluster: bool = False  # a 3-node JetStream cluster (stream R3) instead of one server
    instances: tuple[tuple[str, int], ...] = ()  # e.g. (("dispatcher", 2),)
    partitions: int = 1  # CRISIS_PARTITIONS for every service
    check_ins: bool = True  # responders who accepted text ARRIVED, then OK, CLEAR or nothing (by seeded coin)
    check_in_minute_seconds: float = 5.0  # a check-in "minute": 3 of them to the due time, steps 0/1/2/3 after
    ok_share: float = 0.3  # of responders on scene: OK once (the timer restarts, then runs out)
    clear_share: float = 0.3  # CLEAR (the timer ends); the rest never answer (every step fires)


SMALL = ChaosPlan(
    incidents=12,
    responders=40,
    report_seconds=20.0,
    chaos_tail=10.0,
    kill_every=(2.0, 4.0),
    down_for=(0.2, 1.5),
    settle_timeout=150.0,  # normally settles in ~40 s; the margin is for a loaded machine
)


@dataclass
class Report:
    """What the run tried and what it found."""

    plan: ChaosPlan
    kills: list[tuple[float, str]] = field(default_factory=list)
    crashes: list[tuple[float, str]] = field(default_factory=list)  # exits nobody caused (restarted, as systemd would)
    accepted: dict[int, dict] = field(default_factory=dict)  # report number -> intake answer
    post_attempts: int = 0
    answers: int = 0
    answer_retries: int = 0
    facts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def kill_counts(self) -> Counter[str]:
        return Counter(victim for _, victim in self.kills)


# ---- the stack ------------------------------------------------------------------------------------------------


@dataclass
class Instance:
    """One running copy of a service: its module, its own environment (ports) and its process."""

    module: str
    env: dict[str, str]
    process: subprocess.Popen | None = None


class ChaosStack:
    """nats (one server, or a 3-node cluster), the SMS sandbox and the services as child processes to kill.

    ``plan.instances`` runs extra copies of a service (dispatcher and notifier share their durable consumer
    and their PostgreSQL store; gateways answer on ports of their own). Instance names: "dispatcher",
    "dispatcher-2", ...; nats victims: "nats" (the single server) or "nats:<node name>".
    """

    def __init__(self, workdir: Path, plan: ChaosPlan, database_url: str = "") -> None:
        self.workdir = workdir
        self.var_dir = workdir / "var"
        (self.var_dir / "logs").mkdir(parents=True, exist_ok=True)
        counts = {name: 1 for name in SERVICES} | dict(plan.instances)
        ports = iter(free_ports(3 + sum(counts.values()) * 3))
        nats_port, projections, sandbox = next(ports), next(ports), next(ports)
        self.cluster = NatsCluster(self.var_dir / "nats", 3, encryption_key=CIPHER_KEY) if plan.cluster else None
        self.nats = EmbeddedNatsServer(
            self.var_dir / "nats",
            port=nats_port,
            log_file=self.var_dir / "logs" / "nats.log",
            encryption_key=CIPHER_KEY,
        )
        self.projections = f"http://127.0.0.1:{projections}"
        self.sandbox = f"http://127.0.0.1:{sandbox}"
        credentials_file = self.var_dir / "credentials.json"
        self.tokens = ensure_demo_credentials(credentials_file)
        roster = write_city_roster(workdir / "city-roster.json", plan.responders, seed=plan.seed)
        self.nats_url = self.cluster.url if self.cluster else f"nats://127.0.0.1:{nats_port}"
        self.instances: dict[str, Instance] = {}
        for service, count in counts.items():
            for n in range(1, count + 1):
                name = service if n == 1 else f"{service}-{n}"
                own = {
                    "CRISIS_GATEWAY_PORT": str(next(ports)),
                    "CRISIS_DISPATCHER_OPS_PORT": str(next(ports)),
                    "CRISIS_NOTIFIER_OPS_PORT": str(next(ports)),
                }
                self.instances[name] = Instance(SERVICES[service], own)
        self.gateways = [
            f"http://127.0.0.1:{i.env['CRISIS_GATEWAY_PORT']}" for i in self.instances.values() if i.module == GATEWAY
        ]
        self.gateway = self.gateways[0]
        self.instances["sms-sandbox"] = Instance("services.sms_sandbox", {})
        self.held_down: set[str] = set()  # killed by the chaos loop, waiting for their restart
        self.database_url = database_url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")} | {
            "CRISIS_NATS_URL": self.nats_url,
            "CRISIS_STREAM_REPLICAS": "3" if self.cluster else "1",
            "CRISIS_PARTITIONS": str(plan.partitions),
            "CRISIS_DATABASE_URL": database_url,
            "CRISIS_VAR_DIR": str(self.var_dir),
            "CRISIS_CIPHER_KEY": CIPHER_KEY,
            "CRISIS_CREDENTIALS_FILE": str(credentials_file),
            "CRISIS_GATEWAY_PUBLIC_URL": self.gateway,
            "CRISIS_PROJECTIONS_PORT": str(projections),
            "CRISIS_SANDBOX_PORT": str(sandbox),
            "CRISIS_SANDBOX_URL": self.sandbox,
            "CRISIS_SANDBOX_INBOUND_WEBHOOK_URL": f"{self.gateway}/twilio/sms",
            "CRISIS_TWILIO_STATUS_CALLBACK_URL": f"{self.gateway}/twilio/status",
            "CRISIS_ROSTER_SEED_FILE": str(roster),
            "CRISIS_ACK_TIMEOUT_P1_SECONDS": str(plan.ack_timeout_seconds),
            "CRISIS_CANDIDATE_STEPS": "1",
            # a short code or toll-free sender (a long code's 1 SMS/s would make the run mostly waiting)
            "CRISIS_SMS_RATE_PER_SECOND": "10",
            "CRISIS_SMS_RATE_BURST": "5",
        }
        if plan.check_ins:  # a check-in due 3 "minutes" after ARRIVED, prompted 1 before, steps 0, 1, 2, 3 after
            self.env |= {
                "CRISIS_CHECKIN_MINUTE_SECONDS": str(plan.check_in_minute_seconds),
                "CRISIS_CHECKIN_MINUTES": "3",
                "CRISIS_CHECKIN_MINUTES_BY": "",
                "CRISIS_CHECKIN_PROMPT_MINUTES": "1",
                "CRISIS_CHECKIN_REMINDER_MINUTES": "0",
                "CRISIS_CHECKIN_CALL_MINUTES": "1",
                "CRISIS_CHECKIN_SUPERVISOR_MINUTES": "2",
                "CRISIS_CHECKIN_911_MINUTES": "3",
            }

    def exited_by_themselves(self) -> list[str]:
        """Services that exited although nobody killed them (a crash): a supervisor would restart them."""
        return [
            name
            for name, instance in self.instances.items()
            if name not in self.held_down and instance.process is not None and instance.process.poll() is not None
        ]

    async def start(self) -> None:
        if self.cluster:
            await asyncio.to_thread(self.cluster.start)
            await self.cluster.wait_for_jetstream()  # a fresh cluster answers nothing until it has a meta leader
        else:
            await asyncio.to_thread(self.nats.start)
        for name in self.instances:
            self.start_process(name)
        dispatchers = [  # ready once the seed roster is on the stream: a report sent after it is paged from it
            f"http://127.0.0.1:{i.env['CRISIS_DISPATCHER_OPS_PORT']}/readyz"
            for i in self.instances.values()
            if i.module == "services.dispatcher"
        ]
        for url in (f"{self.sandbox}/healthz", f"{self.projections}/healthz", *(f"{g}/healthz" for g in self.gateways)):
            await asyncio.to_thread(wait_healthy, url, 60)
        for url in dispatchers:
            await asyncio.to_thread(wait_healthy, url, 60)

    def start_process(self, name: str) -> None:
        instance = self.instances[name]
        with open(self.var_dir / "logs" / f"{name}.log", "a") as log:
            instance.process = subprocess.Popen(
                [sys.executable, "-m", instance.module],
                cwd=ROOT,
                env=self.env | instance.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    async def connect(self) -> Any:
        """A NATS connection that follows the cluster from node to node, as the services' do."""
        return await nats.connect(self.nats_url.split(","), max_reconnect_attempts=-1, reconnect_time_wait=0.2)

    async def stream_leader(self) -> str:
        """The cluster node leading the CRISIS stream, as a victim name."""
        connection = await self.connect()
        try:
            info = await connection.jetstream().stream_info(STREAM_NAME)
            return f"nats:{info.cluster.leader}"
        finally:
            await connection.close()

    def kill(self, victim: str) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        self.held_down.add(victim)
        if victim == "nats":
            self.nats.kill()
        elif victim.startswith("nats:"):
            self.cluster.kill(self.cluster.node(victim.removeprefix("nats:")))
        else:
            process = self.instances[victim].process
            process.kill()
            process.wait()

    def restart(self, victim: str) -> None:
        self.held_down.discard(victim)
        if victim == "nats":
            self.nats.start()
        elif victim.startswith("nats:"):
            self.cluster.restart(self.cluster.node(victim.removeprefix("nats:")))
        else:
            self.start_process(victim)

    def stop_services(self) -> None:
        """SIGTERM every service (the sandbox last) and wait: the stores are then closed and quiet."""
        running = [i.process for i in reversed(self.instances.values()) if i.process and i.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        self.stop_services()
        if self.cluster:
            self.cluster.stop()
        self.nats.stop()


def wait_healthy(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not become healthy in {timeout:.0f} s")


# ---- the actors -----------------------------------------------------------------------------------------------


async def chaos_monkey(stack: ChaosStack, plan: ChaosPlan, rng: random.Random, report: Report, started: float) -> None:
    """Kill a victim, leave it dead a moment, restart it; until cancelled (never leaves one dead).

    Victims come in shuffled rounds, so every one of them is killed once in each round of five kills.
    """
    order: list[str] = []
    while True:
        await asyncio.sleep(rng.uniform(*plan.kill_every))
        if plan.max_kills is not None and len(report.kills) >= plan.max_kills:
            return
        if not order:
            order = rng.sample(plan.victims, len(plan.victims))
        victim = order.pop()
        if victim == "nats-leader":
            victim = await stack.stream_leader()
        await asyncio.to_thread(stack.kill, victim)
        report.kills.append((round(time.monotonic() - started, 1), victim))
        try:
            await asyncio.sleep(rng.uniform(*plan.down_for))
        finally:
            await asyncio.to_thread(stack.restart, victim)


async def supervisor(stack: ChaosStack, report: Report, started: float) -> None:
    """Restart a service that exited by itself, as systemd or Kubernetes would, and note it: a crash is a bug
    to look at even when nothing was lost."""
    while True:
        for name in stack.exited_by_themselves():
            report.crashes.append((round(time.monotonic() - started, 1), name))
            stack.start_process(name)
        await asyncio.sleep(0.5)


async def reporter(stack: ChaosStack, plan: ChaosPlan, report: Report) -> None:
    """Post every report on schedule; each is retried with its Idempotency-Key until the gateway takes it."""
    token = stack.tokens["intake"]
    places = scenes(plan.incidents, seed=plan.seed)
    interval = plan.report_seconds / plan.incidents

    async def post(client: httpx.AsyncClient, n: int) -> None:
        await asyncio.sleep(n * interval)
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"chaos-{plan.seed}-{n}"}
        for attempt in range(600):
            report.post_attempts += 1
            gateway = stack.gateways[(n + attempt) % len(stack.gateways)]  # as a load balancer would
            try:
                response = await client.post(
                    f"{gateway}/v1/incidents", json=overdose_report(places[n], n), headers=headers
                )
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code in (200, 201):
                report.accepted[n] = response.json()
                return
            if response is not None and response.status_code not in (409, 502, 503, 504):
                report.problems.append(f"report {n}: unexpected {response.status_code} {response.text[:200]}")
                return
            await asyncio.sleep(0.5)
        report.problems.append(f"report {n}: never accepted")

    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.gather(*(post(client, n) for n in range(plan.incidents)))


async def responders(stack: ChaosStack, plan: ChaosPlan, report: Report) -> None:
    """Front-line responders answer about ``answer_share`` of their pages; a reply the gateway refused is resent."""
    seen: dict[str, int] = {}
    answered: set[str] = set()
    ladder_top = {SUPERVISOR_PHONE, DIRECTOR_PHONE}

    async def send(client: httpx.AsyncClient, phone: str, body: str) -> bool:
        for attempt in range(120):
            response = await client.post(f"{stack.sandbox}/sandbox/api/inbound", json={"from": phone, "body": body})
            if response.status_code == 201 and response.json()["webhook_status"] == 200:
                report.answers += 1
                return True
            report.answer_retries += attempt == 0
            await asyncio.sleep(0.5)
        return False

    async def answer(client: httpx.AsyncClient, phone: str, code: str) -> None:
        coin = random.Random(f"{plan.seed}:{code}:delay")
        await asyncio.sleep(coin.uniform(*plan.answer_delay))
        if not await send(client, phone, f"Y {code}") or not plan.check_ins:
            return
        await asyncio.sleep(coin.uniform(0.2, 1.0))
        if not await send(client, phone, f"ARRIVED {code}"):  # starts the check-in (if this page won)
            return
        toss = coin.random()
        if toss < plan.ok_share:
            await asyncio.sleep(plan.check_in_minute_seconds * coin.uniform(0.5, 2.0))
            await send(client, phone, f"OK {code}")  # the timer restarts, and then runs out: every step fires
        elif toss < plan.ok_share + plan.clear_share:
            await asyncio.sleep(plan.check_in_minute_seconds * coin.uniform(0.5, 4.0))
            await send(client, phone, f"CLEAR {code}")  # ends it: before or after some of its steps

    async with httpx.AsyncClient(timeout=10) as client, asyncio.TaskGroup() as replies:
        while True:
            phones = (await client.get(f"{stack.sandbox}/sandbox/api/phones")).json()["phones"]
            for summary in phones:
                phone = summary["phone"]
                if phone in ladder_top or seen.get(phone) == summary["message_count"]:
                    continue
                seen[phone] = summary["message_count"]
                messages = (await client.get(f"{stack.sandbox}/sandbox/api/messages", params={"phone": phone})).json()
                for message in messages["messages"]:
                    match = PAGE_CODE.search(message["body"] or "")
                    if message["direction"] == "inbound" or not match or match[1] in answered:
                        continue
                    answered.add(match[1])
                    if random.Random(f"{plan.seed}:{match[1]}").random() < plan.answer_share:
                        replies.create_task(answer(client, phone, match[1]))
            await asyncio.sleep(0.3)


# ---- settling and checking ------------------------------------------------------------------------------------


async def read_all_events(js, first: int = 1) -> tuple[list[tuple[int, Envelope]], int]:
    """Every readable event from sequence ``first`` on (with its sequence), and how many were unreadable."""
    from services.projections.rebuild import read_stream

    events: list[tuple[int, Envelope]] = []
    unreadable = 0
    async for chunk in read_stream(js, first):
        for message in chunk:
            try:
                events.append((message.sequence, decode_event(message.data)))
            except UnreadableMessage:
                unreadable += 1
    return events, unreadable


def unended_notifications(events: list[Envelope]) -> set[UUID]:
    """Notification requests with neither an SMS sent, a call placed (NOBODY ACCEPTED calls the supervisor and the
    director), a failure nor a drop (its page needed it no more) recorded."""
    requested = {e.id for e in events if e.type == "notification.requested"}
    ended = ("sms.sent", "call.placed", "sms.failed", "notification.dropped")
    return requested - {e.data.notification_id for e in events if e.type in ended}


def incident_outcomes(events: list[Envelope], incident_ids: set[UUID]) -> dict[UUID, str]:
    """Per incident: "acknowledged", "ladder top" or what is still missing."""
    acknowledged = {e.incident_id for e in events if e.type == "dispatch.acknowledged"}
    exhausted = {
        e.incident_id for e in events if e.type == "dispatch.unfilled" and "ladder_exhausted" in e.data.shortfalls
    }
    return {
        i: "acknowledged" if i in acknowledged else "ladder top" if i in exhausted else "open" for i in incident_ids
    }


CHECK_IN_STEPS = ("reminder", "call", "supervisor_paged", "call_911")


def check_in_timers(events: list[Envelope]) -> tuple[dict[tuple[UUID, UUID], list[dict]], list[str]]:
    """Per (incident, responder): each check-in timer in stream order (from ARRIVED, then from each OK) with what
    fired for it; and what broke the rules: a start twice, a step twice, out of order or before its due time, a
    second prompt, a step or prompt with no timer."""
    timers: dict[tuple[UUID, UUID], list[dict]] = {}
    broken: list[str] = []
    for event in events:
        if not event.type.startswith("checkin.") or event.type == "checkin.duress":
            continue
        data = event.data
        key = (data.incident_id, data.responder_id)
        runs = timers.setdefault(key, [])
        if event.type in ("checkin.started", "checkin.confirmed"):
            if event.type == "checkin.started" and runs and not runs[-1]["ended"]:
                broken.append(f"a check-in started twice: {key}")
            due = data.due_at if event.type == "checkin.started" else data.next_due_at
            runs.append({"due": due, "prompts": 0, "steps": [], "ended": False})
        elif not runs:
            broken.append(f"{event.type} for a check-in never started: {key}")
        elif event.type == "checkin.prompted":
            runs[-1]["prompts"] += 1
        elif event.type == "checkin.missed":
            run = runs[-1]
            run["steps"].append(data.step)
            if data.due_at != run["due"] or event.occurred_at < run["due"]:
                broken.append(f"check-in step {data.step} of {key} fired for another timer or before it was due")
        elif event.type == "checkin.ended":
            runs[-1]["ended"] = True
    for key, runs in timers.items():
        for run in runs:
            if run["steps"] != list(CHECK_IN_STEPS[: len(run["steps"])]):
                broken.append(f"check-in steps of {key} fired twice or out of order: {run['steps']}")
            if run["prompts"] > 1:
                broken.append(f"check-in of {key} prompted {run['prompts']} times")
    return timers, broken


def running_check_ins(timers: dict[tuple[UUID, UUID], list[dict]]) -> list[tuple[UUID, UUID]]:
    """Check-ins whose last timer neither ended nor climbed all its steps: still running (or lost, once settled)."""
    return [
        key for key, runs in timers.items() if not runs[-1]["ended"] and len(runs[-1]["steps"]) < len(CHECK_IN_STEPS)
    ]


async def consumer_backlogs(js) -> dict[str, int | None]:
    """Per durable: messages not yet finished (pending + awaiting ack); None when it cannot be asked."""
    backlogs: dict[str, int | None] = {}
    for durable in DURABLES:
        try:
            info = await js.consumer_info(STREAM_NAME, durable)
        except Exception:  # noqa: BLE001 - not created yet, or the server is still electing
            backlogs[durable] = None
        else:
            backlogs[durable] = info.num_pending + info.num_ack_pending
    return backlogs


async def settle(stack: ChaosStack, report: Report, timeout: float) -> None:
    """Wait until every incident is acknowledged or at the ladder's top, every SMS is out, and all is quiet."""
    ids = {UUID(a["incident_id"]) for a in report.accepted.values()}
    deadline = time.monotonic() + timeout
    connection = await stack.connect()
    events: list[Envelope] = []
    last_seq, quiet_since, backlogs = 0, None, {}
    try:
        js = connection.jetstream()
        while time.monotonic() < deadline:
            new, _ = await read_all_events(js, last_seq + 1)
            events += [e for _, e in new]
            last_seq = new[-1][0] if new else last_seq
            outcomes = incident_outcomes(events, ids)
            timers, _ = check_in_timers(events)
            done = all(o != "open" for o in outcomes.values()) and not unended_notifications(events)
            done = done and not running_check_ins(timers)
            backlogs = await consumer_backlogs(js)
            if done and not new and not any(n is None or n for n in backlogs.values()):
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= 3:
                    return
            else:
                quiet_since = None
            await asyncio.sleep(1)
        open_ones = [str(i) for i, o in outcomes.items() if o == "open"]
        report.problems.append(
            f"did not settle in {timeout:.0f} s: open incidents {open_ones}, "
            f"{len(unended_notifications(events))} SMS not yet sent, "
            f"{len(running_check_ins(check_in_timers(events)[0]))} check-ins still running, "
            f"consumer backlogs {backlogs}, "
            f"last events {[e.type for e in events[-5:]]}"
        )
    finally:
        await connection.close()


def stored_contract_events(build, settings) -> tuple[list[Envelope], int, int]:
    """Everything a stopped service stored, as the contract events its outbox publishes; and its positions."""
    from services.runtime.processor import OUTBOX_TRACKING_NAME

    with build(settings) as app:
        recorder = app.recorder
        envelopes: list[Envelope] = []
        last = 0
        while batch := recorder.select_notifications(start=last + 1, limit=500):
            for notification in batch:
                envelopes.extend(app.outbox(app.mapper.to_domain_event(notification)))
            last = batch[-1].id
        return envelopes, last, recorder.max_tracking_id(OUTBOX_TRACKING_NAME) or 0


async def sandbox_outbound(stack: ChaosStack) -> list[dict]:
    async with httpx.AsyncClient(timeout=30) as client:
        phones = (await client.get(f"{stack.sandbox}/sandbox/api/phones")).json()["phones"]
        messages: list[dict] = []
        for summary in phones:
            response = await client.get(f"{stack.sandbox}/sandbox/api/messages", params={"phone": summary["phone"]})
            messages += [m for m in response.json()["messages"] if m["direction"] != "inbound"]
        return messages


async def check(stack: ChaosStack, report: Report) -> None:
    """Every promise of the run, recorded as facts and problems. The services are stopped; nats is up."""
    from services.dispatcher.bootstrap import build as build_dispatcher
    from services.dispatcher.settings import DispatcherSettings
    from services.notifier.bootstrap import build as build_notifier
    from services.notifier.settings import NotifierSettings
    from services.projections.bootstrap import build_projections
    from services.projections.rebuild import replay_into
    from services.projections.settings import ProjectionsSettings
    from services.runtime.clock import SystemClock

    problems, facts = report.problems, report.facts
    if len(report.accepted) != report.plan.incidents:
        problems.append(f"only {len(report.accepted)} of {report.plan.incidents} reports were accepted")
    connection = await stack.connect()
    try:
        js = connection.jetstream()
        sequenced, unreadable = await read_all_events(js)
        events = [e for _, e in sequenced]
        by_id = Counter(e.id for e in events)
        on_stream = set(by_id)
        facts |= {"stream events": len(events), "unreadable (dead-lettered)": unreadable}
        if twice := [str(i) for i, n in by_id.items() if n > 1]:
            problems.append(f"{len(twice)} event ids appear twice on the stream: {twice[:5]}")

        # every accepted report recorded exactly once, and paged
        ids = {UUID(a["incident_id"]) for a in report.accepted.values()}
        position: dict[UUID, int] = {}
        first_of_incident: dict[UUID, str] = {}
        for seq, event in sequenced:
            position.setdefault(event.id, seq)
            if event.incident_id is not None:
                first_of_incident.setdefault(event.incident_id, event.type)
        # order: no event precedes its cause on the stream, and each incident's story starts with its report
        if backwards := [e for seq, e in sequenced if position.get(e.causation_id, 0) > seq]:
            problems.append(f"{len(backwards)} events precede their cause: {[e.type for e in backwards[:5]]}")
        if misordered := sorted(str(i) for i in ids if first_of_incident.get(i) != "incident.reported"):
            problems.append(f"incidents whose first event is not the report: {misordered}")
        reported = Counter(e.incident_id for e in events if e.type == "incident.reported")
        if lost := ids - set(reported):
            problems.append(f"accepted but never on the stream: {sorted(map(str, lost))}")
        if extra := set(reported) - ids:
            problems.append(f"incidents nobody reported: {sorted(map(str, extra))}")
        paged = {e.incident_id for e in events if e.type == "dispatch.offered"}
        texted = {e.incident_id for e in events if e.type == "sms.sent"}
        if unpaged := ids - paged:
            problems.append(f"never paged: {sorted(map(str, unpaged))}")
        if untexted := ids - texted:
            problems.append(f"no SMS sent for: {sorted(map(str, untexted))}")
        outcomes = Counter(incident_outcomes(events, ids).values())
        facts |= {"acknowledged": outcomes["acknowledged"], "escalated to the ladder's top": outcomes["ladder top"]}
        if outcomes["open"]:
            problems.append(f"{outcomes['open']} incidents neither acknowledged nor at the top of the ladder")

        # no check-in timer lost (each ended, or climbed every step) and none fired a step twice, early or out of order
        timers, broken = check_in_timers(events)
        runs = [run for each in timers.values() for run in each]
        facts |= {
            "check-ins started": sum(e.type == "checkin.started" for e in events),
            "check-in OKs / CLEARs": (
                sum(e.type == "checkin.confirmed" for e in events),
                sum(e.type == "checkin.ended" and e.data.reason == "clear" for e in events),
            ),
            "check-in steps fired": sum(len(run["steps"]) for run in runs),
            "check-ins that climbed to 911": sum(run["steps"] == list(CHECK_IN_STEPS) for run in runs),
        }
        problems.extend(broken[:10])
        if lost := running_check_ins(timers):
            problems.append(f"{len(lost)} check-in timers lost (neither ended nor every step fired): {lost[:5]}")
        if report.plan.check_ins and report.answers and not runs:
            problems.append("check-ins were on but none started")

        # every page request ended in an SMS or a recorded failure
        if unended := unended_notifications(events):
            problems.append(f"{len(unended)} notification requests never sent nor failed")
        facts |= {
            "notifications requested": sum(e.type == "notification.requested" for e in events),
            "sms.failed": sum(e.type == "sms.failed" for e in events),
        }

        # every reply the gateway took is on the stream; the sandbox saw no SMS the notifier did not report
        outbound = await sandbox_outbound(stack)
        sms = [m for m in outbound if m["kind"] == "sms"]
        reported_sids = {e.data.message_sid for e in events if e.type == "sms.sent"}
        orphans = [m for m in sms if m["sid"] not in reported_sids]
        bound = sum(n for victim, n in report.kill_counts().items() if victim.startswith("notifier"))
        facts |= {"SMS at the sandbox": len(sms), "duplicate SMS": len(orphans), "duplicate bound": bound}
        if len(orphans) > bound:
            problems.append(f"{len(orphans)} SMS were sent but never recorded: more than the bound {bound}")
        received = sum(e.type == "sms.received" for e in events)
        facts["replies on the stream"] = received
        if received < report.answers:
            problems.append(f"the gateway took {report.answers} replies but only {received} are on the stream")

        # no event lost: everything each service stored reached the stream
        for name, build, settings in (
            ("dispatcher", build_dispatcher, DispatcherSettings(_env_file=None, **service_settings(stack))),
            ("notifier", build_notifier, NotifierSettings(_env_file=None, **service_settings(stack))),
        ):
            stored, last, relayed = await asyncio.to_thread(stored_contract_events, build, settings)
            missing = [e for e in stored if e.id not in on_stream]
            facts[f"{name} events stored"] = len(stored)
            if missing or relayed != last:
                problems.append(
                    f"{name}: {len(missing)} stored events not on the stream (relayed to {relayed} of {last})"
                )

        # the projections equal a clean rebuild
        projections = ProjectionsSettings(_env_file=None, **service_settings(stack))
        with build_projections(projections) as live_models:
            live = await asyncio.to_thread(live_models.store.dump)
            live_position = live_models.processed_position()
        with build_projections(projections, SystemClock(), name="rebuilt") as rebuilt:
            result = await replay_into(js, rebuilt, reset=True)
            same = await asyncio.to_thread(rebuilt.store.dump) == live
        facts["projections == rebuild"] = same
        if not same or result.position != live_position:
            problems.append(f"projections differ from a clean rebuild (positions {live_position} / {result.position})")
    finally:
        await connection.close()


def service_settings(stack: ChaosStack) -> dict[str, Any]:
    return {
        "var_dir": stack.var_dir,
        "cipher_key": CIPHER_KEY,
        "nats_url": stack.nats_url,
        "database_url": stack.database_url,
    }


# ---- the run --------------------------------------------------------------------------------------------------


async def run_chaos(plan: ChaosPlan, workdir: Path, database_url: str = "") -> Report:
    """Run ``plan`` in ``workdir`` (SQLite stores, or PostgreSQL at ``database_url``).

    The returned report lists every problem found: none means every promise was kept.
    """
    report = Report(plan)
    started = time.monotonic()
    rng = random.Random(plan.seed)
    stack = ChaosStack(workdir, plan, database_url)
    restarting = asyncio.create_task(supervisor(stack, report, started))  # from the first start on
    try:
        await stack.start()
        await run_and_settle(stack, plan, report, rng, started)
        restarting.cancel()
        await asyncio.gather(restarting, return_exceptions=True)
        report.facts["services that exited by themselves"] = [name for _, name in report.crashes] or "none"
        await asyncio.to_thread(stack.stop_services)
        # the sandbox is read after the services stopped: restart it alone (it is Twilio, never a victim)
        stack.start_process("sms-sandbox")
        await asyncio.to_thread(wait_healthy, f"{stack.sandbox}/healthz", 30)
        await check(stack, report)
    finally:
        restarting.cancel()
        await asyncio.gather(restarting, return_exceptions=True)
        await asyncio.to_thread(stack.close)
    report.seconds = time.monotonic() - started
    return report


async def run_and_settle(
    stack: ChaosStack, plan: ChaosPlan, report: Report, rng: random.Random, started: float
) -> None:
    """Reports, answers and kills at once; then, the kills over, wait until everything has settled."""
    monkey = asyncio.create_task(chaos_monkey(stack, plan, rng, report, started))
    answering = asyncio.create_task(responders(stack, plan, report))
    try:
        try:
            await reporter(stack, plan, report)
            await asyncio.sleep(plan.chaos_tail)
        finally:  # the monkey stops first: it never leaves a victim dead
            monkey.cancel()
            await asyncio.gather(monkey, return_exceptions=True)
        await settle(stack, report, plan.settle_timeout)
    finally:
        answering.cancel()
        await asyncio.gather(answering, return_exceptions=True)


def describe(report: Report) -> str:
    plan = report.plan
    kills = report.kill_counts()
    lines = [
        f"chaos run: {plan.incidents} reports over {plan.report_seconds:.0f} s, {plan.responders} responders, "
        f"seed {plan.seed}, ack timeout {plan.ack_timeout_seconds} s per step ({report.seconds:.0f} s in all)",
        f"tried: {len(report.kills)} SIGKILLs ({', '.join(f'{v} {n}' for v, n in sorted(kills.items()))}); "
        f"{report.post_attempts} report posts for {len(report.accepted)} accepted; "
        f"{report.answers} replies taken ({report.answer_retries} needed a retry)",
        "found:",
        *(f"  {name:<32} {value}" for name, value in report.facts.items()),
        "problems:" if report.problems else "problems: none",
        *(f"  - {p}" for p in report.problems),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=ChaosPlan.incidents)
    parser.add_argument("--responders", type=int, default=ChaosPlan.responders)
    parser.add_argument("--report-seconds", type=float, default=ChaosPlan.report_seconds)
    parser.add_argument("--seed", type=int, default=ChaosPlan.seed)
    parser.add_argument("--partitions", type=int, default=ChaosPlan.partitions)
    parser.add_argument("--small", action="store_true", help="the plan make test runs")
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it (logs, stores)")
    args = parser.parse_args(argv)
    plan = SMALL if args.small else ChaosPlan()
    plan = replace(plan, seed=args.seed, partitions=args.partitions)
    if not args.small:
        plan = replace(plan, incidents=args.incidents, responders=args.responders, report_seconds=args.report_seconds)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(run_chaos(plan, args.keep))
    else:
        with TemporaryDirectory(prefix="chaos-") as workdir:
            report = asyncio.run(run_chaos(plan, Path(workdir)))
    print(describe(report))
    print(json.dumps({"problems": len(report.problems), "kills": len(report.kills)}))
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
