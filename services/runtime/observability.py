"""What operators see of a running service: Prometheus metrics, JSON log lines, and the ops routes.

- Metrics are named ``crisis_*`` and live in the process's default Prometheus registry. Their labels are
  consumer and service names, event types, priorities, escalation rungs, channels and provider error codes:
  never a phone number, a name, a location or an incident id (unbounded, and an id is a key to PHI).
- Log lines are one JSON object each (``services.runtime.json_logs``).
- ``/livez`` answers while the event loop runs; ``/readyz`` answers 200 only when every check of the
  service (its NATS connection, its database) passes, else 503 problem+json naming what is down;
  ``/metrics`` refreshes the gauges read at scrape time (consumer lag, overdue follow-ups) and exposes all.
  They are open (no token): serve them on the internal network only. Nothing in them is PHI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from services.contract.events import DispatchEscalated, DispatchUnfilled, Envelope, SmsFailed
from services.runtime.nats_connection import nats_client
from services.runtime.problems import problem_response
from services.runtime.stream import STREAM_NAME

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0

# ---- metrics ----------------------------------------------------------------------------------------------

CONSUMER_LAG = Gauge(
    "crisis_consumer_lag_messages",
    "Stream messages a durable consumer has not finished with: num_pending + num_ack_pending, read at scrape",
    ["consumer"],
)
EVENTS_HANDLED = Counter(
    "crisis_events_handled_total",
    "Stream messages a durable consumer handled, by outcome: processed, duplicate (already processed), "
    "retried (nacked for redelivery) or dead_lettered",
    ["consumer", "event_type", "outcome"],
)
EVENTS_DEAD_LETTERED = Counter(
    "crisis_events_dead_lettered_total",
    "Messages a consumer gave up on and published as message.dead_lettered: unreadable or poison",
    ["consumer", "cause"],
)
EVENTS_PUBLISHED = Counter(
    "crisis_events_published_total",
    "Events a service appended to the CRISIS stream (a re-publish after a crash is counted again)",
    ["service", "event_type"],
)
ESCALATIONS = Counter(
    "crisis_dispatch_escalations_total",
    "dispatch.escalated events published by the dispatcher, by the rung escalated to and why",
    ["rung", "reason"],
)
UNFILLED = Counter(
    "crisis_dispatch_unfilled_total",
    "dispatch.unfilled events published by the dispatcher (nobody could be paged at a step), by rung",
    ["rung"],
)
SMS_FAILURES = Counter(
    "crisis_sms_failures_total",
    "sms.failed events published by the notifier (refused, undelivered, opted out, or out of retries)",
    ["channel", "error_code", "permanent"],
)
PROVIDER_ERRORS = Counter(
    "crisis_provider_call_errors_total",
    "Provider (Twilio or sandbox) calls that failed, by channel, error code and whether the call is retried",
    ["channel", "error_code", "retried"],
)
PAGE_LATENCY = Histogram(
    "crisis_page_latency_seconds",
    "From when the notifier recorded a notification request to the provider accepting the message",
    ["channel", "priority"],
    buckets=(0.5, 1, 2, 5, 10, 15, 30, 60, 90, 120, 300, 600, 1800),
)
OVERDUE_FOLLOWUPS = Gauge(
    "crisis_followups_overdue",
    "Open follow-up tasks past their due time, read from the projections' read model at scrape",
    ["priority"],
)
DEPENDENCY_UP = Gauge(
    "crisis_dependency_up",
    "1 when a readiness check (nats, store, jetstream) passed at the last probe or scrape, else 0",
    ["service", "check"],
)


def error_code_label(code: int | None) -> str:
    return "none" if code is None else str(code)


def record_published(service: str, event: Envelope) -> None:
    """Count one event appended to the stream, and the escalation or failure it reports."""
    EVENTS_PUBLISHED.labels(service, event.type).inc()
    if isinstance(event, DispatchEscalated):
        ESCALATIONS.labels(event.data.rung, event.data.reason).inc()
    elif isinstance(event, DispatchUnfilled):
        UNFILLED.labels(event.data.rung).inc()
    elif isinstance(event, SmsFailed):
        permanent = "true" if event.data.permanent else "false"
        SMS_FAILURES.labels(event.data.channel, error_code_label(event.data.error_code), permanent).inc()


Publish = Callable[[Envelope], Awaitable[int]]


def counting(service: str, publish: Publish) -> Publish:
    """``publish``, counting each event it appended (see :func:`record_published`)."""

    async def publish_counted(event: Envelope) -> int:
        sequence = await publish(event)
        record_published(service, event)
        return sequence

    return publish_counted


# ---- readiness and gauges read at scrape ---------------------------------------------------------------------

Check = Callable[[], Awaitable[bool]]
Refresh = Callable[[], Awaitable[None]]


@dataclass
class OpsProbes:
    """A service's readiness checks (name -> check) and the gauges it refreshes before each scrape."""

    service: str
    checks: dict[str, Check] = field(default_factory=dict)
    refreshers: list[Refresh] = field(default_factory=list)

    async def readiness(self) -> dict[str, bool]:
        """Run every check (each bounded by CHECK_TIMEOUT_SECONDS); a check that raises or hangs failed."""
        names = list(self.checks)
        results = await asyncio.gather(*(_passes(self.checks[name]) for name in names))
        outcome = dict(zip(names, results, strict=True))
        for name, passed in outcome.items():
            DEPENDENCY_UP.labels(self.service, name).set(1 if passed else 0)
        return outcome

    async def refresh(self) -> None:
        """Bring the scrape-time gauges up to date; one that cannot be read keeps its last value."""
        await asyncio.gather(*(_refresh(refresh) for refresh in self.refreshers))
        await self.readiness()


async def _passes(check: Check) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return bool(await check())
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the reason is logged
        log.warning("readiness check failed: %s", type(exc).__name__)
        return False


async def _refresh(refresh: Refresh) -> None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await refresh()
    except Exception as exc:  # noqa: BLE001 - a stale gauge beats a failed scrape
        log.debug("metric refresh failed: %s", type(exc).__name__)


def nats_connected(connection: Callable[[], Any]) -> Check:
    """Passes while the NATS client returned by ``connection()`` is connected (not reconnecting or closed)."""

    async def check() -> bool:
        client = connection()
        return client is not None and bool(client.is_connected)

    return check


def broker_connected(broker: NatsBroker) -> Check:
    """Passes while a FastStream NATS broker's connection is up."""
    return nats_connected(lambda: nats_client(broker))


def store_answers(datastore: Any) -> Check:
    """Passes when the eventsourcing datastore (SQLite or PostgreSQL) answers ``SELECT 1``."""

    def select_one() -> bool:
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() is not None

    async def check() -> bool:
        return await asyncio.to_thread(select_one)

    return check


def jetstream_answers(js: JetStreamContext) -> Check:
    """Passes when JetStream answers for the CRISIS stream (the gateway's KV buckets live beside it)."""

    async def check() -> bool:
        await js.stream_info(STREAM_NAME)
        return True

    return check


def consumer_lag(js: JetStreamContext, durables: Iterable[str]) -> Refresh:
    """Reads each durable consumer's num_pending + num_ack_pending into crisis_consumer_lag_messages."""
    names = tuple(durables)

    async def refresh() -> None:
        for durable in names:
            info = await js.consumer_info(STREAM_NAME, durable)
            CONSUMER_LAG.labels(durable).set((info.num_pending or 0) + (info.num_ack_pending or 0))

    return refresh


# ---- the ops routes -------------------------------------------------------------------------------------------

router = APIRouter(include_in_schema=False)
"""/livez, /readyz and /metrics, reading ``app.state.ops`` (an OpsProbes); not in the OpenAPI document."""


def _probes(request: Request) -> OpsProbes | None:
    return getattr(request.app.state, "ops", None)


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    probes = _probes(request)
    if probes is None:
        return problem_response(503, "not ready: starting", instance="/readyz", checks={})
    outcome = await probes.readiness()
    checks = {name: "up" if passed else "down" for name, passed in outcome.items()}
    down = [name for name, passed in outcome.items() if not passed]
    if down:
        return problem_response(503, f"not ready: {', '.join(down)} down", instance="/readyz", checks=checks)
    return JSONResponse({"status": "ready", "checks": checks})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    probes = _probes(request)
    if probes is not None:
        await probes.refresh()
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def ops_app(probes: OpsProbes) -> FastAPI:
    """A small app serving only the ops routes, for services that have no HTTP API of their own."""
    app = FastAPI(title=f"{probes.service} ops", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.ops = probes
    app.include_router(router)
    return app


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside a service's own event loop: the service, not uvicorn, owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving_ops(probes: OpsProbes, host: str, port: int) -> AsyncIterator[str]:
    """Serve the ops routes on ``host:port`` (0: a free port) until the block exits; yields the base URL.

    The port is bound before serving, so a port already taken fails the service's start with OSError.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound = sock.getsockname()[1]
    config = uvicorn.Config(ops_app(probes), lifespan="off", log_config=None, access_log=False)
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"{probes.service}-ops-http")
    try:
        url_host = f"[{host}]" if family == socket.AF_INET6 else host
        log.info("ops endpoints on port %s: /metrics /livez /readyz", bound)
        yield f"http://{url_host}:{bound}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        sock.close()
