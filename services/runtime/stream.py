"""The CRISIS stream: provisioning and publishing.

The stream is the record: file storage, no age limit by default, a de-duplication window so a
re-publish after a crash (same event id = same Nats-Msg-Id) is stored once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from nats.errors import (
    ConnectionClosedError,
    ConnectionDrainingError,
    ConnectionReconnectingError,
    NoRespondersError,
    OutboundBufferLimitError,
)
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

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


# ---- answering a caller: recorded, not recorded, or not known -----------------------------------------------

NEVER_HANDED_OVER = (
    OutboundBufferLimitError,  # disconnected, and this connection buffers nothing (see make_broker)
    ConnectionClosedError,
    ConnectionDrainingError,
    ConnectionReconnectingError,
)
"""The client refused the publish before a byte left this process: it cannot reach the stream later."""

REFUSED_BY_SERVER = (NoRespondersError, APIError)
"""The server answered and did not store the message (no stream for the subject, JetStream unavailable, ...)."""


class NotRecorded(Exception):
    """The event is not on the stream and never will be: nothing was handed to NATS, or the server refused it.

    An HTTP route answers 503: the caller may retry, and nothing it asked for happens meanwhile."""

    def __init__(self, event_id: UUID) -> None:
        super().__init__(f"event {event_id} was not recorded")
        self.event_id = event_id


class OutcomeUnknown(Exception):
    """The event was handed to NATS but no acknowledgement came before the deadline, and NATS did not come back
    in time to ask again: it may be on the stream under ``event_id`` or not.

    An HTTP route answers 504 naming what it would have recorded. Re-publishing the same event (same id, so the
    same ``Nats-Msg-Id``) within the stream's de-duplication window stores it at most once: a retry with the
    same Idempotency-Key resolves it."""

    def __init__(self, event_id: UUID, incident_id: UUID | None) -> None:
        super().__init__(f"event {event_id}: outcome unknown")
        self.event_id = event_id
        self.incident_id = incident_id


ANSWER_BY: ContextVar[float | None] = ContextVar("crisis_answer_by", default=None)
"""The event-loop time by which the request being handled must have its answer (set by a route that promised
it, e.g. to an Idempotency-Key claim that lasts exactly that long); None: ``deadline_seconds`` from the publish."""


@dataclass(frozen=True)
class AnsweredPublisher:
    """Appends an event on behalf of someone waiting for an answer, so that the answer means what it says.

    ``publish`` returns the stream sequence once the stream acknowledged the event (stored, or already stored
    under the same id). While NATS is unreachable it waits for it up to ``deadline_seconds``, re-publishing the
    same event (de-duplicated by the stream) after an unacknowledged attempt. Then:

    - ``NotRecorded`` if no attempt was ever handed to NATS (the connection must buffer nothing while
      disconnected, see ``make_broker(buffered=False)``) or the server refused it: the event never lands;
    - ``OutcomeUnknown`` if an attempt was handed over and never acknowledged.
    """

    js: JetStreamContext
    connected: Callable[[], bool]
    deadline_seconds: float = 10.0
    attempt_timeout_seconds: float = 5.0
    poll_seconds: float = 0.05

    async def publish(self, event: Envelope) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_seconds
        if (answer_by := ANSWER_BY.get()) is not None:
            deadline = min(deadline, answer_by)
        payload = event.to_json()
        handed_over = False
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            if not self.connected():
                await asyncio.sleep(min(self.poll_seconds, remaining))  # nats-py offers no awaitable for it
                continue
            try:
                ack = await self.js.publish(
                    event.subject,
                    payload,
                    stream=STREAM_NAME,
                    timeout=max(0.05, min(self.attempt_timeout_seconds, remaining)),
                    headers={"Nats-Msg-Id": str(event.id), "Content-Type": "application/json"},
                )
                return ack.seq
            except NEVER_HANDED_OVER:
                pass  # disconnected between the check and the publish: nothing left this process
            except REFUSED_BY_SERVER as exc:
                if not handed_over:
                    log.error("the stream refused event %s (%s)", event.type, type(exc).__name__)
                    raise NotRecorded(event.id) from exc
                # an earlier attempt may have landed; only an acknowledgement can tell
            except Exception as exc:  # noqa: BLE001 - a timeout or a lost connection after the bytes left
                handed_over = True
                log.warning("no acknowledgement for event %s yet (%s)", event.type, type(exc).__name__)
            await asyncio.sleep(min(self.poll_seconds, max(0.0, deadline - loop.time())))
        if handed_over:
            raise OutcomeUnknown(event.id, event.incident_id)
        raise NotRecorded(event.id)
