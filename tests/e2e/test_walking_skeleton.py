"""The whole slice, with every service a separate process started exactly as `make run` starts them.

report -> dispatcher pages the nearest on-call responder -> notifier sends through the Twilio SDK to the
SMS sandbox -> the responder replies "Y <code>" in the sandbox -> signed webhook to the gateway ->
dispatcher records the acknowledgement -> projections serve the timeline. Every event seen on the
stream is validated against its JSON Schema. Then Ctrl-C stops everything, and a second start resumes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jsonschema
import nats
import pytest

from services.contract.schemagen import schema_path
from tests.support.stream import SubjectWatch, eventually

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CLINICIAN = "+15550100001"  # the demo roster's on-call clinician nearest the scene
PHI = re.compile(r"overdose|withdraw|suicid|self.?harm|opioid|fentanyl|naloxone|narcan", re.I)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    process: subprocess.Popen
    nats_url: str
    gateway: str
    projections: str
    sandbox: str
    banner: str
    output: list[str]  # every line the launcher printed so far, the banner first
    reader: threading.Thread
    printed: threading.Condition = field(default_factory=threading.Condition)  # notified for each line

    def wait_printed(self, predicate: Callable[[str], bool], timeout: float = 60) -> str:
        """The first line the launcher printed (or prints within ``timeout``) that ``predicate`` accepts."""

        def found() -> str | None:
            return next((line for line in self.output if predicate(line)), None)

        with self.printed:
            if not self.printed.wait_for(lambda: found() is not None or not self.reader.is_alive(), timeout):
                raise AssertionError("the launcher did not print it:\n" + "".join(self.output))
        line = found()
        assert line is not None, "the launcher exited:\n" + "".join(self.output)
        return line


@dataclass
class Ports:
    nats: int
    gateway: int
    projections: int
    sandbox: int


def start_stack(var_dir: Path, ports: Ports, extra_env: dict[str, str] | None = None) -> Stack:
    """`make run`'s launcher on ``ports``, returned once its banner says every service is healthy."""
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")}
        | (extra_env or {})
        | {
            "CRISIS_VAR_DIR": str(var_dir),
            "CRISIS_NATS_PORT": str(ports.nats),
            "CRISIS_GATEWAY_PORT": str(ports.gateway),
            "CRISIS_PROJECTIONS_PORT": str(ports.projections),
            "CRISIS_SANDBOX_PORT": str(ports.sandbox),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "services.runtime.launcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()
    printed = threading.Condition()

    def read_output() -> None:  # the launcher prints its banner once every service is healthy; keep every line
        assert process.stdout is not None
        for line in process.stdout:
            with printed:
                output.append(line)
                printed.notify_all()
            if line.startswith("Try it:"):
                ready.set()
        ready.set()
        with printed:
            printed.notify_all()

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    if not ready.wait(90) or not any(line.startswith("Try it:") for line in output):
        stop_process(process)
        raise AssertionError("launcher did not become ready:\n" + "".join(output))
    # the embedded nats-server requires the user and password the launcher keeps in var/
    password = (var_dir / "nats.password").read_text().strip()
    return Stack(
        process,
        f"nats://crisis:{password}@127.0.0.1:{ports.nats}",
        f"http://127.0.0.1:{ports.gateway}",
        f"http://127.0.0.1:{ports.projections}",
        f"http://127.0.0.1:{ports.sandbox}",
        "".join(output),
        output,
        reader,
        printed,
    )


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def assert_every_log_line_is_json(var_dir: Path) -> None:
    """Every line of every file in var/logs is one JSON object, without terminal colour codes, and was written
    so by the service (or converted from the nats-server's format), not wrapped by the launcher as stray output."""
    logs = [path for path in (var_dir / "logs").iterdir() if path.is_file()]
    assert {path.name for path in logs} >= {
        "nats.log",
        "sms-sandbox.log",
        "projections.log",
        "dispatcher.log",
        "notifier.log",
        "intake-gateway.log",
    }
    for path in logs:
        text = path.read_text()
        assert "\x1b" not in text, path.name
        for number, line in enumerate(text.splitlines(), start=1):
            try:
                parsed = json.loads(line)
            except ValueError:
                raise AssertionError(f"{path.name}:{number} is not JSON: {line!r}") from None
            assert isinstance(parsed, dict) and {"ts", "level", "service", "logger", "message"} <= set(parsed), line
            assert parsed["logger"] != "output", f"{path.name}:{number} was not written as JSON: {line!r}"


def stop_stack(stack: Stack) -> str:
    """Ctrl-C, as a person would; the launcher must exit 0. Returns what it printed after its banner."""
    stack.process.send_signal(signal.SIGINT)
    stack.process.wait(60)
    stack.reader.join(10)
    after_banner = "".join(stack.output)[len(stack.banner) :]
    assert stack.process.returncode == 0, after_banner
    return after_banner


@pytest.fixture
def ports() -> Ports:
    return Ports(free_port(), free_port(), free_port(), free_port())


@pytest.fixture
def stack(tmp_path: Path, ports: Ports) -> Iterator[Stack]:
    running = start_stack(tmp_path / "var", ports)
    yield running
    stop_process(running.process)


def schema_validator(event_type: str, version: int) -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "schemas" / schema_path(event_type, version)).read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def validated_event(msg) -> dict:
    """The event a stream message carries, as JSON, once it passed its JSON Schema and names its id as the
    Nats-Msg-Id."""
    event = json.loads(msg.data)
    schema_validator(event["type"], event["schema_version"]).validate(event)
    assert msg.headers["Nats-Msg-Id"] == event["id"]
    return event


async def seen_of_type(watcher: SubjectWatch[dict], event_type: str) -> list[dict]:
    """The events of ``event_type`` seen on the stream, once there is one."""
    seen = await watcher.until(lambda events: any(e["type"] == event_type for e in events), event_type, timeout=30)
    return [e for e in seen if e["type"] == event_type]


async def timeline_with(client: httpx.AsyncClient, url: str, event_type: str, token: str) -> list[dict]:
    """The projections are another process with nothing to await: look until the entry is there (bounded)."""
    answers: list[httpx.Response] = []

    async def entries_with_it() -> list[dict] | None:
        answers.append(response := await client.get(url, headers={"Authorization": f"Bearer {token}"}))
        entries = response.json()["entries"] if response.status_code == 200 else []
        return entries if any(e["type"] == event_type for e in entries) else None

    return await eventually(
        entries_with_it, lambda: f"the timeline to show {event_type}: {answers[-1].text}", timeout=20, interval=0.1
    )


async def test_overdose_report_to_acknowledged_timeline(stack: Stack, tmp_path: Path, ports: Ports) -> None:
    assert stack.gateway in stack.banner and stack.sandbox in stack.banner and "/docs" in stack.banner
    # make run creates one demo credential per role and prints each token once
    tokens = dict(re.findall(r"^  (intake|responder|director|admin) +(\S+)$", stack.banner, re.M))
    assert set(tokens) == {"intake", "responder", "director", "admin"}, stack.banner
    connection = await nats.connect(stack.nats_url)
    watcher = SubjectWatch(validated_event)
    await connection.jetstream().subscribe("crisis.>", cb=watcher.on_message, ordered_consumer=True)
    async with httpx.AsyncClient(timeout=30) as client:
        report = {
            "kind": "overdose",
            "location": {"lat": 39.7431, "lon": -104.9876, "address": "5th St & Main"},
            "reporter": {"channel": "hotline", "relation": "friend"},
            "details": {"responsive": False, "breathing": True, "ems_called": False, "substance": "fentanyl"},
        }
        unauthenticated = await client.post(f"{stack.gateway}/v1/incidents", json=report)
        assert unauthenticated.status_code == 401
        auth = {"Authorization": f"Bearer {tokens['intake']}"}
        accepted = await client.post(f"{stack.gateway}/v1/incidents", json=report, headers=auth)
        assert accepted.status_code == 201, accepted.text
        incident = accepted.json()
        assert incident["priority"] == "P1" and incident["guidance"][0] == "Call 911 now."
        code = incident["short_code"]

        page = (
            await client.get(
                f"{stack.sandbox}/sandbox/api/wait", params={"phone": CLINICIAN, "count": 1, "timeout": 30}
            )
        ).json()
        assert not page["timed_out"]
        body = page["messages"][0]["body"]
        assert f"Y {code}" in body and "Call 911" in body and "in zone central" in body
        assert "5th St" not in body  # what the reporter typed: the address is in the app, not in a text
        assert not PHI.search(body)

        forged = await client.post(
            f"{stack.gateway}/twilio/sms",
            data={
                "MessageSid": "SM" + "0" * 32,
                "From": CLINICIAN,
                "To": "+15005550006",
                "Body": f"Y {code}",
            },
            headers={"X-Twilio-Signature": "forged"},
        )
        assert forged.status_code == 403
        assert forged.headers["content-type"].startswith("application/problem+json")

        await seen_of_type(watcher, "sms.sent")  # a person reads the page before answering it
        reply = await client.post(f"{stack.sandbox}/sandbox/api/inbound", json={"from": CLINICIAN, "body": f"Y {code}"})
        assert reply.status_code == 201 and reply.json()["webhook_status"] == 200

        acknowledged = await seen_of_type(watcher, "dispatch.acknowledged")
        assert acknowledged[0]["incident_id"] == incident["incident_id"]
        confirmation = (
            await client.get(
                f"{stack.sandbox}/sandbox/api/wait", params={"phone": CLINICIAN, "count": 3, "timeout": 30}
            )
        ).json()
        assert any(m["body"].startswith(f"Accepted {code}") for m in confirmation["messages"])

        timeline_url = f"{stack.projections}/v1/incidents/{incident['incident_id']}/timeline"
        entries = await timeline_with(client, timeline_url, "dispatch.acknowledged", tokens["director"])
        key_types = [
            e["type"]
            for e in entries
            if e["type"] in {"incident.reported", "dispatch.offered", "sms.sent", "dispatch.acknowledged"}
        ]
        assert key_types[0] == "incident.reported"
        assert key_types.count("dispatch.offered") == 2  # a P1 pages the best two at once
        assert key_types.index("sms.sent") < key_types.index("dispatch.acknowledged")
        times = [e["occurred_at"] for e in entries]
        assert times == sorted(times)
        assert all(e["occurred_at"] for e in entries)

    assert {
        "incident.reported",
        "dispatch.offered",
        "notification.requested",
        "sms.sent",
        "sms.received",
        "dispatch.acknowledged",
    } <= {e["type"] for e in watcher.seen}
    assert len({e["id"] for e in watcher.seen}) == len(watcher.seen)
    await connection.close()

    output = stop_stack(stack)
    assert "stopped; data kept" in output
    # the sandbox's inbox stands in for the responder's phone, which is meant to show the address
    stored = b"".join(
        p.read_bytes() for p in (tmp_path / "var").rglob("*") if p.is_file() and p.name != "sms-sandbox.sqlite"
    )
    assert b"5th St & Main" not in stored, "PHI must be encrypted at rest (stream files and stores)"
    assert b"fentanyl" not in stored
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stack.gateway}/healthz")

    again = start_stack(tmp_path / "var", ports)
    try:
        assert tokens["intake"] not in again.banner and "credentials.json" in again.banner  # printed once only
        async with httpx.AsyncClient(timeout=30) as client:
            director = {"Authorization": f"Bearer {tokens['director']}"}
            resumed = (await client.get(timeline_url, headers=director)).json()["entries"]
        assert [e["event_id"] for e in resumed][: len(entries)] == [e["event_id"] for e in entries]
        assert "dispatch.acknowledged" in [e["type"] for e in resumed]
    finally:
        stop_stack(again)
    # two starts and two stops: startup, shutdown, faststream's, uvicorn's and the nats-server's lines included
    assert_every_log_line_is_json(tmp_path / "var")
