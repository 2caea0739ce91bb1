"""Redelivered messages change nothing: on SQLite and on PostgreSQL, through a real nats-server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from nats.js.api import DeliverPolicy

from services.contract.events import PARTITIONS_ENV
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
from tests.support.stream import (
    publish_all,
    stream_events,
    stream_types,
    tracked,
    wait_for_consumer_to_drain,
)

ROSTER = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "roster.json"


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
            await tracked(dispatcher.recorder, first)
            second = await publish_event(js, reply)
            await tracked(dispatcher.recorder, second)
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
            await wait_for_consumer_to_drain(js, last, "dispatcher")
            for follower in service.followers:
                await follower.follow_once()
            assert dispatcher.recorder.max_notification_id() == stored_before
            assert await stream_types(js) == on_stream_before


@pytest.mark.parametrize("partitions", [1, 4])
async def test_two_dispatcher_instances_never_double_page(
    js, nats_server, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, partitions: int
) -> None:
    """Two instances share the durable consumer(s) and the store; both fire deadlines at the same moments. With four
    partitions (issue 16) they share the five durables and work on two incidents at once."""
    monkeypatch.setenv(PARTITIONS_ENV, str(partitions))
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
            for durable in await js.consumers_info(STREAM_NAME):
                await wait_for_consumer_to_drain(js, last, durable.name)
            for _ in range(3):  # step 1 times out, then the supervisor's page, then the director's
                clock.advance(timedelta(seconds=91))
                fired = await asyncio.gather(asyncio.to_thread(one.fire_due), asyncio.to_thread(two.fire_due))
                assert sum(fired) >= len(incidents)
            for follower in (*first.followers, *second.followers):
                if isinstance(follower, LogFollower):
                    while await follower.follow_once():
                        pass
    offered = [event for event in await stream_events(js) if event.type == "dispatch.offered"]
    per_incident = {
        i.data.incident_id: [o for o in offered if o.data.incident_id == i.data.incident_id] for i in incidents
    }
    for pages in per_incident.values():
        # clinician A and peer B at once, then supervisor D, then director E: each exactly once
        assert sorted(o.data.responder_role for o in pages) == ["clinician", "director", "peer_coach", "supervisor"]
        assert len({o.data.page_id for o in pages}) == len(pages)


async def test_projection_redelivery_adds_no_timeline_entries(js, nats_server, database_url, tmp_path) -> None:
    settings = ProjectionsSettings(nats_url=nats_server.url, var_dir=tmp_path, database_url=database_url)
    reported = factories.incident_reported()
    sequence = await publish_event(js, reported)
    with build_projections(settings, ManualClock(factories.T0)) as projections:
        for _ in range(3):  # three deliveries of the same stream message
            async with running_processor(settings, projections, durable="projections"):
                await tracked(projections.recorder, sequence)
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
            await tracked(projections.recorder, after)
    dead = await stream_events(js, after + 1)
    assert [d.type for d in dead] == ["message.dead_lettered"]
    assert dead[0].data.stream_sequence == ack.seq
    assert dead[0].data.consumer == "projections"
    assert "invalid incident.reported" in dead[0].data.reason
