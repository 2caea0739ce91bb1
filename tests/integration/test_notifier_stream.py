"""The notifier as it runs in production: a durable consumer of the real stream, its send queue as a
follower, outcomes published through the outbox; a redelivered stream changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from services.contract.events import decode_event
from services.notifier.bootstrap import APPLICATION_NAME, build, build_send_queue
from services.runtime.clock import SystemClock
from services.runtime.processor_service import running_processor
from services.runtime.stream import STREAM_NAME, ensure_stream, publish_event
from tests import factories
from tests.integration.test_exactly_once import stream_types, wait_for_consumer_to_drain
from tests.integration.test_notifier import Sandbox, opt_out_changed, requested, running_sandbox, settings_for


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path / "sandbox") as running:
        yield running


@pytest.fixture
async def connection(nats_server):
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await js.delete_stream(STREAM_NAME)
    except nats.js.errors.NotFoundError:
        pass
    await ensure_stream(js)
    yield nc
    await nc.close()


async def test_the_running_notifier_sends_publishes_and_ignores_redelivery(
    connection, nats_server, sandbox, database_url, tmp_path
) -> None:
    js = connection.jetstream()
    settings = settings_for(tmp_path, sandbox.url, database_url, nats_url=nats_server.url, sms_rate_per_second=50)
    reachable, opted_out = factories.fake_phone(), factories.fake_phone()
    page, blocked = requested(reachable), requested(opted_out)
    outcomes = await connection.subscribe("crisis.sms.*")

    with build(settings, SystemClock()) as notifier:
        async with running_processor(
            settings, notifier, durable=APPLICATION_NAME, followers=[build_send_queue(notifier, settings)]
        ):
            for event in (page, opt_out_changed(opted_out, True), blocked):
                await publish_event(js, event)
            published = []
            while len(published) < 2:
                message = json.loads((await outcomes.next_msg(timeout=15)).data)
                if message["type"] in ("sms.sent", "sms.failed"):
                    published.append(message)
        assert {(p["type"], p["data"]["notification_id"]) for p in published} == {
            ("sms.sent", str(page.data.notification_id)),
            ("sms.failed", str(blocked.data.notification_id)),
        }
        on_stream = await stream_types(js)
        assert sorted(on_stream) == sorted(
            ["notification.requested", "sms.opt_out_changed", "notification.requested", "sms.sent", "sms.failed"]
        )

        # a consumer that forgot its acks: every message is delivered again from sequence 1
        await js.delete_consumer(STREAM_NAME, APPLICATION_NAME)
        queue = build_send_queue(notifier, settings)
        async with running_processor(settings, notifier, durable=APPLICATION_NAME, followers=[queue]) as service:
            await wait_for_consumer_to_drain(js, (await js.stream_info(STREAM_NAME)).state.last_seq, APPLICATION_NAME)
            for follower in service.followers:
                await follower.follow_once()
        assert await stream_types(js) == on_stream
    assert len(sandbox.messages(reachable)) == 1
    assert sandbox.messages(opted_out) == []
    failed = decode_event(json.dumps(published[[p["type"] for p in published].index("sms.failed")]).encode())
    assert (failed.data.error_code, failed.data.permanent) == (21610, True)
