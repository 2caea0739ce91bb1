"""Filtered durables on a real nats-server: the dispatcher is never sent a delivery status, and a durable an older
version made (reading all of ``crisis.>``) is narrowed in place at start and goes on from where it was."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import uuid4

from nats.js.api import AckPolicy, ConsumerConfig

from services.contract.events import Envelope, SmsStatusUpdated, SmsStatusUpdatedData, decode_event, new_event
from services.dispatcher.application import Dispatcher
from services.dispatcher.bootstrap import build as build_dispatcher
from services.dispatcher.settings import DispatcherSettings
from services.notifier.application import Notifier
from services.notifier.bootstrap import build as build_notifier
from services.runtime.clock import ManualClock
from services.runtime.consumer import ACK_WAIT_SECONDS, filter_subjects, refresh_durable
from services.runtime.processor_service import running_processor
from services.runtime.stream import STREAM_NAME, publish_event
from tests.dispatch_factories import registered, responder
from tests.factories import T0, fake_phone
from tests.integration.test_notifier import settings_for as notifier_settings
from tests.support.stream import tracked, wait_for_consumer_to_drain

DURABLE = "dispatcher"


def status(value: str) -> Envelope:
    data = SmsStatusUpdatedData(message_sid=f"SM{uuid4().hex}", status=value, to=fake_phone())
    return new_event(SmsStatusUpdated, data, event_id=uuid4(), occurred_at=T0, producer="intake_gateway")


def settings_for(nats_url: str, tmp_path: Path) -> DispatcherSettings:
    return DispatcherSettings(nats_url=nats_url, var_dir=tmp_path, roster_seed_file=None)


def recording(dispatcher: Dispatcher) -> list[tuple[int, str]]:
    """Every message the consumer hands ``dispatcher``: (stream sequence, event type), redeliveries included."""
    seen: list[tuple[int, str]] = []
    handle = dispatcher.handle

    def handle_and_note(event: Envelope, stream_sequence: int) -> bool:
        seen.append((stream_sequence, event.type))
        return handle(event, stream_sequence)

    dispatcher.handle = handle_and_note  # type: ignore[method-assign]
    return seen


async def test_the_dispatchers_durable_is_never_sent_a_delivery_status(js, nats_server, tmp_path: Path) -> None:
    settings = settings_for(nats_server.url, tmp_path)
    with build_dispatcher(settings, ManualClock(T0)) as dispatcher:
        seen = recording(dispatcher)
        async with running_processor(settings, dispatcher, durable=DURABLE):
            first = await publish_event(js, registered(responder()))
            for value in ("queued", "sent", "delivered", "undelivered"):
                await publish_event(js, status(value))
            last = await publish_event(js, registered(responder()))
            await tracked(dispatcher.recorder, last)
            await wait_for_consumer_to_drain(js, last, DURABLE)
            info = await js.consumer_info(STREAM_NAME, DURABLE)
        position = dispatcher.processed_position()

    assert seen == [(first, "responder.registered"), (last, "responder.registered")]
    assert sorted(info.config.filter_subjects) == filter_subjects(Dispatcher, partition=None)
    assert "crisis.sms.status_updated" not in info.config.filter_subjects
    # the server gave the durable two messages in all: the statuses between them were never delivered
    assert (info.delivered.consumer_seq, info.delivered.stream_seq, info.num_pending) == (2, last, 0)
    assert position == last  # the gap in sequence numbers is no obstacle to tracking


async def test_an_older_versions_durable_is_narrowed_in_place_and_resumes_where_it_was(
    js, nats_server, tmp_path: Path
) -> None:
    old = ConsumerConfig(
        durable_name=DURABLE,
        ack_wait=60,
        max_ack_pending=1,
        max_deliver=-1,
        filter_subject="crisis.>",
        ack_policy=AckPolicy.EXPLICIT,
    )
    await js.add_consumer(STREAM_NAME, old)
    settings = settings_for(nats_server.url, tmp_path)
    with build_dispatcher(settings, ManualClock(T0)) as dispatcher:
        seen = recording(dispatcher)
        # the older version took the first two messages from its unfiltered durable, a status among them
        taken = [await publish_event(js, registered(responder())), await publish_event(js, status("sent"))]
        subscription = await js.pull_subscribe_bind(durable=DURABLE, stream=STREAM_NAME)
        for _ in taken:
            [message] = await subscription.fetch(1, timeout=5)
            await asyncio.to_thread(dispatcher.handle, decode_event(message.data), message.metadata.sequence.stream)
            await message.ack_sync()
        await subscription.unsubscribe()
        assert [seq for seq, _ in seen] == taken
        seen.clear()
        # published while no instance ran: the upgrade starts with these waiting
        waiting = [
            await publish_event(js, registered(responder())),
            await publish_event(js, status("delivered")),
            await publish_event(js, registered(responder())),
        ]

        async with running_processor(settings, dispatcher, durable=DURABLE):
            await tracked(dispatcher.recorder, waiting[-1])
            await wait_for_consumer_to_drain(js, waiting[-1], DURABLE)
            info = await js.consumer_info(STREAM_NAME, DURABLE)
        position = dispatcher.processed_position()

    config = info.config
    assert sorted(config.filter_subjects) == filter_subjects(Dispatcher, partition=None) and not config.filter_subject
    assert config.ack_wait == ACK_WAIT_SECONDS
    # from the next message after the last one it was given: nothing again, nothing skipped, no status
    assert seen == [(waiting[0], "responder.registered"), (waiting[2], "responder.registered")]
    assert info.delivered.stream_seq == waiting[2] and info.num_redelivered == 0
    assert position == waiting[2]


async def test_a_durable_given_more_types_reads_them_from_its_position_on(js) -> None:
    """A filter an older version made narrower (a handler added since) is widened in place: the new type's
    messages after the durable's position are read, the earlier ones are not (as for any handler added later)."""
    older = ["crisis.incident.reported"]
    today = ["crisis.incident.reported", "crisis.sms.received"]
    await js.add_consumer(
        STREAM_NAME, ConsumerConfig(durable_name="narrow", filter_subjects=older, ack_policy=AckPolicy.EXPLICIT)
    )
    await js.publish("crisis.sms.received", b"{}")  # not the durable's then: never delivered (fetched below)
    given = await js.publish("crisis.incident.reported", b"{}")
    subscription = await js.pull_subscribe_bind(durable="narrow", stream=STREAM_NAME)
    [message] = await subscription.fetch(1, timeout=5)
    assert message.metadata.sequence.stream == given.seq
    await message.ack_sync()
    await subscription.unsubscribe()
    after = [await js.publish("crisis.sms.received", b"{}"), await js.publish("crisis.incident.reported", b"{}")]

    await refresh_durable(js, "narrow", today)
    info = await js.consumer_info(STREAM_NAME, "narrow")
    assert sorted(info.config.filter_subjects) == today and info.config.ack_wait == ACK_WAIT_SECONDS
    assert (info.delivered.stream_seq, info.num_pending) == (given.seq, 2)

    subscription = await js.pull_subscribe_bind(durable="narrow", stream=STREAM_NAME)
    messages = await subscription.fetch(2, timeout=5)
    assert [m.metadata.sequence.stream for m in messages] == [a.seq for a in after]
    for message in messages:
        await message.ack_sync()
    await subscription.unsubscribe()

    await refresh_durable(js, "narrow", today)  # up to date: left as it is
    again = await js.consumer_info(STREAM_NAME, "narrow")
    assert sorted(again.config.filter_subjects) == today and again.created == info.created
    assert (again.delivered.stream_seq, again.ack_floor.stream_seq) == (after[-1].seq, after[-1].seq)


async def test_the_notifiers_durable_is_sent_only_failed_deliveries(js, nats_server, tmp_path: Path) -> None:
    """Status callbacks are published on their outcome's sub-subject; the notifier acts on failures only and is sent
    only those (and any status stored before the split, on the bare subject, as an upgraded stream may hold)."""
    settings = notifier_settings(tmp_path, "http://127.0.0.1:9", nats_url=nats_server.url)
    with build_notifier(settings, ManualClock(T0)) as notifier:
        seen = recording(notifier)
        async with running_processor(settings, notifier, durable="notifier"):
            published = {value: await publish_event(js, status(value)) for value in ("queued", "sent", "delivered")}
            published["undelivered"] = await publish_event(js, status("undelivered"))
            older = status("failed")  # as a version before the split published it
            ack = await js.publish("crisis.sms.status_updated", older.to_json(), headers={"Nats-Msg-Id": str(older.id)})
            published["failed"] = await publish_event(js, status("failed"))
            last = published["failed"]
            await tracked(notifier.recorder, last)
            await wait_for_consumer_to_drain(js, last, "notifier")
            info = await js.consumer_info(STREAM_NAME, "notifier")

    assert seen == [
        (published["undelivered"], "sms.status_updated"),
        (ack.seq, "sms.status_updated"),
        (last, "sms.status_updated"),
    ]
    assert sorted(info.config.filter_subjects) == filter_subjects(Notifier)
    assert "crisis.sms.status_updated.progress" not in info.config.filter_subjects
