"""Restart of the intake gateway: from starting its process to its first report answered 201, by history size.

The gateway keeps its state in JetStream KV: ``intake_incidents`` (every incident's state and who may see it, written
by its incident-state follower) and the last day's reports (``RECENT_TTL_SECONDS``: older ones expire, so they are no
history). For each size (``--sizes``, closed incidents) this benchmark, on a fresh nats-server:

1. writes that many closed incidents into ``intake_incidents`` through the gateway's own adapter
   (``KvIncidentStates.opened`` then ``close``), as its follower would have;
2. for each of ``--runs`` runs, starts ``python -m services.intake_gateway`` and times from just before the process
   starts to the first ``POST /v1/incidents`` answered 201 (posted every 20 ms until one is), then stops it.

The stream holds no history: a restarted gateway's follower resumes at its durable's position, so what the stream
held before that costs a start nothing. The floor printed in the same run is the same start with no history (size
0). The projections' start is not measured here.

Run: .venv/bin/python -m bench.restart_gateway [--sizes 1000,10000,100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
import nats

from services.intake_gateway.adapters.incident_states_kv import INCIDENTS_BUCKET, KvIncidentStates
from services.runtime.credentials import ensure_demo_credentials
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.stream import ensure_stream

REPO = Path(__file__).resolve().parent.parent
REPORT = {
    "kind": "overdose",
    "location": {"lat": 39.7431, "lon": -104.9876, "address": "5th St & Main"},
    "reporter": {"channel": "hotline"},
    "details": {"responsive": False, "ems_called": True},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL if the process has not ended a minute later."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def write_history(js, count: int, written: int) -> int:  # noqa: ANN001
    """Closed incidents in the gateway's bucket, up to ``count`` in all; returns how many there are."""
    states = await KvIncidentStates.open(js, replicas=1)
    now = datetime.now(UTC)
    pending = []
    for _ in range(count - written):
        incident_id = uuid4()

        async def one(incident_id=incident_id) -> None:  # noqa: ANN001
            await states.opened(incident_id, "overdose", now, "intake-bench")
            await states.close(incident_id, "completed", now)

        pending.append(one())
        if len(pending) == 200:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    return max(count, written)


async def time_start(server: EmbeddedNatsServer, scratch: Path, token: str, credentials: Path) -> float:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")} | {
        "CRISIS_NATS_URL": server.url,
        "CRISIS_VAR_DIR": str(scratch),
        "CRISIS_CREDENTIALS_FILE": str(credentials),
        "CRISIS_GATEWAY_PORT": str(port),
        "PYTHONPATH": str(REPO),
    }
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.intake_gateway"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(scratch / "gateway.log", "a"),  # noqa: SIM115 - closed with the process
    )
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"the gateway exited: {(scratch / 'gateway.log').read_text()[-2000:]}")
                try:
                    answer = await client.post(
                        f"http://127.0.0.1:{port}/v1/incidents",
                        json=REPORT,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    if answer.status_code == 201:
                        return time.perf_counter() - began
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.02)
    finally:
        stop(process)


async def main(args: argparse.Namespace) -> None:
    sizes = [0, *(int(s) for s in args.sizes.split(","))]
    results: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="restart-gateway-") as scratch_dir:
        scratch = Path(scratch_dir)
        credentials = scratch / "credentials.json"
        token = ensure_demo_credentials(credentials)["intake"]
        server = EmbeddedNatsServer(scratch / "nats")
        server.start()
        try:
            connection = await nats.connect(server.url)
            js = connection.jetstream()
            await ensure_stream(js)
            written = 0
            for size in sizes:  # ascending: each size adds to the history already written
                began = time.perf_counter()
                written = await write_history(js, size, written)
                built = time.perf_counter() - began
                keys = (await js.stream_info(f"KV_{INCIDENTS_BUCKET}")).state.messages if size else 0
                assert keys >= size, f"{keys} incidents in the bucket, {size} wanted"  # + the reports timed
                results[size] = [await time_start(server, scratch, token, credentials) for _ in range(args.runs)]
                runs = ", ".join(f"{s:.2f}" for s in results[size])
                print(
                    f"{size:>7,} closed incidents in intake_incidents ({keys:,} keys, written in {built:.0f} s):"
                    f" start to first 201"
                    f" median {statistics.median(results[size]):.2f} s (runs {runs})",
                    flush=True,
                )
            await connection.close()
        finally:
            server.stop()
    floor = statistics.median(results[0])
    largest = statistics.median(results[sizes[-1]])
    spread = max(statistics.median(results[s]) for s in sizes[1:]) / min(
        statistics.median(results[s]) for s in sizes[1:]
    )
    print(
        f"floor (no history, same run): {floor:.2f} s; largest history {largest:.2f} s;"
        f" spread across sizes x{spread:.2f}"
    )


def arguments(doc: str | None = __doc__, sizes: str = "1000,10000,100000") -> argparse.Namespace:
    """``--sizes`` and ``--runs``, as the restart benchmarks take them (``doc``: the benchmark's own help)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=sizes)
    parser.add_argument("--runs", type=int, default=3)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(arguments()))
