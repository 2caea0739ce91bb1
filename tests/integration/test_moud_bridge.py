"""MOUD continuity (issue 19 section 3) over HTTP on the projections service with a real stream: a clinician on
the incident records a buprenorphine bridge (dose, prescription, clinic appointment), linked to the prescriber-review
task; the follow-up desk opens the outreach for a missed appointment, due two hours after it; a kept appointment
cancels it; a missed one pages the coach and the supervisor the moment it passes. A peer coach may not record a
bridge (403, audited); a dose without its time is a 422 and records nothing."""

from __future__ import annotations

from datetime import timedelta

from services.projections.domain.followups import task_id_for
from services.runtime.clock import ManualClock
from tests.integration.test_followup_commands import paged
from tests.integration.test_projections import T0, Story, workspace
from tests.support.stream import last_sequence, publish_all, stream_events


async def test_a_bridge_opens_the_missed_appointment_outreach_and_a_kept_one_closes_it(
    js, nats_server, tmp_path, database_url
) -> None:
    clock = ManualClock(T0 + timedelta(hours=1))
    async with workspace(js, nats_server, tmp_path, database_url, clock=clock) as space:
        clinician, coach = space.people["clinician"], space.people["coach"]
        kept, missed = Story(), Story(code="5150")
        for story in (kept, missed):
            await publish_all(
                js,
                [story.reported(), paged(story, clinician), story.acknowledged(clinician, 1), paged(story, coach)],
            )
            await publish_all(js, [story.acknowledged(coach, 2)])
        await space.settled(js)
        first = await last_sequence(js) + 1
        appointment = (T0 + timedelta(days=1)).isoformat()
        bridge = {"dose_mg": 8, "dose_given_at": (T0 + timedelta(minutes=50)).isoformat(), "prescription_days": 3,
                  "appointment_at": appointment}  # fmt: skip
        async with space.client("clinician") as cleo, space.client("coach") as pat:
            refused = await pat.post(f"/v1/incidents/{kept.incident_id}/moud-bridges", json=bridge)
            assert refused.status_code == 403
            muddled = await cleo.post(
                f"/v1/incidents/{kept.incident_id}/moud-bridges", json={"dose_mg": 8, "appointment_at": appointment}
            )
            assert muddled.status_code == 422
            for story in (kept, missed):
                answer = await cleo.post(f"/v1/incidents/{story.incident_id}/moud-bridges", json=bridge)
                assert answer.status_code == 202, answer.text
            await space.settled(js)
            recorded = [e for e in await stream_events(js, first) if e.type == "moud.bridge_recorded"]
            assert [(e.data.dose_mg, e.data.prescription_days, e.data.recorded_by) for e in recorded] == [
                (8, 3, "clinician-user"), (8, 3, "clinician-user"),
            ]  # fmt: skip
            bridge_id = next(e.data.bridge_id for e in recorded if e.incident_id == kept.incident_id)
            done = await cleo.post(f"/v1/incidents/{kept.incident_id}/moud-bridges/{bridge_id}/kept", json={})
            assert done.status_code == 202, done.text
            again = await cleo.post(f"/v1/incidents/{kept.incident_id}/moud-bridges/{bridge_id}/kept", json={})
            assert again.status_code == 409
            await space.settled(js)
            timeline = (await cleo.get(f"/v1/incidents/{kept.incident_id}/timeline")).json()

        events = await stream_events(js, first)
        opened = {
            e.data.incident_id: e.data
            for e in events
            if e.type == "followup.created" and e.data.rule == "bridge_appointment"
        }
        assert set(opened) == {kept.incident_id, missed.incident_id}
        assert {d.due_at for d in opened.values()} == {T0 + timedelta(days=1, hours=2)}
        cancelled = [e.data.task_id for e in events if e.type == "followup.cancelled"]
        assert cancelled == [task_id_for(kept.incident_id, "bridge_appointment")]
        said = " | ".join(str(entry) for entry in timeline["entries"])
        assert "MOUD bridge (buprenorphine): 8 mg given at" in said and "MOUD bridge appointment kept" in said

        clock.advance(T0 + timedelta(days=1, hours=2, minutes=1) - clock.now())  # the missed one's due passes
        before = await last_sequence(js)
        assert space.app.state.desk.flag_overdue(clock.now()) == 1
        await space.settled(js)
        told = [
            (e.data.to, e.data.template)
            for e in await stream_events(js, before + 1)
            if e.type == "notification.requested"
        ]
        assert (coach.phone, "task_overdue") in told and (space.people["supervisor"].phone, "task_overdue") in told
        denied = [r for r in space.read_models.audit.query(limit=1000) if r["outcome"] == "denied"]
        assert ("coach-user", "write:moud.bridge_recorded") in {(r["subject"], r["action"]) for r in denied}
