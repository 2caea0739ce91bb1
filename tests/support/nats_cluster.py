"""A local NATS JetStream cluster: N nats-server child processes routed to each other on loopback.

For tests of what production runs (deploy/nats/): every node has its own server name, client port, route
port and store directory, so a node can be killed with SIGKILL and started again on the same ports and the
same data, as a crashed host would come back. Nodes are started and stopped with the embedded server's helpers
(``spawn_nats_server``, ``end_process`` in services/runtime/nats_server.py), so there is still one way to find,
run and stop nats-server. A test harness, not part of the services: tests and bench/chaos.py use it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.errors import Error as NatsError

from services.runtime.nats_server import end_process, spawn_nats_server
from tests.support.stream import eventually

CLUSTER_NAME = "crisis"


_HANDED_OUT: set[int] = set()
"""Every port ``free_ports`` gave in this process: a second call (the chaos stack's, after the cluster's) never gets
one the first handed out to a server that has not bound it yet (a health check once reached a nats-server)."""


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the kernel calls free right now and this process has not handed out before: all sockets stay bound until
    every port is chosen, so none repeats."""
    sockets: list[socket.socket] = []
    try:
        chosen: list[int] = []
        while len(chosen) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
            port = s.getsockname()[1]
            if port not in _HANDED_OUT:
                chosen.append(port)
        _HANDED_OUT.update(chosen)
        return chosen
    finally:
        for s in sockets:
            s.close()


@dataclass
class ClusterNode:
    """One nats-server of the cluster. Its ports and store survive a kill, so a restart is the same node."""

    name: str
    host: str
    client_port: int
    route_port: int
    monitor_port: int
    store_dir: Path
    config_file: Path
    log_file: Path
    encryption_key: str | None = None  # this node's own JetStream key, instead of the cluster's
    _process: subprocess.Popen[str] | None = field(default=None, repr=False)
    _drain: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.client_port}"

    @property
    def route_url(self) -> str:
        return f"nats-route://{self.host}:{self.route_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def launch(self) -> threading.Event:
        """Start the process; the returned event is set once the server is ready (or has failed)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._process = spawn_nats_server("-c", str(self.config_file))
        ready = threading.Event()
        process = self._process

        def read_log() -> None:
            assert process.stderr is not None
            with open(self.log_file, "a") as log:
                for line in process.stderr:
                    log.write(line)
                    log.flush()
                    if "Server is ready" in line or "[FTL]" in line:
                        ready.set()
            ready.set()

        self._drain = threading.Thread(target=read_log, name=f"nats-{self.name}-log", daemon=True)
        self._drain.start()
        return ready

    def kill(self) -> None:
        """SIGKILL, as a crashed host: no lame-duck mode, no flush."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM, as an orderly shutdown."""
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        if self._process is not None:
            end_process(self._process, self._drain, sig)
        self._process = None
        self._drain = None


class NatsCluster:
    """``size`` nats-servers forming one JetStream cluster on ``host``, with data under ``base_dir``.

    ``encryption_key`` turns on JetStream encryption at rest (chachapoly) on every node, as
    deploy/nats/nats-cluster.conf does in production.
    """

    def __init__(
        self,
        base_dir: Path,
        size: int = 3,
        *,
        host: str = "127.0.0.1",
        encryption_key: str | None = None,
        name_prefix: str = "crisis-n",
    ) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.base_dir = Path(base_dir)
        self.host = host
        self.encryption_key = encryption_key
        ports = free_ports(3 * size, host)
        self.nodes = [
            ClusterNode(
                name=f"{name_prefix}{i + 1}",
                host=host,
                client_port=ports[3 * i],
                route_port=ports[3 * i + 1],
                monitor_port=ports[3 * i + 2],
                store_dir=self.base_dir / f"{name_prefix}{i + 1}" / "jetstream",
                config_file=self.base_dir / f"{name_prefix}{i + 1}.conf",
                log_file=self.base_dir / f"{name_prefix}{i + 1}.log",
            )
            for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every node's client URL, comma separated, as CRISIS_NATS_URL takes them."""
        return ",".join(self.urls)

    def node(self, name: str) -> ClusterNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def config(self, node: ClusterNode) -> str:
        """The node's nats-server configuration: the shape of deploy/nats/nats-cluster.conf on loopback ports."""
        jetstream = [f"store_dir: {json.dumps(str(node.store_dir))}"]
        if key := node.encryption_key or self.encryption_key:
            jetstream += ["cipher: chachapoly", f"key: {json.dumps(key)}"]
        routes = "\n".join(f"    {json.dumps(other.route_url)}" for other in self.nodes)
        body = "\n".join(f"  {line}" for line in jetstream)
        return (
            f"server_name: {json.dumps(node.name)}\n"
            f"listen: {json.dumps(f'{self.host}:{node.client_port}')}\n"
            f"http: {json.dumps(f'{self.host}:{node.monitor_port}')}\n"
            f"jetstream {{\n{body}\n}}\n"
            "cluster {\n"
            f"  name: {CLUSTER_NAME}\n"
            f"  listen: {json.dumps(f'{self.host}:{node.route_port}')}\n"
            f"  routes: [\n{routes}\n  ]\n"
            "}\n"
        )

    def start(self, timeout: float = 20.0) -> str:
        """Start every node (concurrently: none can elect a JetStream leader alone); returns the URL list."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        events = [(node, self._launch(node)) for node in self.nodes]
        deadline = time.monotonic() + timeout
        for node, ready in events:
            self._await_ready(node, ready, deadline)
        return self.url

    def restart(self, node: ClusterNode, timeout: float = 20.0, *, wipe_store: bool = False) -> None:
        """Start a stopped or killed node again on its ports: on its store, or on an empty one (``wipe_store``),
        from which it re-syncs its replicas from the other nodes, as a replaced disk would."""
        if node.running:
            raise RuntimeError(f"{node.name} is running: stop or kill it first")
        if wipe_store:
            shutil.rmtree(node.store_dir, ignore_errors=True)
        self._await_ready(node, self._launch(node), time.monotonic() + timeout)

    def _launch(self, node: ClusterNode) -> threading.Event:
        # the key lives in the file: readable only by us
        node.config_file.touch(mode=0o600, exist_ok=True)
        node.config_file.write_text(self.config(node))
        return node.launch()

    def _await_ready(self, node: ClusterNode, ready: threading.Event, deadline: float) -> None:
        if not ready.wait(max(0.0, deadline - time.monotonic())) or not node.running:
            self.stop()
            tail = node.log_file.read_text()[-2000:] if node.log_file.exists() else ""
            raise RuntimeError(f"nats-server {node.name} did not start:\n{tail}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def kill(self, node: ClusterNode) -> None:
        node.kill()

    async def wait_for_jetstream(self, timeout: float = 30.0, interval: float = 0.1) -> None:
        """Return once the JetStream meta group has a leader, i.e. the cluster answers JetStream API requests.

        A fresh cluster answers nothing until its nodes have found each other and elected a meta leader;
        nothing announces that, so this polls the account info request with a short interval.
        """
        connection = await nats.connect(
            self.urls, connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=0.2
        )
        js = connection.jetstream(timeout=1.0)
        refusals: list[Exception] = []

        async def answers() -> bool:
            try:
                await js.account_info()
            except (NatsError, TimeoutError) as exc:  # no meta leader yet: 503 / timeouts
                refusals.append(exc)
                return False
            return True

        try:
            await eventually(
                answers, lambda: f"JetStream to elect a meta leader (last answer: {refusals[-1:]!r})", timeout, interval
            )
        finally:
            with contextlib.suppress(Exception):
                await connection.close()

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
