"""Follow-up task commands through the gateway: appended as events, applied by the projections service only
when the caller may change the task."""

from __future__ import annotations

from datetime import timedelta

import httpx

from services.intake_gateway.bootstrap import build as build_gateway
from services.intake_gateway.settings import GatewaySettings
from services.runtime.clock import ManualClock
from services.runtime.credentials import AccessRole, issue_credential
from tests.integration.test_projections import T0, Story, publish_all, stream_events, wait_for_stream, workspace
from tests.support.asgi_server import serving


async def test_gateway_task_commands_are_events_the_projections_apply(js, nats_server, tmp_path) -> None:
    clock = ManualClock(T0 + timedelta(hours=1))
    async with workspace(js, nats_server, tmp_path, clock=clock) as space:
        coach, nurse = space.people["coach"], space.people["nurse"]
        story = Story()
        first = await publish_all(js, [story.reported(), *story.offered(coach, 0.2), story.acknowledged(coach, 1)])
        events = await wait_for_stream(js, lambda es: any(e.type == "followup.assigned" for e in es), first)
        task = next(e for e in events if e.type == "followup.created").data
        credentials = space.settings.credentials_file
        tokens = {
            "coach": issue_credential(credentials, "gw-coach", AccessRole.RESPONDER, coach.responder_id),
            "nurse": issue_credential(credentials, "gw-nurse", AccessRole.RESPONDER, nurse.responder_id),
            "director": issue_credential(credentials, "gw-director", AccessRole.DIRECTOR),
        }
        settings = GatewaySettings(
            nats_url=nats_server.url, var_dir=space.settings.var_dir, credentials_file=credentials
        )
        with serving(build_gateway(settings, clock)) as gateway_url:

            async def post(who: str, action: str, body: dict, key: str | None = None) -> httpx.Response:
                headers = {"Authorization": f"Bearer {tokens[who]}"} | ({"Idempotency-Key": key} if key else {})
                async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=30) as client:
                    return await client.post(f"/v1/followups/{task.task_id}/{action}", json=body)

            incident = str(story.incident_id)
            assert (
                await post("nurse", "assign", {"incident_id": incident, "assignee_id": str(nurse.responder_id)})
            ).status_code == 403
            refused = await post("nurse", "complete", {"incident_id": incident, "outcome": "contact_made"})
            assert refused.status_code == 202  # the gateway cannot see the task; the projections refuse it
            due = (T0 + timedelta(days=4)).isoformat()
            body = {"incident_id": incident, "due_at": due, "reason": "client asked for Friday"}
            moved = await post("coach", "reschedule", body, key="k-1")
            assert moved.status_code == 202
            assert (await post("coach", "reschedule", body, key="k-1")).json()["event_id"] == moved.json()["event_id"]
            done = await post("coach", "complete", {"incident_id": incident, "outcome": "referred", "note": "MOUD"})
            assert done.status_code == 202 and done.json()["event_type"] == "followup.completed"
        await space.settled(js)
        async with space.client("director") as director:
            state = (await director.get(f"/v1/followups/{task.task_id}")).json()
    assert state["status"] == "done" and state["outcome"] == "referred" and state["completed_at"]
    assert state["due_at"].startswith(due[:19])
    assert any(h["what"] == "completion refused" and h["by"] == "gw-nurse" for h in state["history"])
    appended = [e for e in await stream_events(js, first) if e.producer == "intake_gateway"]
    assert [e.type for e in appended] == ["followup.completed", "followup.rescheduled", "followup.completed"]
