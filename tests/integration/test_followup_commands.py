"""One command path for follow-up tasks: the projections service, which sees the task, checks each command
(the task's own incident, a caller who may change it, an open task) before appending it; the gateway takes
none. A command the task's state refuses when it is applied (two completions at once, or an event of the
gateway's former unchecked route naming another incident: the stream keeps those) shows as refused on the
timeline and in the audit log, live and after a replay, and its note is nowhere in the record."""

from __future__ import annotations

import json
from datetime import timedelta
from uuid import UUID, uuid4

import httpx

from services.contract.events import (
    DispatchOffered,
    DispatchOfferedData,
    Envelope,
    FollowUpCompleted,
    FollowUpCompletedData,
    FollowUpCreatedData,
    PageReason,
    new_event,
)
from services.intake_gateway.bootstrap import build as build_gateway
from services.intake_gateway.settings import GatewaySettings
from services.projections.bootstrap import build_projections
from services.projections.rebuild import replay_into
from services.runtime.clock import ManualClock
from tests.integration.test_projections import T0, Person, Story, Workspace, workspace
from tests.support.asgi_server import serving
from tests.support.stream import last_sequence, publish_all, stream_events

PERSON_COMMANDS = ("followup.assigned", "followup.completed", "followup.rescheduled")


def paged(story: Story, person: Person) -> Envelope:
    """The page alone (its SMS is not what these tests are about)."""
    page_id = story.pages[person.responder_id] = uuid4()
    data = DispatchOfferedData(
        incident_id=story.incident_id,
        page_id=page_id,
        responder_id=person.responder_id,
        responder_role=person.role.value,
        code=story.code,
        priority=story.priority,
        ack_deadline=story.at(2),
        step=1,
        reason=PageReason(on_call=True, skills_matched=[], distance_km=0.8, load=0, rule="nearest on call"),
    )
    return new_event(
        DispatchOffered,
        data,
        event_id=uuid4(),
        occurred_at=story.at(0.2),
        producer="dispatcher",
        incident_id=story.incident_id,
    )


async def two_incidents(js, space: Workspace) -> tuple[Story, Story, FollowUpCreatedData, int]:
    """An overdose the coach accepted (its outreach task assigned to the coach) and a second overdose."""
    coach = space.people["coach"]
    story, other = Story(), Story(code="5150")
    first = await publish_all(
        js, [story.reported(), paged(story, coach), story.acknowledged(coach, 1), other.reported()]
    )
    events = await space.settled_events(js, first)
    assert any(e.type == "followup.assigned" for e in events)
    assert sum(e.type == "followup.created" for e in events) == 2
    task = next(e.data for e in events if e.type == "followup.created" and e.incident_id == story.incident_id)
    return story, other, task, first


def by_people(events: list) -> list:
    return [e for e in events if e.type in PERSON_COMMANDS and getattr(e.data, "assigned_by", None) != "rules"]


async def test_the_gateway_takes_no_follow_up_commands_and_the_projections_check_incident_and_assignee(
    js, nats_server, tmp_path
) -> None:
    clock = ManualClock(T0 + timedelta(hours=1))
    async with workspace(js, nats_server, tmp_path, clock=clock) as space:
        coach = space.people["coach"]
        story, other, task, first = await two_incidents(js, space)
        later = (clock.now() + timedelta(days=1)).isoformat()
        commands = {
            "assign": {"assignee_id": str(coach.responder_id)},
            "complete": {"outcome": "contact_made", "note": "wrong place"},
            "reschedule": {"due_at": later, "reason": "client asked"},
        }
        settings = GatewaySettings(
            nats_url=nats_server.url, var_dir=space.settings.var_dir, credentials_file=space.settings.credentials_file
        )
        with serving(build_gateway(settings, clock)) as gateway_url:
            director = {"Authorization": f"Bearer {space.tokens['director']}"}
            async with httpx.AsyncClient(base_url=gateway_url, headers=director, timeout=30) as gateway:
                for action, body in commands.items():
                    answer = await gateway.post(
                        f"/v1/followups/{task.task_id}/{action}", json=body | {"incident_id": str(other.incident_id)}
                    )
                    assert answer.status_code in (404, 405), (action, answer.status_code, answer.text)
        async with space.client("director") as director, space.client("nurse") as nia, space.client("coach") as pat:
            for action, body in commands.items():
                wrong = body | {"incident_id": str(other.incident_id)}
                refused = await director.post(f"/v1/followups/{task.task_id}/{action}", json=wrong)
                assert refused.status_code == 409, (action, refused.text)
                assert "another incident" in refused.json()["detail"]
            own = {"incident_id": str(story.incident_id), "outcome": "contact_made"}
            not_hers = await nia.post(f"/v1/followups/{task.task_id}/complete", json=own)
            assert not_hers.status_code == 403, not_hers.text
            # an unknown task looks exactly like someone else's to a responder; a director is told it is unknown
            unknown = await nia.post(f"/v1/followups/{uuid4()}/complete", json={"outcome": "contact_made"})
            assert (unknown.status_code, unknown.json()["detail"]) == (403, not_hers.json()["detail"])
            directors_unknown = await director.post(f"/v1/followups/{uuid4()}/complete", json={"outcome": "other"})
            assert directors_unknown.status_code == 404
            done = await pat.post(f"/v1/followups/{task.task_id}/complete", json=own | {"note": "kit replaced"})
            assert done.status_code == 202, done.text
            state = (await director.get(f"/v1/followups/{task.task_id}")).json()
            other_timeline = (await director.get(f"/v1/incidents/{other.incident_id}/timeline")).json()
    assert state["status"] == "done" and state["note"] == "kit replaced"
    appended = by_people(await stream_events(js, first))
    assert [(e.type, e.incident_id, e.data.completed_by) for e in appended] == [
        ("followup.completed", story.incident_id, "coach-user")
    ]
    assert "wrong place" not in json.dumps(other_timeline)


def completion(task: FollowUpCreatedData, incident_id: UUID, at_minutes: float, by: str, note: str, responder=None):
    """A completion as the gateway's former route appended it: unchecked, naming whatever incident it was given."""
    data = FollowUpCompletedData(
        task_id=task.task_id,
        incident_id=incident_id,
        outcome="contact_made",
        note=note,
        completed_by=by,
        responder_id=responder,
    )
    return new_event(
        FollowUpCompleted,
        data,
        event_id=uuid4(),
        occurred_at=T0 + timedelta(minutes=at_minutes),
        producer="intake_gateway",
        incident_id=incident_id,
    )


async def test_a_completion_refused_when_applied_shows_as_refused_live_and_after_a_replay(
    js, nats_server, tmp_path, database_url
) -> None:
    clock = ManualClock(T0 + timedelta(hours=1))
    async with workspace(js, nats_server, tmp_path, database_url, clock=clock) as space:
        coach = space.people["coach"]
        story, other, task, _ = await two_incidents(js, space)
        done = completion(task, story.incident_id, 50, "coach-user", "kit replaced", coach.responder_id)
        twice = completion(task, story.incident_id, 51, "dr-director", "second try")  # at the same time, say
        elsewhere = completion(task, other.incident_id, 52, "dr-director", "wrong place")
        await publish_all(js, [done, twice, elsewhere])
        await space.settled(js)
        async with space.client("director") as director:
            timeline = (await director.get(f"/v1/incidents/{story.incident_id}/timeline")).json()
            other_timeline = (await director.get(f"/v1/incidents/{other.incident_id}/timeline")).json()
            other_record = [
                (await director.get(f"/v1/incidents/{other.incident_id}/{export}")).text
                for export in ("documentation", "documentation.html", "fhir")
            ]
            other_tasks = [t for t in (await director.get("/v1/followups")).json() if t["task_id"] != str(task.task_id)]
            trail = (await director.get("/v1/audit", params={"record_id": str(task.task_id)})).json()
            state = (await director.get(f"/v1/followups/{task.task_id}")).json()

        said = {e["event_id"]: e for e in timeline["entries"] + other_timeline["entries"]}
        assert said[str(done.id)]["summary"] == "follow-up completed: contact made"
        assert said[str(twice.id)]["summary"] == "follow-up completion refused: the task is already done"
        assert said[str(elsewhere.id)]["summary"].startswith("follow-up completion refused: ")
        assert said[str(elsewhere.id)]["summary"] != "follow-up completion refused: the task is already done"
        assert "second try" not in json.dumps(timeline)
        assert not any("wrong place" in text for text in [json.dumps(other_timeline), *other_record])
        assert [t["status"] for t in other_tasks] == ["open"]
        assert state["status"] == "done" and state["note"] == "kit replaced"
        writes = {a["event_id"]: a["outcome"] for a in trail if a["action"] == "write:followup.completed"}
        assert writes == {str(done.id): "recorded", str(twice.id): "refused", str(elsewhere.id): "refused"}

        # the stream replayed from sequence 1 tells the same
        with build_projections(space.settings, space.clock, name="rebuilt") as rebuilt:
            await replay_into(js, rebuilt, reset=True, batch=4)
            replayed = {
                str(e["event_id"]): e["summary"]
                for incident in (story.incident_id, other.incident_id)
                for e in rebuilt.timeline(incident)
            }
            rebuilt_trail = rebuilt.audit.query(record_id=str(task.task_id))
        assert replayed[str(done.id)] == said[str(done.id)]["summary"]
        assert replayed[str(twice.id)] == said[str(twice.id)]["summary"]
        assert replayed[str(elsewhere.id)] == said[str(elsewhere.id)]["summary"]
        rebuilt_writes = {a["event_id"]: a["outcome"] for a in rebuilt_trail if a["action"].startswith("write:")}
        assert rebuilt_writes == writes


async def test_a_follow_up_command_retried_with_its_idempotency_key_is_recorded_once(js, nats_server, tmp_path) -> None:
    """The workspace's commands share the gateway's idempotency scheme (runtime/idempotency.py): the retry gets the
    first answer with Idempotent-Replayed, the stream holds one completion, the key with another body is a 422, and
    a refused request frees its key for a corrected one."""
    clock = ManualClock(T0 + timedelta(hours=1))
    async with workspace(js, nats_server, tmp_path, clock=clock) as space:
        story, other, task, first = await two_incidents(js, space)
        async with space.client("coach") as pat:
            url = f"/v1/followups/{task.task_id}/complete"
            wrong = {"incident_id": str(other.incident_id), "outcome": "contact_made"}
            refused = await pat.post(url, json=wrong, headers={"Idempotency-Key": "call-1"})
            assert refused.status_code == 409, refused.text
            body = {"incident_id": str(story.incident_id), "outcome": "contact_made", "note": "kit replaced"}
            done = await pat.post(url, json=body, headers={"Idempotency-Key": "call-1"})
            assert done.status_code == 202, done.text
            again = await pat.post(url, json=body, headers={"Idempotency-Key": "call-1"})
            assert (again.status_code, again.json()) == (202, done.json())
            assert again.headers["Idempotent-Replayed"] == "true"
            other_body = await pat.post(url, json=body | {"note": "changed"}, headers={"Idempotency-Key": "call-1"})
            assert other_body.status_code == 422, other_body.text
            assert other_body.headers["content-type"].startswith("application/problem+json")
        events = await stream_events(js, first)
        completions = [e for e in events if e.type == "followup.completed" and e.data.task_id == task.task_id]
        assert len(completions) == 1
        assert completions[0].data.note == "kit replaced"


async def test_outreach_attempts_and_the_series_end_over_http(js, nats_server, tmp_path, database_url) -> None:
    """Issue 19: the assignee records attempts (numbered by the service), the series ends by a person; another
    responder is refused 403 and nothing is appended; answers that contradict each other are a 422; the task the
    API shows lists the attempts, the timeline words them, and the audit log has each as a write."""
    clock = ManualClock(T0 + timedelta(hours=1))
    async with workspace(js, nats_server, tmp_path, database_url, clock=clock) as space:
        story, _, task, _ = await two_incidents(js, space)
        url = f"/v1/followups/{task.task_id}"
        first = await last_sequence(js) + 1
        async with space.client("coach") as pat, space.client("nurse") as nia, space.client("director") as director:
            missed = {"channel": "call", "reached": False}
            assert (await nia.post(f"{url}/attempts", json=missed)).status_code == 403
            muddled = {"channel": "visit", "reached": True, "offered": ["test_strips"], "accepted": ["naloxone_kit"]}
            bad = await pat.post(f"{url}/attempts", json=muddled)
            assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
            assert (await pat.post(f"{url}/attempts", json=missed)).status_code == 202
            met = {
                "channel": "visit",
                "reached": True,
                "offered": ["naloxone_kit", "referral"],
                "accepted": ["naloxone_kit"],
                "further_contact": True,
            }
            assert (await pat.post(f"{url}/attempts", json=met)).status_code == 202
            assert (await pat.post(f"{url}/end", json={"outcome": "engaged_in_care"})).status_code == 202
            late = await pat.post(f"{url}/attempts", json=missed)
            assert late.status_code == 409 and "done" in late.json()["detail"]
            await space.settled(js)
            shown = (await director.get(url)).json()
            timeline = (await director.get(f"/v1/incidents/{story.incident_id}/timeline")).json()
        events = [e for e in await stream_events(js, first) if e.type.startswith("followup.")]
        mine = [e for e in events if e.type in ("followup.attempt_recorded", "followup.series_ended")]
        assert [(e.type, getattr(e.data, "number", None)) for e in mine] == [
            ("followup.attempt_recorded", 1),
            ("followup.attempt_recorded", 2),
            ("followup.series_ended", None),
        ]
        assert (shown["status"], shown["outcome"]) == ("done", "engaged_in_care")
        assert [(a["number"], a["reached"], a["accepted"]) for a in shown["attempts"]] == [
            (1, False, []),
            (2, True, ["naloxone_kit"]),
        ]
        said = " | ".join(str(entry) for entry in timeline["entries"])
        assert "outreach attempt 2 by visit: reached; offered naloxone kit, referral; accepted naloxone kit" in said
        assert "outreach series ended after 2 attempt(s): engaged in care" in said
        writes = {r["action"] for r in space.read_models.audit.query(limit=1000) if r["subject"] == "coach-user"}
        assert {"write:followup.attempt_recorded", "write:followup.series_ended"} <= writes
