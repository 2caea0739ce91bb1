"""`make run` is as careful as the clustered deployment: var/ is private to the user (also what an older run left
there), the embedded nats-server refuses clients without the launcher's user and password, and when it is
SIGKILLed the launcher starts it again on the same port and store, and the services reconnect by themselves."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import nats
import pytest

from tests.e2e.test_walking_skeleton import CLINICIAN, Ports, Stack, free_port, start_stack, stop_process
from tests.support.stream import eventually

pytestmark = pytest.mark.e2e

REPORT = {
    "kind": "overdose",
    "location": {"lat": 39.7431, "lon": -104.9876, "address": "5th St & Main"},
    "reporter": {"channel": "hotline"},
    "details": {"responsive": False, "ems_called": False},
}


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A var/ as an older `make run` left it: a 0755 directory holding 0644 files."""
    var = tmp_path_factory.mktemp("embedded") / "var"
    (var / "logs").mkdir(parents=True)
    (var / "logs" / "old.log").write_text("")
    (var / "old-store.sqlite").write_bytes(b"generated")
    for path, mode in ((var, 0o755), (var / "logs", 0o755), (var / "logs" / "old.log", 0o644)):
        path.chmod(mode)
    (var / "old-store.sqlite").chmod(0o644)
    return var


@pytest.fixture(scope="module")
def stack(var_dir: Path) -> Iterator[Stack]:
    running = start_stack(var_dir, Ports(free_port(), free_port(), free_port(), free_port()))
    yield running
    stop_process(running.process)


def nats_server_pid(launcher_pid: int) -> int:
    """The launcher's nats-server child (Linux: /proc lists each thread's children)."""
    tasks = Path(f"/proc/{launcher_pid}/task")
    children = {int(pid) for task in tasks.iterdir() for pid in (task / "children").read_text().split()}
    [pid] = [pid for pid in children if Path(f"/proc/{pid}/comm").read_text().strip() == "nats-server"]
    return pid


def without_password(url: str) -> str:
    return "nats://" + url.rsplit("@", 1)[1]


def test_var_and_everything_in_it_are_private_to_the_user(stack: Stack, var_dir: Path) -> None:
    shared = [
        f"{path.relative_to(var_dir)} {stat.filemode(path.stat().st_mode)}"
        for path in [var_dir, *var_dir.rglob("*")]
        if not path.is_symlink() and path.exists() and path.stat().st_mode & 0o077
    ]
    assert shared == []
    made_by_the_stack = {"nats.password", "projections.sqlite", "nats-server.conf", "logs/intake-gateway.log"}
    assert {str(p.relative_to(var_dir)) for p in var_dir.rglob("*")} >= made_by_the_stack
    assert any((var_dir / "nats").rglob("*.blk")) or any((var_dir / "nats").rglob("*.inf"))  # stream files too


async def test_the_nats_server_refuses_clients_without_the_password(stack: Stack) -> None:
    open_url = without_password(stack.nats_url)
    for url in (open_url, open_url.replace("nats://", "nats://crisis:not-the-password@")):
        with pytest.raises(Exception) as refused:  # noqa: PT011 - nats-py raises a different error per version
            await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5)
        assert "authorization" in repr(refused.value).lower(), repr(refused.value)
    connection = await nats.connect(stack.nats_url, allow_reconnect=False, connect_timeout=5)
    try:
        assert (await connection.jetstream().stream_info("CRISIS")).config.name == "CRISIS"
    finally:
        await connection.close()
    assert stack.nats_url not in "".join(stack.output)  # the banner shows the URL without the password


async def test_a_killed_nats_server_is_restarted_and_the_services_reconnect(stack: Stack, var_dir: Path) -> None:
    tokens = dict(
        line.split()[:2] for line in stack.banner.splitlines() if line.startswith(("  intake ", "  director "))
    )
    killed = nats_server_pid(stack.process.pid)
    os.kill(killed, signal.SIGKILL)
    stack.wait_printed(lambda line: line.startswith("nats-server exited with -9; restarting"))
    back = stack.wait_printed(lambda line: line.startswith("nats-server is back on"))
    assert without_password(stack.nats_url) in back
    assert nats_server_pid(stack.process.pid) != killed

    # a report taken after the restart reaches the dispatcher, the notifier and the SMS sandbox: every service on
    # the path reconnected (the gateway answers 503 until it has; the client retries with its Idempotency-Key)
    headers = {"Authorization": f"Bearer {tokens['intake']}", "Idempotency-Key": f"after-restart-{uuid4()}"}
    async with httpx.AsyncClient(timeout=30) as client:

        async def answered() -> httpx.Response | None:  # the gateway's NATS client reconnects on its own schedule
            response = await client.post(f"{stack.gateway}/v1/incidents", json=REPORT, headers=headers)
            return None if response.status_code in (503, 504) else response

        accepted = await eventually(answered, "the gateway to answer other than 503/504", timeout=60, interval=0.2)
        assert accepted.status_code == 201, accepted.text
        code = accepted.json()["short_code"]
        page = await client.get(
            f"{stack.sandbox}/sandbox/api/wait", params={"phone": CLINICIAN, "count": 1, "timeout": 60}
        )
    assert not page.json()["timed_out"]
    assert any(f"Y {code}" in message["body"] for message in page.json()["messages"])
    # the reconnections were logged, without the password the services connect with
    password = (var_dir / "nats.password").read_text().strip()
    logs = {path.name: path.read_text() for path in (var_dir / "logs").iterdir()}
    assert [name for name, text in logs.items() if password in text] == []
    assert logs["nats.log"].count("Server is ready") >= 2
