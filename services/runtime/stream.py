"""The CRISIS stream: provisioning and publishing.

The stream is the record: file storage, no age limit by default, a de-duplication window so a
re-publish after a crash (same event id = same Nats-Msg-Id) is stored once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError, ServiceUnavailableError

from services.contract.events import SUBJECT_PREFIX, Envelope

STREAM_NAME = "CRISIS"
DUPLICATE_WINDOW_SECONDS = 300.0

log = logging.getLogger(__name__)
T = TypeVar("T")
NOT_ANSWERING = (NatsTimeoutError, NoRespondersError, ServiceUnavailableError)
"""JetStream cannot answer yet: a server just restarted, a cluster still electing its leaders."""


def crisis_stream_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=STREAM_NAME,
        subjects=[f"{SUBJECT_PREFIX}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_age=0,  # no age limit: the stream is the record
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )


async def ensure_stream(js: JetStreamContext, replicas: int = 1) -> StreamConfig:
    """Create the CRISIS stream, or bring an existing one to the wanted settings. Safe to call on every start."""
    wanted = crisis_stream_config(replicas)
    try:
        info = await js.stream_info(STREAM_NAME)
    except NotFoundError:
        info = await js.add_stream(wanted)
        log.info("created stream %s", STREAM_NAME)
        return info.config
    current = info.config
    if (
        current.subjects != wanted.subjects
        or current.duplicate_window != wanted.duplicate_window
        or current.num_replicas != wanted.num_replicas
    ):
        info = await js.update_stream(wanted)
        log.info("updated stream %s", STREAM_NAME)
    return info.config


async def until_jetstream_answers(setup: Callable[[], Awaitable[T]], what: str) -> T:
    """Run an idempotent provisioning step (the stream, KV buckets), again and again while JetStream cannot
    answer yet: a service starting beside a restarting server or a forming cluster waits, it does not exit."""
    attempt = 0
    while True:
        try:
            return await setup()
        except NOT_ANSWERING as exc:
            attempt += 1
            log.warning("%s: JetStream not answering yet (%s, attempt %s)", what, type(exc).__name__, attempt)
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))


async def publish_event(js: JetStreamContext, event: Envelope) -> int:
    """Append one event; returns its stream sequence. Raises on failure: the caller retries or nacks."""
    ack = await js.publish(
        event.subject,
        event.to_json(),
        stream=STREAM_NAME,
        headers={"Nats-Msg-Id": str(event.id), "Content-Type": "application/json"},
    )
    return ack.seq
