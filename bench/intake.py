"""Intake benchmark: accepted reports per second and latency, beside the raw JetStream publish rate.

Starts a nats-server and the gateway as its own process (``python -m services.intake_gateway``), exactly as
``make run`` does, or uses a running one (``--url``, ``--token``, ``--nats-url``). Then:

1. POSTs ``--count`` reports to ``/v1/incidents`` with ``--concurrency`` clients (a mix of the three kinds at
   random points of the demo city, so triage, zones and the duplicate index all do their work), and counts
   the 201s and each request's latency;
2. in the same run, publishes the same number of ``incident.reported`` events straight to JetStream with the
   same concurrency (acked, with Nats-Msg-Id), the ceiling the gateway sits on;
3. prints accepted reports/s, p50/p99 latency, the raw publish rate and their ratio, the floor (25% of the raw
   rate), and where the time goes: CPU per accepted report of the gateway, of nats-server and of this client
   (the HTTP load itself), against the cores the machine has.

Run: .venv/bin/python -m bench.intake [--count 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

import httpx
import nats

from bench.e2e import cpu_seconds
from services.contract.events import (
    CrisisKind,
    IncidentReported,
    IncidentReportedData,
    Location,
    OverdoseDetails,
    Priority,
    Reporter,
    new_event,
)
from services.runtime.clock import SystemClock
from services.runtime.credentials import AccessRole, issue_credential
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.stream import ensure_stream, publish_event

ROOT = Path(__file__).resolve().parents[1]
CENTRAL = (39.715, 39.765, -105.030, -104.940)  # the demo gazetteer's central zone


def random_report(rng: random.Random) -> dict:
    lat = rng.uniform(CENTRAL[0], CENTRAL[1])
    lon = rng.uniform(CENTRAL[2], CENTRAL[3])
    kind = rng.choice(["overdose", "overdose", "withdrawal", "self_harm_risk"])
    details = {
        "overdose": {"ems_called": rng.random() < 0.5, "responsive": False, "naloxone_doses_given": 1},
        "withdrawal": {"substance": "opioid", "cows_score": rng.randint(0, 48)},
        "self_harm_risk": {"q1": True, "q2": False, "q6_ever": False},
    }[kind]
    return {
        "kind": kind,
        "location": {"lat": lat, "lon": lon},
        "reporter": {"channel": "hotline"},
        "details": details,
    }


async def post_reports(url: str, token: str, count: int, concurrency: int) -> tuple[int, list[float], float]:
    rng = random.Random(7)
    bodies = [random_report(rng) for _ in range(count)]
    latencies: list[float] = []
    accepted = 0
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal accepted
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post("/v1/incidents", json=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code == 201:
                    accepted += 1
                else:
                    print(f"unexpected {response.status_code}: {response.text[:200]}", file=sys.stderr)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return accepted, latencies, elapsed


def sample_event() -> IncidentReported:
    incident_id = uuid4()
    data = IncidentReportedData(
        incident_id=incident_id,
        short_code="4821",
        kind=CrisisKind.OVERDOSE,
        priority=Priority.P1,
        needs=["naloxone_carrier", "ems_now"],
        guidance=["Call 911 now.", "Stay with the person. A responder is being paged."],
        location=Location(lat=39.7431, lon=-104.9876, resolved_from="coordinates"),
        reporter=Reporter(channel="hotline"),
        overdose=OverdoseDetails(responsive=False, naloxone_doses_given=1),
        zone="central",
    )
    return new_event(  # type: ignore[return-value]
        IncidentReported,
        data,
        event_id=uuid4(),
        occurred_at=SystemClock().now(),
        producer="bench",
        incident_id=incident_id,
    )


async def raw_publish_rate(nats_url: str, count: int, concurrency: int) -> float:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        await ensure_stream(js)
        events = [sample_event() for _ in range(count)]
        queue: asyncio.Queue = asyncio.Queue()
        for event in events:
            queue.put_nowait(event)

        async def worker() -> None:
            while not queue.empty():
                await publish_event(js, queue.get_nowait())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)
    finally:
        await connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the gateway exited with {process.returncode}")
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)  # polling a child process we do not control
    raise RuntimeError("the gateway did not become healthy")


FLOOR = 0.25  # issue 16: accepted reports/s through the full HTTP path >= 25% of the raw publish rate


def report(count: int, concurrency: int, accepted: int, latencies: list[float], elapsed: float, raw: float) -> None:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    rate = accepted / elapsed
    print(f"reports posted: {count}, concurrency {concurrency}, accepted (201): {accepted}")
    print(f"accepted reports/s:                      {rate:8.0f}")
    print(f"latency p50 / p99:                       {p50:8.1f} ms / {p99:.1f} ms")
    print(f"raw JetStream publish (acked, same run): {raw:8.0f} events/s")
    print(f"accepted reports / raw publish ratio:    {rate / raw:8.3f} (floor {FLOOR:.2f})")


def report_cpu(accepted: int, elapsed: float, used: dict[str, float]) -> None:
    """CPU per accepted report, per process, during the POST phase: where the time goes."""
    print(f"CPU per accepted report during the POSTs (this machine: {os.cpu_count()} cores, load {load()}):")
    for name, seconds in sorted(used.items(), key=lambda item: -item[1]):
        print(f"  {name:<28} {seconds / accepted * 1000:6.2f} ms  ({seconds / elapsed:4.2f} cores busy)")


def load() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


async def run_against(
    url: str, token: str, nats_url: str, count: int, concurrency: int, pids: dict[int, str] | None = None
) -> None:
    warm = await post_reports(url, token, min(50, count), min(4, concurrency))
    if warm[0] == 0:
        raise RuntimeError("the gateway accepted no warm-up report: check the URL and the token")
    before = cpu_seconds(pids or {})
    accepted, latencies, elapsed = await post_reports(url, token, count, concurrency)
    after = cpu_seconds(pids or {})
    raw = await raw_publish_rate(nats_url, count, concurrency)
    report(count, concurrency, accepted, latencies, elapsed, raw)
    report_cpu(accepted, elapsed, {name: after[name] - before.get(name, 0.0) for name in after})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--url", help="a running gateway (default: start one)")
    parser.add_argument("--token", help="a bearer token of the intake role, with --url")
    parser.add_argument("--nats-url", default=os.environ.get("CRISIS_NATS_URL"), help="with --url")
    args = parser.parse_args()
    if args.url:
        if not (args.token and args.nats_url):
            parser.error("--url needs --token and --nats-url (or CRISIS_NATS_URL)")
        await run_against(args.url, args.token, args.nats_url, args.count, args.concurrency)
        return
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedNatsServer(Path(scratch) / "nats")
        server.start()
        credentials = Path(scratch) / "credentials.json"
        token = issue_credential(credentials, "bench", AccessRole.INTAKE)
        port = free_port()
        env = os.environ | {
            "CRISIS_NATS_URL": server.url,
            "CRISIS_GATEWAY_PORT": str(port),
            "CRISIS_VAR_DIR": scratch,
            "CRISIS_CREDENTIALS_FILE": str(credentials),
            "CRISIS_GAZETTEER_FILE": str(ROOT / "deploy" / "demo" / "gazetteer.json"),
        }
        gateway = subprocess.Popen(
            [sys.executable, "-m", "services.intake_gateway"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            await wait_healthy(url, gateway)
            pids = {gateway.pid: "gateway", server._process.pid: "nats-server"}  # type: ignore[union-attr]
            await run_against(url, token, server.url, args.count, args.concurrency, pids)
        finally:
            gateway.terminate()
            try:
                gateway.wait(15)
            except subprocess.TimeoutExpired:
                gateway.kill()
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
