"""The one way tests run an HTTP app: a real uvicorn server on an ephemeral port in a background thread."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

_STARTUP_TIMEOUT = 15.0
_SHUTDOWN_TIMEOUT = 15.0


class _ReportingServer(uvicorn.Server):
    """A uvicorn server that tells another thread when startup has finished, successfully or not."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_finished = threading.Event()
        self.crash: BaseException | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.startup_finished.set()

    def run_reporting(self, sockets: list[socket.socket]) -> None:
        try:
            self.run(sockets=sockets)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread, which re-raises it
            self.crash = exc
        finally:
            self.startup_finished.set()


@contextlib.contextmanager
def serving(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the ASGI ``app`` (lifespan included) until the block exits; yields its base URL.

    The port is bound before the server starts, so the URL is valid as soon as it is yielded and no other
    process can take the port in between. Raises ``RuntimeError`` if the app fails to start (for example
    its lifespan startup raised) or does not start within 15 s. On exit the server shuts down gracefully,
    running the app's lifespan shutdown; a server that will not stop is forced to.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, timeout_graceful_shutdown=5)
        server = _ReportingServer(config)
        thread = threading.Thread(target=server.run_reporting, args=([sock],), name=f"uvicorn:{port}", daemon=True)
        thread.start()
        try:
            if not server.startup_finished.wait(_STARTUP_TIMEOUT):
                raise RuntimeError(f"the app did not start within {_STARTUP_TIMEOUT} s")
            if not server.started:
                # uvicorn exits with SystemExit when the lifespan startup fails; its log says why.
                raise RuntimeError("the app failed to start (see the error logged above)") from server.crash
            url_host = f"[{host}]" if family == socket.AF_INET6 else host
            yield f"http://{url_host}:{port}"
        finally:
            server.should_exit = True
            thread.join(_SHUTDOWN_TIMEOUT)
            if thread.is_alive():
                server.force_exit = True
                thread.join(_SHUTDOWN_TIMEOUT)
        if server.crash is not None:
            raise RuntimeError("the server crashed") from server.crash
    finally:
        sock.close()
