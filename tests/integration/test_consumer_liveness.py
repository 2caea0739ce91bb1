"""A consumer's ack wait: short enough that a delivery lost with a dying node stalls little, and kept alive by
in-progress heartbeats while a handler is slow, so a slow message is not handed to another instance.

The server's ack timer runs on real time: these tests wait a few seconds of it.
"""

from __future__ import annotations

import asyncio

import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from services.runtime import consumer
from services.runtime.consumer import ACK_WAIT_SECONDS, refresh_durable, working_on
from services.runtime.stream import STREAM_NAME


async def test_a_durable_made_by_an_older_version_gets_todays_ack_wait(js) -> None:
    old = ConsumerConfig(
        durable_name="older", ack_wait=60, max_ack_pending=1, filter_subject="crisis.>", ack_policy=AckPolicy.EXPLICIT
    )
    await js.add_consumer(STREAM_NAME, old)
    await refresh_durable(js, "older")
    refreshed = (await js.consumer_info(STREAM_NAME, "older")).config
    assert refreshed.ack_wait == ACK_WAIT_SECONDS
    assert (refreshed.max_ack_pending, refreshed.filter_subject) == (1, "crisis.>")  # nothing else changed
    await refresh_durable(js, "not-made-yet")  # the subscriber creates it, with today's settings


async def test_a_slow_handler_keeps_its_message_and_a_silent_one_loses_it(js, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer, "PROGRESS_INTERVAL_SECONDS", 0.2)
    config = ConsumerConfig(ack_wait=1, max_ack_pending=1, ack_policy=AckPolicy.EXPLICIT)
    subscription = await js.pull_subscribe("crisis.>", durable="slow", stream=STREAM_NAME, config=config)
    await js.publish("crisis.test.slow", b"{}")
    [message] = await subscription.fetch(1, timeout=5)
    async with working_on(message):
        await asyncio.sleep(2.5)  # the handler's slow work: two and a half ack waits
    info = await js.consumer_info(STREAM_NAME, "slow")
    assert (info.num_redelivered, info.num_ack_pending) == (0, 1)
    await message.ack_sync()

    await js.publish("crisis.test.silent", b"{}")
    [silent] = await subscription.fetch(1, timeout=5)
    # no heartbeat: once the ack wait runs out the server delivers it again, which this fetch awaits
    [again] = await subscription.fetch(1, timeout=5)
    assert again.metadata.sequence.stream == silent.metadata.sequence.stream and again.metadata.num_delivered == 2
    await again.ack_sync()
