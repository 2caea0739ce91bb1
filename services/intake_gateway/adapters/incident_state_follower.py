"""Keeps ``intake_incidents`` in step with the CRISIS stream: the gateway's one durable consumer.

It reads ``incident.reported``, ``incident.cancelled``, ``dispatch.completed`` and ``dispatch.offered``: it
closes incidents the dispatcher completed, records who was paged, and repairs the bucket if a gateway crashed
between appending an event and writing the bucket (every change it makes is idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from services.contract.events import (
    DispatchCompleted,
    DispatchOffered,
    IncidentCancelled,
    IncidentReported,
    UnreadableMessage,
    decode_event,
)
from services.intake_gateway.adapters.incident_states_kv import KvIncidentStates
from services.runtime.background import run_forever
from services.runtime.stream import STREAM_NAME

log = logging.getLogger(__name__)

FOLLOWER_DURABLE = "intake_gateway_incident_state"


class IncidentStateFollower:
    """Keeps ``intake_incidents`` in step with the stream: reports open, cancellations and completions close."""

    SUBJECTS = [  # in no partition and in any (CRISIS_PARTITIONS; who was paged may change the incident)
        subject
        for event_class in (IncidentReported, IncidentCancelled, DispatchCompleted, DispatchOffered)
        for subject in event_class.type_subjects()
    ]

    def __init__(self, js: JetStreamContext, states: KvIncidentStates, durable: str = FOLLOWER_DURABLE) -> None:
        self.js = js
        self.states = states
        self.durable = durable
        self._subscription = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        config = ConsumerConfig(
            durable_name=self.durable,
            filter_subjects=self.SUBJECTS,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30,
            max_deliver=-1,
        )
        try:
            current = await self.js.consumer_info(STREAM_NAME, self.durable)
        except NotFoundError:
            current = None
        if current is not None and sorted(current.config.filter_subjects or []) != sorted(self.SUBJECTS):
            # an older version's durable reads fewer subjects: read the stream again from the start (every
            # change here is idempotent), so relations recorded before the upgrade are known too
            log.info("incident-state follower: subjects changed, re-reading the stream")
            await self.js.delete_consumer(STREAM_NAME, self.durable)
        await self.js.add_consumer(STREAM_NAME, config)
        self._subscription = await self.js.pull_subscribe_bind(durable=self.durable, stream=STREAM_NAME)
        self._task = asyncio.create_task(
            run_forever(self._read_batch, None, name="incident-state follower"), name="intake-incident-state"
        )

    async def _read_batch(self) -> float:
        """One turn of the follower (run by ``run_forever``): settle what arrived within a second, go again.

        A fetch that fails for another reason than "nothing new" (a lost connection: nats-py reconnects) is
        raised, and ``run_forever`` tries again after a backoff."""
        try:
            messages = await self._subscription.fetch(batch=64, timeout=1)
        except (NatsTimeout, TimeoutError):
            return 0
        for message in messages:
            try:
                await self._handle(message)
            except Exception as exc:  # noqa: BLE001 - an ack lost with the connection: redelivered later
                log.warning("incident-state follower: could not settle a message (%s)", type(exc).__name__)
        return 0

    async def _handle(self, message) -> None:  # noqa: ANN001 - a nats-py JetStream message
        try:
            event = decode_event(message.data)
        except UnreadableMessage:
            await message.ack()  # the other services dead-letter it; there is nothing here to learn from it
            return
        try:
            if isinstance(event, IncidentReported):
                data = event.data
                await self.states.opened(data.incident_id, data.kind.value, event.occurred_at, data.reported_by)
            elif isinstance(event, DispatchOffered):
                await self.states.paged(event.data.incident_id, event.data.responder_id)
            elif isinstance(event, IncidentCancelled):
                await self.states.close(event.data.incident_id, "cancelled", event.occurred_at)
            elif isinstance(event, DispatchCompleted) and event.data.closes_incident:
                await self.states.close(event.data.incident_id, "completed", event.occurred_at)
        except Exception as exc:  # noqa: BLE001 - retried: the message stays until the bucket has it
            log.warning(
                "incident-state follower: seq %s failed (%s)", message.metadata.sequence.stream, type(exc).__name__
            )
            await message.nak(delay=1)
            return
        await message.ack()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=5)
        if self._subscription is not None:
            # before the connection drains: a pull subscription left open makes drain wait its full timeout
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
