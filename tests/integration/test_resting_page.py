"""Rest after a hard call in the workspace (issue 19 section 5): the Resting page lists who rests (from the
dispatcher's ``responder.rest_started``) and until when; a director ends a rest (ONE ``responder.rest_ended``
naming them) and it is gone from the list; a clinician may not (403, audited, nothing appended); the timeline says
both, and a page's reason says who was passed over."""

from __future__ import annotations

import re
from datetime import timedelta
from uuid import uuid4

from services.contract.events import ResponderRestStarted, ResponderRestStartedData, new_event
from services.runtime.clock import ManualClock
from tests.integration.test_followup_commands import paged
from tests.integration.test_projections import T0, Story, signed_in, workspace
from tests.support.stream import last_sequence, publish_all, stream_events


async def test_a_director_ends_a_rest_a_clinician_may_not(js, nats_server, tmp_path, database_url) -> None:
    clock = ManualClock(T0 + timedelta(hours=1))
    async with workspace(js, nats_server, tmp_path, database_url, clock=clock) as space:
        clinician = space.people["clinician"]
        story = Story()
        data = ResponderRestStartedData(
            responder_id=clinician.responder_id, incident_id=story.incident_id, until=T0 + timedelta(hours=9),
            what="an overdose reversal",
        )  # fmt: skip
        started = new_event(
            ResponderRestStarted, data, event_id=uuid4(), occurred_at=T0 + timedelta(minutes=50),
            producer="dispatcher", incident_id=story.incident_id,
        )  # fmt: skip
        await publish_all(js, [story.reported(), started, *(paged(story, clinician) for _ in range(9))])
        await space.settled(js)
        before = await last_sequence(js)
        cleo = await signed_in(space, "clinician-user", "clinician")
        try:
            page = await cleo.get("/workspace/resting")
            assert page.status_code == 200 and "Cleo Clinician" in page.text and "End the rest" not in page.text
            load = page.text[page.text.index('id="after-hours"') :]
            assert "9 of 10" in load and "one below the cap" in load  # 02:00 in Denver: after hours
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
            form = {
                "csrf_token": csrf,
                "responder_id": str(clinician.responder_id),
                "incident_id": str(story.incident_id),
            }
            refused = await cleo.post("/workspace/resting/end", data=form)
            assert refused.status_code == 403
        finally:
            await cleo.aclose()
        assert await last_sequence(js) == before
        director = await signed_in(space, "dr-director", "director")
        try:
            page = await director.get("/workspace/resting")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
            form = {
                "csrf_token": csrf,
                "responder_id": str(clinician.responder_id),
                "incident_id": str(story.incident_id),
            }
            ended = await director.post("/workspace/resting/end", data=form)
            assert ended.status_code == 303
            await space.settled(js)
            page = await director.get(ended.headers["location"])
            assert "Recorded: the rest ended" in page.text and "Nobody is resting." in page.text
            timeline = await director.get(f"/v1/incidents/{story.incident_id}/timeline")
        finally:
            await director.aclose()
        (end,) = [e for e in await stream_events(js, before + 1) if e.type == "responder.rest_ended"]
        assert (end.data.responder_id, end.data.ended_by) == (clinician.responder_id, "dr-director")
        said = " | ".join(str(entry) for entry in timeline.json()["entries"])
        assert "Cleo Clinician (clinician) rests until" in said and "after an overdose reversal" in said
        assert "Cleo Clinician (clinician)'s rest ended early" in said
        denied = [r for r in space.read_models.audit.query(limit=1000) if r["outcome"] == "denied"]
        assert ("clinician-user", "write:responder.rest_ended") in {(r["subject"], r["action"]) for r in denied}
