"""Restart of the projections service and the intake gateway, by history size (issue 16: as bench/restart.py does
for the dispatcher: flat within 2x from 1k to 100k closed incidents, and under 2 s at 100k).

**Projections** (``python -m services.projections``): from just before the process starts to (a) its ``/readyz``
answering 200 and (b) its first due deadline firing: the follow-up desk's overdue watch publishing
``followup.overdue`` for the one open task, due long ago. Its five stores (read models; the follow-up, referral,
person and caring desks) hold N closed incidents (bench/restart_history.py: a template through the real code,
copied in bulk), built once and cached under ``bench/.cache``. Each run works on a copy of them, on a fresh
nats-server whose ``CRISIS`` stream is positioned where the stores are (purged up to their position: the next
message gets the next sequence), and whose durables already exist there: an untimed start of the service on an
empty var dir makes them first, as an earlier run of the service would have. So a start reads from the stream only
what comes after its position (nothing), as a restart does.

**Gateway** (``python -m services.intake_gateway``): from just before the process starts to its first
``POST /v1/incidents`` answered 201 (posted every 20 ms until one is) and to its ``/readyz`` 200. Its state is in
JetStream: N closed incidents in ``intake_incidents`` written through its own adapter as its follower would have
(opened, two paged, completed), each report's Idempotency-Key answered (``idempotency_keys``) and three inbound SMS
remembered (``twilio_webhooks_recorded``), all within their 30-day retention (the worst case), the stream positioned
after that history and the follower's durable at its end (an untimed start made it). Built once per size into a
nats-server store, cached under ``bench/.cache``; each run starts a nats-server on a copy of it.

Sizes and the floor (size 0: the same start with no history; for the projections, the roster and the open task)
run round robin, so a busy moment on the machine hits them alike. Stores are SQLite, without the event cipher.

Run: .venv/bin/python -m bench.restart_services [--sizes 1000,10000,100000] [--runs 3]
[--services projections,gateway] [--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import nats

from bench.restart_gateway import REPORT, free_port, stop
from bench.restart_history import TEMPLATE, build_projection_stores
from services.intake_gateway.adapters.incident_states_kv import INCIDENTS_BUCKET, KvIncidentStates
from services.intake_gateway.adapters.recorded_webhooks_kv import KvRecordedWebhooks
from services.runtime.clock import SystemClock
from services.runtime.credentials import ensure_demo_credentials
from services.runtime.idempotency_kv import KvIdempotencyStore, StoredAnswer
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.stream import STREAM_NAME, ensure_stream

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / ".cache"
BUILD_FORMAT = 1  # bump when a built history changes shape: older cached ones are rebuilt
PROJECTIONS_DURABLES = ("projections", "followups", "referrals", "persons", "caring")
GATEWAY_EVENTS_PER_INCIDENT = 22  # the stream position after the history: as many events as the projections'
RETENTION_DAYS = 30.0  # the gateway's defaults for idempotency keys and the webhook ledger


@dataclass
class Start:
    ready: float  # /readyz 200
    first: float  # projections: followup.overdue published; gateway: the first 201
    first_event: str = ""


def cache_dir(cache: Path, service: str, size: int) -> Path:
    return cache / f"restart-services-v{BUILD_FORMAT}-{service}-{size}"


async def cached(cache: Path, service: str, size: int, rebuild: bool, build) -> tuple[Path, dict]:  # noqa: ANN001
    """(the built history's directory, what was measured building it), built now unless cached."""
    directory = cache_dir(cache, service, size)
    manifest = directory / "built.json"
    if rebuild or not manifest.exists():
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        (cache / ".gitignore").write_text("*\n")
        print(f"building the {service} history with {size:,} closed incidents in {directory} ...", flush=True)
        began = time.perf_counter()
        built = build(directory / "data", size)
        if asyncio.iscoroutine(built):
            built = await built
        built["build_seconds"] = round(time.perf_counter() - began, 1)
        manifest.write_text(json.dumps(built, indent=2))
    return directory / "data", json.loads(manifest.read_text())


def megabytes(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 1e6


# ---- processes ------------------------------------------------------------------------------------------------


def service_env(nats_url: str, var_dir: Path, credentials: Path, port: int) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")} | {
        "CRISIS_NATS_URL": nats_url,
        "CRISIS_VAR_DIR": str(var_dir),
        "CRISIS_CREDENTIALS_FILE": str(credentials),
        "CRISIS_PROJECTIONS_PORT": str(port),
        "CRISIS_GATEWAY_PORT": str(port),
        "PYTHONPATH": str(REPO),
    }


def spawn(module: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "a"),  # noqa: SIM115 - closed with the process
    )


async def until_ready(process: subprocess.Popen, port: int, log: Path) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the service exited: {log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return time.perf_counter()
            await asyncio.sleep(0.02)


def copy_tree(source: Path, into: Path) -> None:
    """A copy of a built history, on disk before the start is timed (else writing the copy back, up to 2.7 GB,
    competes with the start: measured 0.3 s at 100,000 incidents)."""
    shutil.rmtree(into, ignore_errors=True)
    shutil.copytree(source, into)
    os.sync()


# ---- projections ----------------------------------------------------------------------------------------------


def build_projections_history(directory: Path, size: int) -> dict:
    return build_projection_stores(directory, size)


async def projections_start(scratch: Path, var_dir: Path, position: int, credentials: Path) -> Start:
    """Start the projections on a copy of ``var_dir`` (stores at stream ``position``); seconds to /readyz 200 and
    to ``followup.overdue`` published."""
    run = scratch / f"run-{uuid4().hex[:8]}"
    copy_tree(var_dir, run / "var")
    server = EmbeddedNatsServer(run / "nats")
    server.start()
    port, log = free_port(), run / "projections.log"
    try:
        connection = await nats.connect(server.url)
        js = connection.jetstream()
        await ensure_stream(js)
        await js.purge_stream(STREAM_NAME, seq=position + 1)  # the next message is the stores' next sequence
        # an earlier start made the durables: an untimed start on an empty var dir makes them at the stream's end
        warm = spawn("services.projections", service_env(server.url, run / "warm", credentials, port), log)
        await until_ready(warm, port, log)
        stop(warm)
        for durable in PROJECTIONS_DURABLES:
            info = await js.consumer_info(STREAM_NAME, durable)
            assert info.num_pending == 0 and info.num_ack_pending == 0, (durable, info)
        overdue: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        published: list[str] = []

        async def seen(message) -> None:  # noqa: ANN001
            published.append(json.loads(message.data).get("type", message.subject))
            if published[-1] == "followup.overdue" and not overdue.done():
                overdue.set_result(time.perf_counter())

        await connection.subscribe("crisis.>", cb=seen)
        await connection.flush()
        began = time.perf_counter()
        process = spawn("services.projections", service_env(server.url, run / "var", credentials, port), log)
        try:
            ready = await until_ready(process, port, log)
            fired = await asyncio.wait_for(overdue, timeout=3600)
        finally:
            stop(process)
            await connection.close()
    finally:
        server.stop()
    shutil.rmtree(run, ignore_errors=True)
    return Start(ready - began, fired - began, published[0])


# ---- gateway --------------------------------------------------------------------------------------------------


async def build_gateway_history(directory: Path, size: int) -> dict:
    server = EmbeddedNatsServer(directory)
    server.start()
    built: dict = {"closed": size}
    try:
        connection = await nats.connect(server.url)
        js = connection.jetstream()
        await ensure_stream(js)
        states = await KvIncidentStates.open(js, replicas=1)
        keys = await KvIdempotencyStore.open(js, SystemClock(), retention_days=RETENTION_DAYS, replicas=1)
        webhooks = await KvRecordedWebhooks.open(js, retention_days=RETENTION_DAYS, replicas=1)
        now = datetime.now(UTC)

        async def one() -> None:
            incident_id, at = uuid4(), now - timedelta(days=1)
            await states.opened(incident_id, "overdose", at, "intake-bench")
            for _ in range(2):
                await states.paged(incident_id, uuid4())
            await states.close(incident_id, "completed", at + timedelta(hours=1))
            scope, fingerprint = f"intake|POST|/v1/incidents|{uuid4()}", uuid4().hex
            claim = await keys.begin(scope, fingerprint)
            answer = StoredAnswer(201, {"incident_id": str(incident_id), "short_code": "4821"}, {})
            await keys.complete(scope, fingerprint, answer, claim)
            for _ in range(3):
                await webhooks.remember(f"sms.SM{uuid4().hex}")

        began = time.perf_counter()
        for start in range(0, size, 200):
            await asyncio.gather(*(one() for _ in range(min(200, size - start))))
        built["write_seconds"] = round(time.perf_counter() - began, 1)
        built["stream_position"] = size * GATEWAY_EVENTS_PER_INCIDENT
        await js.purge_stream(STREAM_NAME, seq=built["stream_position"] + 1)
        built["incident_keys"] = (await js.stream_info(f"KV_{INCIDENTS_BUCKET}")).state.messages
        with tempfile.TemporaryDirectory(prefix="restart-gateway-warm-") as warm_dir:
            credentials = Path(warm_dir) / "credentials.json"
            ensure_demo_credentials(credentials)
            port, log = free_port(), Path(warm_dir) / "gateway.log"
            warm = spawn("services.intake_gateway", service_env(server.url, Path(warm_dir), credentials, port), log)
            await until_ready(warm, port, log)  # its follower's durable, at the stream's end
            stop(warm)
        await connection.close()
    finally:
        server.stop()
    return built


async def gateway_start(scratch: Path, store: Path, token: str, credentials: Path) -> Start:
    """Start the gateway against a nats-server on a copy of ``store``; seconds to /readyz 200 and the first 201."""
    run = scratch / f"run-{uuid4().hex[:8]}"
    copy_tree(store, run / "nats")
    server = EmbeddedNatsServer(run / "nats")
    server.start()
    port, log = free_port(), run / "gateway.log"
    ready = created = None
    try:
        began = time.perf_counter()
        process = spawn("services.intake_gateway", service_env(server.url, run, credentials, port), log)
        try:
            async with httpx.AsyncClient(timeout=5, base_url=f"http://127.0.0.1:{port}") as client:
                while ready is None or created is None:
                    if process.poll() is not None:
                        raise SystemExit(f"the gateway exited: {log.read_text()[-3000:]}")
                    with contextlib.suppress(httpx.TransportError):
                        if ready is None and (await client.get("/readyz")).status_code == 200:
                            ready = time.perf_counter()
                        if created is None:
                            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid4().hex}
                            if (await client.post("/v1/incidents", json=REPORT, headers=headers)).status_code == 201:
                                created = time.perf_counter()
                    await asyncio.sleep(0.02)
        finally:
            stop(process)
    finally:
        server.stop()
    shutil.rmtree(run, ignore_errors=True)
    return Start(ready - began, created - began, "201")


# ---- the run --------------------------------------------------------------------------------------------------


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s (runs {', '.join(f'{v:.2f}' for v in values)})"


def report(service: str, what: str, sizes: list[int], results: dict, histories: dict) -> None:
    floor = results[0]
    print()
    print(f"{service}: start to {what} ({os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f})")
    print(
        f"floor (no history, same run): /readyz 200 {summary([s.ready for s in floor])}; "
        f"{what} {summary([s.first for s in floor])}"
    )
    if service == "projections":
        firsts = sorted({s.first_event for starts in results.values() for s in starts})
        print(f"first event the started process published: {', '.join(firsts)}")
    print()
    print(f"| closed incidents | history MB | /readyz 200: median | {what}: median | x floor |")
    print("|---:|---:|---:|---:|---:|")
    for size in sizes:
        starts = results[size]
        first = statistics.median(s.first for s in starts)
        print(
            f"| {size:,} | {megabytes(histories[size]):.0f} | {summary([s.ready for s in starts])} | "
            f"{summary([s.first for s in starts])} | {first / statistics.median(s.first for s in floor):.2f} |"
        )
    for label, pick in (("/readyz 200", lambda s: s.ready), (what, lambda s: s.first)):
        medians = [statistics.median(pick(s) for s in results[size]) for size in sizes]
        print(
            f"{label}: largest / smallest history {max(medians) / min(medians):.2f}x (target: within 2x); "
            f"at {sizes[-1]:,}: {medians[-1]:.2f} s (target: under 2 s)"
        )


async def measure(service: str, sizes: list[int], args: argparse.Namespace, scratch: Path) -> None:
    cache = Path(args.cache).resolve()
    build = build_projections_history if service == "projections" else build_gateway_history
    histories, built = {}, {}
    for size in [0, *sizes]:
        histories[size], built[size] = await cached(cache, service, size, args.rebuild, build)
        print(f"  {service} history {size:,}: {json.dumps(built[size])}", flush=True)
    credentials = scratch / f"{service}-credentials.json"
    token = ensure_demo_credentials(credentials)["intake"]
    results: dict[int, list[Start]] = {size: [] for size in [0, *sizes]}
    for run in range(1, args.runs + 1):
        for size in [0, *sizes]:
            if service == "projections":
                start = await projections_start(scratch, histories[size], built[size]["stream_position"], credentials)
            else:
                start = await gateway_start(scratch, histories[size], token, credentials)
            results[size].append(start)
        print(
            f"  {service} run {run}: "
            + ", ".join(f"{size:,}: {r[-1].ready:.2f} / {r[-1].first:.2f} s" for size, r in results.items()),
            flush=True,
        )
    what = "followup.overdue published" if service == "projections" else "first POST /v1/incidents 201"
    report(service, what, sizes, results, histories)


async def main(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(size % TEMPLATE for size in sizes):
        raise SystemExit(f"sizes must be multiples of {TEMPLATE}")
    with tempfile.TemporaryDirectory(prefix="restart-services-") as scratch_dir:
        for service in args.services.split(","):
            await measure(service, sizes, args, Path(scratch_dir))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="closed incidents of history, comma separated")
    parser.add_argument("--runs", type=int, default=3, help="starts timed per size")
    parser.add_argument("--services", default="projections,gateway", help="projections, gateway or both")
    parser.add_argument("--cache", default=str(CACHE), help="where built histories are kept")
    parser.add_argument("--rebuild", action="store_true", help="build the histories again instead of the cached ones")
    asyncio.run(main(parser.parse_args()))
