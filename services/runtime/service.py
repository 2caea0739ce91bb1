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
from nats.js import JetStreamContext

from services.runtime.consumer import ProcessorConsumer
from services.runtime.processor import LogFollower, StreamProcessor, outbox_relay
from services.runtime.settings import RuntimeSettings
from services.runtime.stream import ensure_stream, publish_event

log = logging.getLogger(__name__)


def make_broker(settings: RuntimeSettings) -> NatsBroker:
    """A broker that keeps reconnecting for as long as the service runs."""
    return NatsBroker(
        [s.strip() for s in settings.nats_url.split(",")],
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        graceful_timeout=10.0,
        log_level=logging.DEBUG,  # per-message lines only when debugging
    )


async def connect_stream(broker: NatsBroker, settings: RuntimeSettings) -> JetStreamContext:
    """Connect (retrying until NATS answers) and make sure the CRISIS stream exists."""
    log.info("connecting to NATS and provisioning stream")
    await broker.connect()
    js = broker.config.connection_state.stream
    await ensure_stream(js, settings.stream_replicas)
    return js


@dataclass
class RunningService:
    broker: NatsBroker
    js: JetStreamContext
    followers: Sequence[LogFollower]


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
    publish = partial(publish_event, js)
    everyone = [outbox_relay(processor, publish), *followers]
    ProcessorConsumer(processor, everyone, publish, durable=durable).subscribe(broker)
    await broker.start()
    tasks = [asyncio.create_task(f.run(), name=f.name) for f in everyone]
    try:
        yield RunningService(broker, js, everyone)
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
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
    # the SDK logs request headers and bodies (phone numbers, message text) at INFO
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
