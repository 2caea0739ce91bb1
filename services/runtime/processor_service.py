"""A stream processor run as a service: connect, provision the stream, consume durably, run the outbox relay and
the other followers, report readiness, stop cleanly (on SIGINT or SIGTERM for a service process)."""

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

from services.contract.events import partition_count
from services.runtime.consumer import ProcessorConsumer
from services.runtime.nats_connection import connect_stream, make_broker
from services.runtime.observability import OpsProbes, Publish, broker_connected, consumer_lag, counting, store_answers
from services.runtime.partitions import partition_readers
from services.runtime.processor import Follower, StreamProcessor, outbox_relay
from services.runtime.settings import RuntimeSettings
from services.runtime.stream import publish_event

log = logging.getLogger(__name__)


@dataclass
class RunningService:
    broker: NatsBroker
    js: JetStreamContext
    followers: Sequence[Follower]
    """The outbox relay first, then the followers the service passed in."""
    publish: Publish
    """Appends an event to the stream, counted in crisis_events_published_total."""
    probes: OpsProbes
    """Readiness (NATS connection, the processor's store) and the consumer-lag gauge, for the ops routes."""


def processor_probes(
    service: str, broker: NatsBroker, js: JetStreamContext, processor: StreamProcessor, durable: str | Sequence[str]
) -> OpsProbes:
    """Ready when NATS is connected and the processor's store answers; lag read from its durable consumer(s)."""
    durables = [durable] if isinstance(durable, str) else list(durable)
    return OpsProbes(
        service,
        checks={"nats": broker_connected(broker), "store": store_answers(processor.recorder.datastore)},
        refreshers=[consumer_lag(js, durables)],
    )


@contextlib.asynccontextmanager
async def running_processor(
    settings: RuntimeSettings,
    processor: StreamProcessor,
    *,
    durable: str,
    followers: Sequence[Follower] = (),
) -> AsyncIterator[RunningService]:
    """Consume the CRISIS stream into ``processor`` and run its outbox relay and ``followers`` until exit.

    A processor whose ``partitioned`` is True is read with a durable per partition (``CRISIS_PARTITIONS``) and one
    for the events in no partition (partitions.py), so that several instances work on different incidents at once;
    else one durable.
    Each follower runs as its own task and is woken after every consumed message (or batch); on exit the tasks are
    cancelled (and awaited) before the broker stops."""
    broker = make_broker(settings)
    js = await connect_stream(broker, settings)
    publish = counting(durable, partial(publish_event, js))
    everyone = [outbox_relay(processor, publish), *followers]
    if processor.partitioned:
        count = partition_count()
        consumers = await partition_readers(js, processor, everyone, publish, durable=durable, count=count)
    else:
        consumers = [ProcessorConsumer(processor, everyone, publish, durable=durable)]
    for consumer in consumers:
        await consumer.refresh(js)  # a durable an older version made: today's ack wait and filter
        consumer.subscribe(broker)
    await broker.start()
    tasks = [asyncio.create_task(f.run(), name=f.name) for f in everyone]
    probes = processor_probes(durable, broker, js, processor, [c.durable for c in consumers])
    try:
        yield RunningService(broker, js, everyone, publish, probes)
    finally:
        for consumer in consumers:
            await consumer.close()
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
