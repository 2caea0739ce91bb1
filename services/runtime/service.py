"""Running a stream service: connect, provision the stream, consume durably, relay the outbox, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial

from faststream.nats import NatsBroker
from nats.aio.client import DEFAULT_PENDING_SIZE
from nats.js import JetStreamContext

from services.runtime.consumer import ProcessorConsumer, refresh_durable
from services.runtime.observability import (
    JsonLogFormatter,
    OpsProbes,
    Publish,
    broker_connected,
    consumer_lag,
    counting,
    json_logs_only,
    store_answers,
)
from services.runtime.processor import LogFollower, StreamProcessor, outbox_relay
from services.runtime.settings import RuntimeSettings
from services.runtime.stream import AnsweredPublisher, ensure_stream, publish_event, until_jetstream_answers

log = logging.getLogger(__name__)


def make_broker(settings: RuntimeSettings, *, buffered: bool = True) -> NatsBroker:
    """A broker that keeps reconnecting for as long as the service runs.

    ``buffered=False``: while disconnected, a publish fails at once instead of waiting in the client's
    reconnect buffer, to be sent when NATS is back. A service that answers people (the gateway, the
    workspace's commands) needs that: an answer of "not recorded" must not be followed by the event landing
    later. Consumers with an outbox relay keep the buffer (their publishes are retried and de-duplicated).
    """
    return NatsBroker(
        [s.strip() for s in settings.nats_url.split(",")],
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        graceful_timeout=10.0,
        pending_size=DEFAULT_PENDING_SIZE if buffered else 0,
        log_level=logging.DEBUG,  # per-message lines only when debugging
        logger=logging.getLogger("faststream.access.nats"),  # through the JSON handler, not its own coloured one
    )


def answered_publisher(broker: NatsBroker, js: JetStreamContext, settings: RuntimeSettings) -> AnsweredPublisher:
    """Publishing for routes that answer a caller: recorded (the sequence), NotRecorded or OutcomeUnknown.
    ``broker`` must be unbuffered (``make_broker(settings, buffered=False)``)."""
    connection = broker.config.connection_state.connection
    return AnsweredPublisher(js, lambda: connection.is_connected, deadline_seconds=settings.publish_deadline_seconds)


async def connect_stream(broker: NatsBroker, settings: RuntimeSettings) -> JetStreamContext:
    """Connect (retrying until NATS answers) and make sure the CRISIS stream exists."""
    log.info("connecting to NATS and provisioning stream")
    await broker.connect()
    js = broker.config.connection_state.stream
    await until_jetstream_answers(lambda: ensure_stream(js, settings.stream_replicas), "stream provisioning")
    return js


@dataclass
class RunningService:
    broker: NatsBroker
    js: JetStreamContext
    followers: Sequence[LogFollower]
    publish: Publish
    """Appends an event to the stream, counted in crisis_events_published_total."""
    probes: OpsProbes
    """Readiness (NATS connection, the processor's store) and the consumer-lag gauge, for the ops routes."""


def processor_probes(
    service: str, broker: NatsBroker, js: JetStreamContext, processor: StreamProcessor, durable: str
) -> OpsProbes:
    """Ready when NATS is connected and the processor's store answers; lag read from its durable consumer."""
    return OpsProbes(
        service,
        checks={"nats": broker_connected(broker), "store": store_answers(processor.recorder.datastore)},
        refreshers=[consumer_lag(js, [durable])],
    )


@contextlib.asynccontextmanager
async def running_processor(
    settings: RuntimeSettings,
    processor: StreamProcessor,
    *,
    durable: str,
    followers: Sequence[LogFollower] = (),
) -> AsyncIterator[RunningService]:
    """Consume the CRISIS stream into ``processor`` and run its outbox relay and ``followers`` until exit."""
    broker = make_broker(settings)
    js = await connect_stream(broker, settings)
    publish = counting(durable, partial(publish_event, js))
    everyone = [outbox_relay(processor, publish), *followers]
    await refresh_durable(js, durable)
    ProcessorConsumer(processor, everyone, publish, durable=durable).subscribe(broker)
    await broker.start()
    tasks = [asyncio.create_task(f.run(), name=f.name) for f in everyone]
    probes = processor_probes(durable, broker, js, processor, durable)
    try:
        yield RunningService(broker, js, everyone, publish, probes)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await broker.stop()


async def until_signalled() -> None:
    """Wait for SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def configure_logging(service: str) -> None:
    """Log INFO and above to stderr as one JSON object per line (see services.runtime.observability)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # the SDK logs request headers and bodies (phone numbers, message text) at INFO
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    json_logs_only()  # faststream's lines, warnings and uncaught exceptions as JSON too
