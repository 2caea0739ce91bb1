"""Every change to a clinical record is in the audit log beside the reads: who (subject and role, never a
token), which record, which action, when; whichever service took the request (the gateway for incident updates,
the projections for documentation and follow-up tasks), once per change even when the event is delivered
again."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx

from services.contract.events import decode_event
from services.intake_gateway.bootstrap import build as build_gateway
from services.intake_gateway.settings import GatewaySettings
from services.runtime.clock import ManualClock
from services.runtime.credentials import AccessRole, issue_credential
from services.runtime.stream import STREAM_NAME
from tests.integration.test_projections import T0, Story, signed_in, workspace
from tests.support.asgi_server import serving
from tests.support.stream import publish_all


async def test_writes_through_gateway_and_projections_are_audited_once_with_subject_and_role(
    js, nats_server, tmp_path
) -> None:
    credentials = tmp_path / "var" / "credentials.json"  # where workspace() keeps its credentials too
    gateway_tokens = {"intake": issue_credential(credentials, "gw-intake", AccessRole.INTAKE)}
    clock = ManualClock(T0 + timedelta(hours=1))
    async with workspace(js, nats_server, tmp_path, clock=clock) as space:
        coach = space.people["coach"]
        story = Story()
        first = await publish_all(js, [story.reported(), *story.offered(coach, 0.2), story.acknowledged(coach, 1)])
        events = await space.settled_events(js, first)
        assert any(e.type == "followup.assigned" for e in events)
        task = next(e for e in events if e.type == "followup.created").data
        incident = str(story.incident_id)
        settings = GatewaySettings(
            nats_url=nats_server.url, var_dir=space.settings.var_dir, credentials_file=credentials
        )
        with serving(build_gateway(settings, clock)) as gateway_url:
            async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as gateway:
                intake = {"Authorization": f"Bearer {gateway_tokens['intake']}"}
                reported = await gateway.post(
                    "/v1/incidents",
                    json={
                        "kind": "overdose",
                        "location": {"lat": 39.7431, "lon": -104.9876, "address": "5th St & Main"},
                        "reporter": {"channel": "hotline", "relation": "friend"},
                        "details": {"responsive": False, "breathing": True, "ems_called": True},
                    },
                    headers=intake,
                )
                assert reported.status_code == 201, reported.text
                second = reported.json()["incident_id"]
                dose = await gateway.post(
                    f"/v1/incidents/{second}/naloxone",
                    json={"product": "naloxone 4 mg nasal spray", "dose_mg": 4, "route": "intranasal"},
                    headers=intake,
                )
                assert dose.status_code == 201, dose.text
        async with space.client("director") as api:
            body = {"due_at": (T0 + timedelta(days=3)).isoformat(), "reason": "on leave"}
            moved = await api.post(f"/v1/followups/{task.task_id}/reschedule", json=body)
            assert moved.status_code == 202, moved.text
            saved = await api.post(f"/v1/incidents/{incident}/documentation/fields", json={"language": "es"})
            assert saved.status_code == 202
            assert (await api.get(f"/v1/incidents/{incident}/timeline")).status_code == 200  # a read, for contrast
        await space.settled(js)

        # the same events delivered again change nothing (and enter nothing)
        last = (await js.stream_info(STREAM_NAME)).state.last_seq
        async with space.client("director") as api:
            before = (await api.get("/v1/audit")).json()
        for sequence in range(1, last + 1):
            message = await js.get_msg(STREAM_NAME, sequence)
            assert await asyncio.to_thread(space.read_models.handle, decode_event(message.data), sequence) is False
        async with space.client("director") as api:
            after = (await api.get("/v1/audit")).json()
            trail = (await api.get("/v1/audit", params={"record_id": str(task.task_id)})).json()
        assert after == before
        writes = [
            (a["subject"], a["role"], a["action"], a["record_type"], a["record_id"])
            for a in after
            if a["action"].startswith("write:")
        ]
        assert sorted(writes) == sorted(
            [
                ("dr-director", "director", "write:documentation.fields_completed", "incident", incident),
                ("dr-director", "director", "write:followup.rescheduled", "followup", str(task.task_id)),
                ("gw-intake", "intake", "write:incident.naloxone_administered", "incident", second),
            ]
        ), writes
        entry = next(a for a in after if a["action"] == "write:followup.rescheduled")
        assert entry["at"] and entry["outcome"] == "recorded" and entry["event_id"]
        assert [a["action"] for a in trail] == ["write:followup.rescheduled"]
        # no token anywhere in the log
        assert not any(token in json.dumps(after) for token in [*gateway_tokens.values(), *space.tokens.values()])
        # the workspace's audit page shows the writes beside the reads
        page = await signed_in(space, "dr-director", "director")
        try:
            html = (await page.get("/workspace/audit")).text
        finally:
            await page.aclose()
        assert "write:followup.rescheduled" in html and "gw-intake" in html and "timeline" in html
