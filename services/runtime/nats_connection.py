"""The one place that opens NATS connections and hands out the nats-py client and JetStream context under them.

A service connects once, through a FastStream ``NatsBroker`` (``make_broker``): FastStream carries the durable
consumers, and the same connection serves every raw nats-py call (publishing with ``Nats-Msg-Id``, KV buckets,
stream provisioning). Code that needs the raw client or JetStream context asks for it here (``nats_client``,
``jetstream``), so only this module knows where FastStream keeps them.
"""

from __future__ import annotations

import logging

from faststream.exceptions import IncorrectState
from faststream.nats import NatsBroker
from nats.aio.client import DEFAULT_PENDING_SIZE, Client
from nats.js import JetStreamContext

from services.runtime.settings import RuntimeSettings
from services.runtime.stream import AnsweredPublisher, ensure_stream, until_jetstream_answers

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


def nats_client(broker: NatsBroker) -> Client | None:
    """The nats-py client under ``broker``; None before it connected or after it stopped."""
    try:
        return broker.config.connection_state.connection
    except IncorrectState:
        return None


def jetstream(broker: NatsBroker) -> JetStreamContext:
    """The JetStream context of ``broker``'s connection. Raises ``IncorrectState`` before it connected."""
    return broker.config.connection_state.stream


def is_connected(broker: NatsBroker) -> bool:
    """True while ``broker``'s connection is up (not reconnecting, not closed)."""
    client = nats_client(broker)
    return client is not None and bool(client.is_connected)


async def connect_stream(broker: NatsBroker, settings: RuntimeSettings) -> JetStreamContext:
    """Connect (retrying until NATS answers) and make sure the CRISIS stream exists."""
    log.info("connecting to NATS and provisioning stream")
    await broker.connect()
    js = jetstream(broker)
    await until_jetstream_answers(lambda: ensure_stream(js, settings.stream_replicas), "stream provisioning")
    return js


def answered_publisher(broker: NatsBroker, js: JetStreamContext, settings: RuntimeSettings) -> AnsweredPublisher:
    """Publishing for routes that answer a caller: recorded (the sequence), NotRecorded or OutcomeUnknown.
    ``broker`` must be unbuffered (``make_broker(settings, buffered=False)``)."""
    return AnsweredPublisher(js, lambda: is_connected(broker), deadline_seconds=settings.publish_deadline_seconds)
