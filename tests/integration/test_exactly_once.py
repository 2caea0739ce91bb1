"""Redelivered messages change nothing: on SQLite and on PostgreSQL, through a real nats-server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from nats.js.api import DeliverPolicy

from services.contract.events import decode_event
from services.dispatcher.adapters.roster_seed import seed_events
from services.dispatcher.bootstrap import build as build_dispatcher
from services.dispatcher.settings import DispatcherSettings
from services.projections.bootstrap import build_projections
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from services.runtime.processor import LogFollower
from services.runtime.processor_service import running_processor
from services.runtime.stream import STREAM_NAME, publish_event
from tests import factories

ROSTER = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "roster.json"


async def stream_types(js, first: int = 1) -> list[str]:
    info = await js.stream_info(STREAM_NAME)
    return [
        decode_event((await js.get_msg(STREAM_NAME, seq)).data).type for seq in range(first, info.state.last_seq + 1)
    ]


async def wait_processed(processor, sequence: int) -> None:
    await asyncio.to_thread(processor.recorder.wait, STREAM_NAME, sequence, timeout=15)


async def publish_all(js, events) -> int:
    return max([await publish_event(js, e) for e in events])


async def test_dispatcher_redelivery_changes_nothing(js, nats_server, database_url: str, tmp_path: Path) -> None:
    settings = DispatcherSettings(
        nats_url=nats_server.url, var_dir=tmp_path, database_url=database_url, roster_seed_file=None
    )
    reported = factories.incident_reported()
    reply = factories.sms_received("+15550100001", f"Y {reported.data.short_code}")
    with build_dispatcher(settings, ManualClock(factories.T0)) as dispatcher:
        async with running_processor(settings, dispatcher, durable="dispatcher") as service:
            await publish_all(js, seed_events(ROSTER, factories.T0))
            first = await publish_event(js, reported)
            await wait_processed(dispatcher, first)
            second = await publish_event(js, reply)
            await wait_processed(dispatcher, second)
            for follower in service.followers:
                await follower.follow_once()
            stored_before = dispatcher.recorder.max_notification_id()
            on_stream_before = await stream_types(js)
            assert on_stream_before.count("dispatch.offered") == 2  # P1: the best two at once
            assert on_stream_before.count("dispatch.acknowledged") == 1
            assert on_stream_before.count("dispatch.withdrawn") == 1

            # the same events published again: the stream's Nats-Msg-Id window drops them
            assert await publish_event(js, reported) == first
        # a consumer that forgot its acks: every message is delivered again from sequence 1
        await js.delete_consumer(STREAM_NAME, "dispatcher")
        async with running_processor(settings, dispatcher, durable="dispatcher") as service:
            last = (await js.stream_info(STREAM_NAME)).state.last_seq
            consumer = await js.consumer_info(STREAM_NAME, "dispatcher")
            assert consumer.config.deliver_policy in (DeliverPolicy.ALL, None)
            await wait_for_consumer_to_drain(js, last)
            for follower in service.followers:
                await follower.follow_once()
            assert dispatcher.recorder.max_notification_id() == stored_before
            assert await stream_types(js) == on_stream_before


async def test_two_dispatcher_instances_never_double_page(js, nats_server, postgres_url: str, tmp_path: Path) -> None:
    """Two instances share the durable consumer and the store; both fire deadlines at the same moments."""
    settings = DispatcherSettings(
        nats_url=nats_server.url, var_dir=tmp_path, database_url=postgres_url, roster_seed_file=None
    )
    clock = ManualClock(factories.T0)
    incidents = [factories.incident_reported(short_code=f"{2000 + i}") for i in range(6)]
    with build_dispatcher(settings, clock) as one, build_dispatcher(settings, clock) as two:
        async with (
            running_processor(settings, one, durable="dispatcher") as first,
            running_processor(settings, two, durable="dispatcher") as second,
        ):
            await publish_all(js, seed_events(ROSTER, factories.T0))
            last = await publish_all(js, incidents)
            await wait_for_consumer_to_drain(js, last)
            for _ in range(3):  # step 1 times out, then the supervisor's page, then the director's
                clock.advance(timedelta(seconds=91))
                fired = await asyncio.gather(asyncio.to_thread(one.fire_due), asyncio.to_thread(two.fire_due))
                assert sum(fired) >= len(incidents)
            for follower in (*first.followers, *second.followers):
                if isinstance(follower, LogFollower):
                    while await follower.follow_once():
                        pass
    info = await js.stream_info(STREAM_NAME)
    offered = [
        event
        for seq in range(1, info.state.last_seq + 1)
        if (event := decode_event((await js.get_msg(STREAM_NAME, seq)).data)).type == "dispatch.offered"
    ]
    per_incident = {
        i.data.incident_id: [o for o in offered if o.data.incident_id == i.data.incident_id] for i in incidents
    }
    for pages in per_incident.values():
        # clinician A and peer B at once, then supervisor D, then director E: each exactly once
        assert sorted(o.data.responder_role for o in pages) == ["clinician", "director", "peer_coach", "supervisor"]
        assert len({o.data.page_id for o in pages}) == len(pages)


async def wait_for_consumer_to_drain(js, last: int, durable: str = "dispatcher") -> None:
    """Await the durable consumer's ack floor reaching the stream's last sequence (server-side state)."""
    for _ in range(300):
        info = await js.consumer_info(STREAM_NAME, durable)
        if info.ack_floor.stream_seq >= last and info.num_pending == 0 and info.num_ack_pending == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"consumer did not drain: {info}")


async def test_projection_redelivery_adds_no_timeline_entries(js, nats_server, database_url, tmp_path) -> None:
    settings = ProjectionsSettings(nats_url=nats_server.url, var_dir=tmp_path, database_url=database_url)
    reported = factories.incident_reported()
    sequence = await publish_event(js, reported)
    with build_projections(settings, ManualClock(factories.T0)) as projections:
        for _ in range(3):  # three deliveries of the same stream message
            async with running_processor(settings, projections, durable="projections"):
                await wait_processed(projections, sequence)
                await wait_for_consumer_to_drain(js, sequence, durable="projections")
            await js.delete_consumer(STREAM_NAME, "projections")
        entries = projections.timeline(reported.data.incident_id)
        assert [e["type"] for e in entries] == ["incident.reported"]
        assert projections.handle(reported, sequence) is False


async def test_unreadable_message_is_dead_lettered_with_its_reason(js, nats_server, tmp_path) -> None:
    settings = ProjectionsSettings(nats_url=nats_server.url, var_dir=tmp_path)
    ack = await js.publish("crisis.incident.reported", b'{"type": "incident.reported", "schema_version": 1}')
    after = await publish_event(js, factories.incident_reported())
    with build_projections(settings, ManualClock(factories.T0)) as projections:
        async with running_processor(settings, projections, durable="projections"):
            await wait_processed(projections, after)
    info = await js.stream_info(STREAM_NAME)
    dead = [decode_event((await js.get_msg(STREAM_NAME, s)).data) for s in range(after + 1, info.state.last_seq + 1)]
    assert [d.type for d in dead] == ["message.dead_lettered"]
    assert dead[0].data.stream_sequence == ack.seq
    assert dead[0].data.consumer == "projections"
    assert "invalid incident.reported" in dead[0].data.reason
