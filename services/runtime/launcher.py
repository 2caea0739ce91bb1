"""`make run`: every service on one machine, on the embedded defaults.

Starts a nats-server child process (JetStream data in var/), the SMS sandbox and the four services as
separate processes, prints where everything is, restarts a service or the nats-server when one dies, and on
Ctrl-C stops every child cleanly. Data stays in var/, so running it again resumes where it stopped.

As careful as the clustered deployment, on one machine:

- var/ is the user's alone: the launcher and every child run with umask 077, and a start takes group and
  other permissions off whatever var/ already holds (older runs made 0644 files in a 0755 directory).
- The nats-server requires a user and password (made once, kept in var/nats.password, 0600); the services
  get them in CRISIS_NATS_URL. Any other local process is refused.
- Every line in var/logs is one JSON object: the services write JSON themselves, the nats-server's lines are
  converted, and anything else a child prints (a crash before its logging is set up) is wrapped in one.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic import Field

from services.runtime.credentials import AccessRole, ensure_demo_credentials, issue_credential, revoke_credential
from services.runtime.nats_server import EmbeddedNatsServer, die_with_parent
from services.runtime.settings import RuntimeSettings


class LauncherSettings(RuntimeSettings):
    nats_port: int = Field(default=14222, description="port of the embedded nats-server (not 4222, to coexist)")
    gateway_port: int = Field(default=8080, description="gateway HTTP port")
    projections_port: int = Field(default=8081, description="projections / director API HTTP port")
    sandbox_port: int = Field(default=8025, description="SMS sandbox HTTP port")
    dispatcher_ops_port: int = Field(default=9101, ge=1, description="dispatcher /metrics, /livez, /readyz port")
    notifier_ops_port: int = Field(default=9102, ge=1, description="notifier /metrics, /livez, /readyz port")
    programs_seed_file: str = Field(
        default="deploy/demo/programs.csv",
        description="demo treatment programs imported through the admin API when the directory is empty; empty: none",
    )


NATS_USER = "crisis"
SEED_SUBJECT = "demo-seed"  # a credential that lives only while the launcher imports the demo programs


def seed_demo_programs(gateway: str, projections: str, credentials_file: Path, csv_file: Path) -> int | None:
    """Import ``csv_file`` through the gateway's admin API when the directory (projections) lists no program.

    Uses an admin credential issued for this step and revoked after it. Returns how many programs were
    imported; None when the directory had programs already."""
    token = issue_credential(credentials_file, SEED_SUBJECT, AccessRole.ADMIN)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{projections}/v1/programs", headers=headers)) as answer:
            if json.load(answer)["programs"]:
                return None
        request = urllib.request.Request(
            f"{gateway}/v1/admin/programs/import",
            data=csv_file.read_bytes(),
            headers=headers | {"Content-Type": "text/csv", "Idempotency-Key": f"demo-programs-{csv_file.name}"},
            method="POST",
        )
        with urllib.request.urlopen(request) as answer:
            return int(json.load(answer)["imported"])
    finally:
        revoke_credential(credentials_file, SEED_SUBJECT)


CRASH_LOOP_RESTARTS = 5  # restarts within a minute after which each restart waits CRASH_LOOP_PAUSE_SECONDS
CRASH_LOOP_PAUSE_SECONDS = 5


@dataclass
class Child:
    name: str
    module: str
    health_url: str | None = None
    process: subprocess.Popen | None = None
    restarts: list[float] = field(default_factory=list)
    log_copier: threading.Thread | None = None


def cipher_key(var_dir: Path) -> str:
    """The key encrypting stored events, made once and kept beside the data it protects (demo setup)."""
    return _key_file(var_dir / "cipher.key", lambda: base64.b64encode(secrets.token_bytes(32)).decode())


def stream_key(var_dir: Path, services_key: str) -> str:
    """The embedded nats-server's own at-rest key, apart from CRISIS_CIPHER_KEY so crisis-rotate-key can
    change the services' key alone. A var/ from before this split encrypted its stream with the services' key,
    and keeps doing so (its stream files cannot be read with any other)."""
    if (var_dir / "nats").exists() and not (var_dir / "nats.key").exists():
        return _key_file(var_dir / "nats.key", lambda: services_key)
    return _key_file(var_dir / "nats.key", lambda: base64.b64encode(secrets.token_bytes(32)).decode())


def nats_password(var_dir: Path) -> str:
    """The password the embedded nats-server requires of every client (user ``NATS_USER``), made once."""
    return _key_file(var_dir / "nats.password", lambda: secrets.token_urlsafe(32))


def _key_file(path: Path, make: Callable[[], str]) -> str:
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text().strip()


def make_private(var_dir: Path) -> None:
    """Take group and other permissions off var_dir and everything in it (never adding any); symlinks are left."""
    paths = [var_dir]
    for root, dirs, files in os.walk(var_dir):
        paths += [Path(root) / name for name in (*dirs, *files)]
    for path in paths:
        if path.is_symlink():
            continue
        try:
            mode = path.stat().st_mode
            if mode & 0o077:
                path.chmod(mode & 0o7700)
        except FileNotFoundError:  # a -wal or -shm file that went away meanwhile
            continue


def main() -> None:
    os.umask(0o077)  # every file the launcher and its children make (stores, logs, stream files) is private
    settings = LauncherSettings()
    var_dir = settings.var_dir.resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    make_private(var_dir)
    (var_dir / "logs").mkdir(exist_ok=True)
    key = settings.cipher_key or cipher_key(var_dir)
    credentials_file = settings.credentials_file.resolve()
    new_tokens = ensure_demo_credentials(credentials_file)
    nats = EmbeddedNatsServer(
        var_dir / "nats",
        port=settings.nats_port,
        log_file=var_dir / "logs" / "nats.log",
        encryption_key=stream_key(var_dir, key),
        user=NATS_USER,
        password=nats_password(var_dir),
    )
    nats.start()
    nats_url = nats.url  # for the banner; the services get nats.client_url, which carries the password
    nats_restarts: list[float] = []
    nats_down = False
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    projections = f"http://127.0.0.1:{settings.projections_port}"
    sandbox = f"http://127.0.0.1:{settings.sandbox_port}"
    dispatcher_ops_port = free_or_any(settings.dispatcher_ops_port)
    notifier_ops_port = free_or_any(settings.notifier_ops_port, avoid=dispatcher_ops_port)
    dispatcher_ops = f"http://127.0.0.1:{dispatcher_ops_port}"
    notifier_ops = f"http://127.0.0.1:{notifier_ops_port}"
    env = os.environ | {
        "CRISIS_NATS_URL": nats.client_url,
        "CRISIS_VAR_DIR": str(var_dir),
        "CRISIS_CIPHER_KEY": key,
        "CRISIS_CREDENTIALS_FILE": str(credentials_file),
        "CRISIS_GATEWAY_PORT": str(settings.gateway_port),
        "CRISIS_GATEWAY_PUBLIC_URL": os.environ.get("CRISIS_GATEWAY_PUBLIC_URL", gateway),
        "CRISIS_PROJECTIONS_PORT": str(settings.projections_port),
        "CRISIS_WORKSPACE_PUBLIC_URL": os.environ.get("CRISIS_WORKSPACE_PUBLIC_URL", projections),
        "CRISIS_SANDBOX_PORT": str(settings.sandbox_port),
        "CRISIS_DISPATCHER_OPS_PORT": str(dispatcher_ops_port),
        "CRISIS_NOTIFIER_OPS_PORT": str(notifier_ops_port),
        "CRISIS_SANDBOX_URL": sandbox,
        "CRISIS_SANDBOX_INBOUND_WEBHOOK_URL": f"{gateway}/twilio/sms",
        # delivery failures (30003-30008) come back through the gateway's status webhook
        "CRISIS_TWILIO_STATUS_CALLBACK_URL": os.environ.get(
            "CRISIS_TWILIO_STATUS_CALLBACK_URL", f"{gateway}/twilio/status"
        ),
        # page and check-in calls listen for a key, which Twilio (the sandbox) posts to the gateway
        "CRISIS_TWILIO_VOICE_KEYPAD_URL": os.environ.get(
            "CRISIS_TWILIO_VOICE_KEYPAD_URL", f"{gateway}/twilio/voice/keypad"
        ),
    }
    children = [
        Child("sms-sandbox", "services.sms_sandbox", f"{sandbox}/healthz"),
        Child("projections", "services.projections", f"{projections}/readyz"),
        Child("dispatcher", "services.dispatcher", f"{dispatcher_ops}/readyz"),
        Child("notifier", "services.notifier", f"{notifier_ops}/readyz"),
        Child("intake-gateway", "services.intake_gateway", f"{gateway}/readyz"),
    ]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for child in children:
            start(child, env, var_dir)
        for child in children:
            if child.health_url and not wait_healthy(child, timeout=30):
                print(f"{child.name} did not become healthy; see {var_dir / 'logs' / (child.name + '.log')}")
        ops = {
            "gateway": gateway,
            "projections": projections,
            "dispatcher": dispatcher_ops,
            "notifier": notifier_ops,
        }
        if settings.programs_seed_file:
            try:
                seeded = seed_demo_programs(gateway, projections, credentials_file, Path(settings.programs_seed_file))
                if seeded:
                    print(f"imported {seeded} demo treatment programs from {settings.programs_seed_file}")
            except (OSError, ValueError, KeyError) as exc:  # the demo runs without them; say why
                print(f"demo treatment programs not imported: {exc}")
        print_banner(settings, nats_url, gateway, projections, sandbox, var_dir, credentials_file, new_tokens, ops)
        while not stopping:
            time.sleep(0.5)
            if not stopping and (nats_down or nats.exit_code() is not None):
                nats_down = not restart_nats(nats, nats_restarts, var_dir)
            for child in children:
                if not stopping and child.process and child.process.poll() is not None:
                    restart(child, env, var_dir)
    finally:
        print("\nstopping ...", flush=True)
        for child in reversed(children):
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in reversed(children):
            if child.process:
                try:
                    child.process.wait(15)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
            if child.log_copier:
                child.log_copier.join(5)
        nats.stop()
        print("stopped; data kept in", var_dir, flush=True)


def free_or_any(port: int, avoid: int | None = None) -> int:
    """``port`` if nothing listens on it, else a free one: a second stack on this machine (a test run beside
    `make run`) must not fail because the dispatcher's or notifier's ops port is taken. The banner shows it."""
    for candidate in (port, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            chosen = sock.getsockname()[1]
            if chosen != avoid:
                return chosen
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(child: Child, env: dict[str, str], var_dir: Path) -> None:
    child.process = subprocess.Popen(
        [sys.executable, "-m", child.module],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the launcher only, which stops the children in order
        preexec_fn=die_with_parent,
    )
    assert child.process.stdout is not None
    child.log_copier = threading.Thread(
        target=copy_log,
        args=(child.process.stdout, var_dir / "logs" / f"{child.name}.log", child.name),
        name=f"{child.name}-log",
        daemon=True,
    )
    child.log_copier.start()


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-_])")


def json_line(line: str, service: str) -> str:
    """``line`` when it is one JSON object already (a service's log line), else the line wrapped in one, in the
    services' shape, without terminal colour codes: a traceback of a crash before logging was set up, say. A
    service writes nothing but JSON lines while it works, so a wrapped line is a WARNING."""
    text = line.rstrip("\r\n")
    try:
        if isinstance(json.loads(text), dict) and "\x1b" not in text:
            return text
    except ValueError:
        pass
    return json.dumps(
        {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "WARNING",
            "service": service,
            "logger": "output",
            "message": _ANSI.sub("", text).replace("\x1b", ""),
        },
        ensure_ascii=False,
    )


def copy_log(output: IO[bytes], log_file: Path, service: str) -> None:
    """Append a child's output to its log file, one JSON object a line, until the child closes it."""
    with output, open(log_file, "a", encoding="utf-8") as log:
        for raw in output:
            log.write(json_line(raw.decode("utf-8", errors="replace"), service) + "\n")
            log.flush()


def crash_loop_pause(restarts: list[float]) -> list[float]:
    """Note a restart now; past CRASH_LOOP_RESTARTS in a minute, wait a little first (slow down, keep trying)."""
    now = time.monotonic()
    recent = [t for t in restarts if now - t < 60] + [now]
    if len(recent) > CRASH_LOOP_RESTARTS:
        time.sleep(CRASH_LOOP_PAUSE_SECONDS)
    return recent


def restart(child: Child, env: dict[str, str], var_dir: Path) -> None:
    code = child.process.returncode if child.process else None
    print(f"{child.name} exited with {code}; restarting (see var/logs/{child.name}.log)", flush=True)
    child.restarts = crash_loop_pause(child.restarts)
    start(child, env, var_dir)


def restart_nats(nats: EmbeddedNatsServer, restarts: list[float], var_dir: Path) -> bool:
    """Start the nats-server again on its port and store directory (the services reconnect by themselves).
    False when it did not start: the caller tries again on its next round."""
    code = nats.exit_code()
    why = f"exited with {code}" if code is not None else "is still down"
    print(f"nats-server {why}; restarting (see {var_dir / 'logs' / 'nats.log'})", flush=True)
    restarts[:] = crash_loop_pause(restarts)
    try:
        nats.start()
    except RuntimeError as exc:
        print(f"nats-server did not start again ({exc}); retrying", flush=True)
        return False
    print(f"nats-server is back on {nats.url}", flush=True)
    return True


def wait_healthy(child: Child, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process and child.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(child.health_url, timeout=1) as response:  # noqa: S310 - our own URL
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def credentials_text(credentials_file: Path, new_tokens: dict[str, str]) -> str:
    """The banner's credentials section: the tokens when just created (shown once), else where they are."""
    if not new_tokens:
        return (
            f"Demo credentials: in {credentials_file} (hashed; the tokens were printed when it was created).\n"
            f"  Lost them? Stop, delete that file and run again to get new ones."
        )
    rows = "\n".join(f"  {role:<10} {token}" for role, token in new_tokens.items())
    return (
        f"Demo credentials (created now in {credentials_file}; shown only this once, keep them):\n"
        f"{rows}\n"
        f"  Send one as: Authorization: Bearer <token>\n"
        f"  export CRISIS_TOKEN={new_tokens.get('intake', '<intake token>')}"
    )


def print_banner(
    settings: LauncherSettings,
    nats_url: str,
    gateway: str,
    projections: str,
    sandbox: str,
    var_dir: Path,
    credentials_file: Path,
    new_tokens: dict[str, str],
    ops: dict[str, str],
) -> None:
    metrics = "\n".join(f"  {'Metrics ' + name:<22}{url}/metrics   (and /livez, /readyz)" for name, url in ops.items())
    print(
        f"""
Crisis dispatcher is running (Ctrl-C stops everything; data is kept in {var_dir}).

  Intake gateway        {gateway}          POST /v1/incidents
  Gateway OpenAPI docs  {gateway}/docs
  Director workspace    {projections}/workspace/   (sign in as demo-director with its token)
  Timelines (director)  {projections}/v1/incidents/<incident_id>/timeline
  Projections OpenAPI   {projections}/docs
  SMS sandbox inbox     {sandbox}/
  AsyncAPI (events)     {projections}/asyncapi.json   (also schemas/asyncapi.json)
  NATS (embedded)       {nats_url}   (user {NATS_USER}; password in {var_dir / "nats.password"})
  Logs                  {var_dir / "logs"}   (one JSON object per line)
{metrics}

Demo roster (deploy/demo/roster.json, on call by rotation): reply from these phones in the SMS sandbox.
  +15550100001 clinician             +15550100002 peer coach (Spanish)
  +15550100003 nurse (not on call)   +15550100004 supervisor       +15550100005 clinical director
{credentials_text(credentials_file, new_tokens)}

Try it:
  curl -s -X POST {gateway}/v1/incidents -H 'content-type: application/json' \\
    -H "Authorization: Bearer $CRISIS_TOKEN" \\
    -d '{{"kind":"overdose","location":{{"lat":39.7431,"lon":-104.9876,"address":"5th St & Main"}},
         "reporter":{{"channel":"hotline"}},"details":{{"responsive":false,"ems_called":false}}}}'
""",
        flush=True,
    )


if __name__ == "__main__":
    main()
