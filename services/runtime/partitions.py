"""Partitions by incident: several durables feed one processor, so that instances work on different incidents at once.

With ``CRISIS_PARTITIONS`` = P > 1, an event about an incident is published on ``crisis.p<k>of<P>.<type>``
(``Envelope.subject``; k from the incident id), the rest (roster, schedule, inbound SMS) on ``crisis.<type>``. A
partitioned service (the dispatcher) then reads with P + 1 durables, each one message in flight, each with its own
tracking name, all applied by the one processor and store:

- ``<durable>`` (the name it had before partitions, so an upgrade keeps its position): the events in no partition,
  and those stored before partitions (``filter_subjects(..., partition=None)``); tracked as ``CRISIS``;
- ``<durable>-p<k>of<P>``: partition k's events, and the events in no partition as a **barrier**: such an event
  is acked only once the first durable applied it (its tracking position or its ack floor reached it), and nacked
  for a moment until then, so a roster or schedule change reaches every partition's reader in stream order (an
  incident is never decided on a roster older than the events before it); tracked as ``CRISIS/p<k>of<P>``.

Every instance reads every durable: each durable hands out one message at a time to whichever instance asks, so
two instances work on two partitions at once, and when one dies its message in flight comes back to another after
the ack wait (exactly once in effect: tracking per durable, conflicts between instances writing one aggregate are
caught by the store's optimistic concurrency and retried).

Changing P (deploy/README.md): the count is part of the partition token, so a new count's subjects and durables
never overlap an old one's. A service started with a new count finds the durables of other counts on the server and
reads them too (so nothing published under the old count is lost), and starts its new partitions' readers only
once those are empty, so that an incident's old events are applied before its new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from services.contract.events import SUBJECT_PREFIX, Envelope, partition_token
from services.runtime.consumer import ProcessorConsumer, confirm_ack, filter_subjects, working_on
from services.runtime.processor import Follower, StreamProcessor
from services.runtime.stream import STREAM_NAME

log = logging.getLogger(__name__)

BARRIER_RETRY_SECONDS = 0.05
"""How soon an event in no partition is offered again to a partition's reader that must wait for it."""
DRAIN_POLL_SECONDS = 0.2


def partition_upstream(token: str) -> str:
    return f"{STREAM_NAME}/{token}"


def in_partition(subject: str) -> bool:
    """True for ``crisis.p<k>of<P>.<type>``; False for ``crisis.<type>`` (no partition)."""
    second = subject.removeprefix(f"{SUBJECT_PREFIX}.").split(".", 1)[0]
    return _TOKEN.fullmatch(second) is not None


_TOKEN = re.compile(r"p(\d+)of(\d+)")


class PartitionReader(ProcessorConsumer):
    """One durable of a partitioned processor, pulled one message at a time on its own task.

    ``barrier_on``: the durable whose applying an event in no partition this reader waits for (None for that durable
    itself). ``after``: awaited before the first pull (the durables of an older count drained)."""

    def __init__(
        self,
        processor: StreamProcessor,
        *args: Any,
        token: str | None,
        barrier_on: str | None,
        after: Callable[[], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> None:
        """``args`` and ``kwargs``: ``ProcessorConsumer``'s (followers, publish, durable); the filter and the tracking
        name are the partition's."""
        subjects = filter_subjects(type(processor), partition=token)
        upstream = partition_upstream(token) if token else STREAM_NAME
        super().__init__(processor, *args, subjects=subjects, upstream=upstream, **kwargs)
        self.token = token
        self.barrier_on = barrier_on
        self.after = after

    async def deliver(self, payload: bytes, subject: str, sequence: int, attempt: int, stored_at=None) -> float | None:  # noqa: ANN001
        if self.barrier_on is not None and not in_partition(subject):
            return None if await self.passed(sequence) else BARRIER_RETRY_SECONDS
        return await super().deliver(payload, subject, sequence, attempt, stored_at)

    async def passed(self, sequence: int) -> bool:
        """True once the durable reading events in no partition has applied (or settled) the one at ``sequence``."""
        recorder = self.processor.recorder
        if (await asyncio.to_thread(recorder.max_tracking_id, STREAM_NAME) or 0) >= sequence:
            return True
        try:  # settled without a position recorded: dead-lettered, or the last of its kind
            info = await self.js.consumer_info(STREAM_NAME, self.barrier_on)
        except (NatsError, TimeoutError):
            return False
        return info.ack_floor.stream_seq >= sequence

    def subscribe(self, broker) -> None:  # noqa: ANN001 - pulled on refresh's connection, not by the broker
        if self.js is None:
            raise RuntimeError("refresh(js) the durable before subscribing")
        self.pulling = asyncio.create_task(self.pull_one_at_a_time(self.js), name=f"{self.durable}-reader")

    async def refresh(self, js: JetStreamContext) -> None:
        self.js = js
        await super().refresh(js)
        with contextlib.suppress(NotFoundError):
            await js.consumer_info(STREAM_NAME, self.durable)
            return
        config = self.config()
        config.durable_name = self.durable
        start = await self.first_needed(js)
        if start > 1:
            config.deliver_policy, config.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, start
        await js.add_consumer(STREAM_NAME, config)

    async def first_needed(self, js: JetStreamContext) -> int:
        """Where a new partition's durable starts: at its partition's first event, or after what the durable for
        events in no partition has settled, whichever is first. (Those events are a barrier only: one settled
        already would be passed at once, so a partition added to a long history does not read the history.)"""
        if self.token is None or self.barrier_on is None:
            return 1
        try:
            settled = (await js.consumer_info(STREAM_NAME, self.barrier_on)).ack_floor.stream_seq
        except NotFoundError:
            return 1
        try:
            first = (await js.get_msg(STREAM_NAME, seq=1, subject=f"{SUBJECT_PREFIX}.{self.token}.>", next=True)).seq
        except NotFoundError:
            first = None
        return max(1, min(settled + 1, first or settled + 1))

    async def pull_one_at_a_time(self, js: JetStreamContext) -> None:
        if self.after is not None:
            await self.after()
        self.puller = puller = await js.pull_subscribe_bind(durable=self.durable, stream=STREAM_NAME)
        while True:
            try:
                messages = await puller.fetch(1, timeout=1.0)
            except ConnectionClosedError:
                return
            except (NatsError, TimeoutError):
                continue
            for message in messages:
                try:
                    await self._settle(message)
                except ConnectionClosedError:
                    return
                except Exception:  # the loop must outlive any one message: what was not acked comes again
                    log.exception("%s: delivery failed; the message will be redelivered", self.durable)

    async def _settle(self, message: Msg) -> None:
        async with working_on(message):
            delay = await self.deliver_message(message)
        if delay is None:
            await confirm_ack(message)
        else:
            with contextlib.suppress(NatsError, TimeoutError):
                await message.nak(delay=delay)


async def partition_readers(
    js: JetStreamContext,
    processor: StreamProcessor,
    followers: Sequence[Follower],
    publish: Callable[[Envelope], Awaitable[int]],
    *,
    durable: str,
    count: int,
) -> list[ProcessorConsumer]:
    """The durables that feed a partitioned ``processor`` with ``count`` partitions: the one for events in no
    partition (named ``durable``), one per partition, and any of another count found on the server (read until
    they are empty, before this count's partitions start). With one partition and none of another count: the one
    durable, as without partitions."""
    others = await other_counts(js, durable, count)
    if count == 1 and not others:
        return [
            ProcessorConsumer(
                processor,
                followers,
                publish,
                durable=durable,
                subjects=filter_subjects(type(processor), partition=None),
            )
        ]

    def reader(name: str, token: str | None, after: Callable[[], Awaitable[None]] | None = None) -> PartitionReader:
        barrier = None if token is None else durable
        return PartitionReader(
            processor, followers, publish, durable=name, token=token, barrier_on=barrier, after=after
        )

    async def others_drained() -> None:
        await drained(js, others)

    readers = [reader(durable, None)]
    readers += [reader(name, token) for name, token in others.items()]
    for index in range(count if count > 1 else 0):
        token = partition_token(index, count)
        readers.append(reader(f"{durable}-{token}", token, others_drained if others else None))
    return readers


async def other_counts(js: JetStreamContext, durable: str, count: int) -> dict[str, str]:
    """Durables of ``durable``'s partitions under another count than ``count``: name -> partition token."""
    pattern = re.compile(rf"{re.escape(durable)}-(p\d+of(\d+))")
    found = {}
    for info in await js.consumers_info(STREAM_NAME):
        match = pattern.fullmatch(info.name)
        if match and int(match.group(2)) != count:
            found[info.name] = match.group(1)
    if found:
        log.warning(
            "%s: reading %s durable(s) of another partition count first: %s", durable, len(found), sorted(found)
        )
    return found


async def drained(js: JetStreamContext, durables: Sequence[str] | dict[str, str]) -> None:
    """Wait until every one of ``durables`` has nothing pending and nothing in flight."""
    waiting = set(durables)
    while waiting:
        for name in sorted(waiting):
            try:
                info = await js.consumer_info(STREAM_NAME, name)
            except NotFoundError:
                waiting.discard(name)
                continue
            except (NatsError, TimeoutError):
                continue
            if info.num_pending == 0 and info.num_ack_pending == 0:
                waiting.discard(name)
        if waiting:
            await asyncio.sleep(DRAIN_POLL_SECONDS)
    log.info("the durables of the other partition count are empty")
