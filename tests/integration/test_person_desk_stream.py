"""The person desk in the projections service, over a real nats-server: its durable exists and is fed (the caller
of a report with a callback is told help is on the way once a responder accepts)."""

from __future__ import annotations

from services.runtime.stream import STREAM_NAME
from tests.integration.test_projections import Story, workspace
from tests.support.stream import publish_all, relayed, stream_events, taken_in


async def test_the_person_desk_reads_the_stream_and_tells_the_caller(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        story = Story()
        await publish_all(js, story.full_response(space.people["clinician"], 1, 2, 10, 60))
        info = await js.consumer_info(STREAM_NAME, "persons")
        assert "crisis.dispatch.acknowledged" in info.config.filter_subjects
        await taken_in(js, "persons")
        desk = space.app.state.person_desk
        assert desk.recorder.max_tracking_id(STREAM_NAME)
        await relayed(desk)
        texts = [e for e in await stream_events(js) if e.type == "notification.requested"]
        updates = [e.data.params["update"] for e in texts if e.data.template == "caller_update"]
        assert updates == ["help_on_the_way", "responder_with_them"]
