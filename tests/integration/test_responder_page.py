"""The responder's incident page over HTTP, with the dispatcher and the projections service on one stream and one
moved clock: the link in the accept confirmation opens it for that responder only (audited), its buttons append
the same events as texts do and say what was recorded, and a forwarded or expired link asks for sign-in."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import httpx

from services.contract.events import Envelope, IncidentRelocated, IncidentRelocatedData, Location, new_event
from services.notifier.domain.templates import render
from services.runtime.stream import publish_event
from tests.factories import T0
from tests.support.responder_stack import (
    ACCESS_NOTES,
    GUIDANCE,
    ResponderStack,
    overdose_at_the_station,
    responder_stack,
)
from tests.support.stream import stream_events


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


async def accepted(stack: ResponderStack) -> UUID:
    """A P1 at the station: the clinician accepts by text, the peer coach (paged too) stays on as backup."""
    reported = overdose_at_the_station()
    await stack.publish(reported)
    await stack.reply("clinician", "Y 4821")
    await stack.reply("coach", "Y 4821")
    return reported.data.incident_id


async def opened(stack: ResponderStack, client: httpx.AsyncClient, who: str = "clinician") -> httpx.Response:
    """``who``'s link opened in ``client``: the page it leads to."""
    answer = await client.get(stack.path(await stack.link_for(who)))
    assert answer.status_code == 303, answer.text
    return await client.get(answer.headers["location"])


async def signed_in(stack: ResponderStack, who: str, username: str) -> httpx.AsyncClient:
    client = stack.client()
    form = await client.get("/workspace/sign-in")
    answer = await client.post(
        "/workspace/sign-in",
        data={
            "username": username,
            "token": stack.tokens[who],
            "csrf_token": csrf_of(form.text),
            "next": "/workspace/",
        },
    )
    assert answer.status_code == 303, answer.text
    return client


def sign_in_asked(answer: httpx.Response) -> dict[str, str]:
    """The sign-in redirect's query (``next``, ``error``); fails when the answer is anything else."""
    assert answer.status_code == 303, (answer.status_code, answer.text[:200])
    location = urlsplit(answer.headers["location"])
    assert location.path == "/workspace/sign-in", answer.headers["location"]
    return {k: v[0] for k, v in parse_qs(location.query).items()}


async def press(client: httpx.AsyncClient, page: httpx.Response, action: str, **fields: str) -> httpx.Response:
    path = urlsplit(str(page.url)).path
    answer = await client.post(f"{path}/{action}", data={"csrf_token": csrf_of(page.text), **fields})
    assert answer.status_code == 303, answer.text
    return await client.get(answer.headers["location"])


def audit(stack: ResponderStack, action: str) -> list[dict]:
    return [row for row in stack.app.state.read_models.audit.query(limit=1000) if row["action"] == action]


async def test_the_link_in_the_confirmation_opens_the_page_with_where_to_go_what_was_said_and_who_to_call(
    js, nats_server, tmp_path: Path
) -> None:
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id = await accepted(stack)
        link = await stack.link_for("clinician")
        sms = render("ack_confirmed", {"code": "4821", "link": link}, "en")
        assert sms.segments == 1 and link.startswith(f"{stack.url}/r/")
        assert "Wynkoop" not in link and str(incident_id) not in link  # nothing of the incident in the URL

        async with stack.client() as phone:
            answer = await phone.get(stack.path(link))
            assert answer.status_code == 303 and answer.headers["location"] == f"/workspace/respond/{incident_id}"
            assert f"path=/workspace/respond/{incident_id}" in answer.headers["set-cookie"].replace("Path", "path")
            page = await phone.get(answer.headers["location"])
            board = await phone.get("/workspace/")  # the link's session opens this incident's page, nothing else
            timeline = await phone.get(f"/workspace/incidents/{incident_id}")

        assert page.status_code == 200, page.text
        html = page.text
        assert "1701 Wynkoop St" in html and "Union Station" in html
        assert ACCESS_NOTES.replace("'", "&#39;") in html
        assert all(line in html for line in GUIDANCE)
        assert 'href="tel:+15550142004"' in html and "Dana Whitfield" in html  # the supervisor, to call
        assert "Luis Romero" in html and 'href="tel:+15550142002"' in html  # the peer coach on it too
        assert 'href="geo:39.753060,-105.000080' in html and "openstreetmap.org/?mlat=39.753060" in html
        assert "<script" not in html and page.headers["cache-control"] == "no-store"
        assert sign_in_asked(board) and sign_in_asked(timeline)
        [opening] = audit(stack, "responder_link")
        assert (opening["outcome"], opening["record_id"]) == ("read", str(incident_id))
        assert opening["responder_id"] == str(stack.people["clinician"].responder_id)
        assert [r["outcome"] for r in audit(stack, "responder_page")] == ["read"]


async def test_each_button_appends_the_events_a_text_would_and_shows_what_was_recorded(
    js, nats_server, tmp_path: Path
) -> None:
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id = await accepted(stack)
        first = len(await stream_events(js)) + 1
        async with stack.client() as phone:
            page = await opened(stack, phone)
            page = await press(phone, page, "en_route")
            assert "Recorded: en route at 2026-11-23 09:00:00 UTC." in page.text
            stack.move_clock(minutes=9)
            page = await press(phone, page, "arrived")
            assert "Recorded: on scene at 2026-11-23 09:09:00 UTC." in page.text
            page = await press(phone, page, "naloxone", product="nasal_4mg", response="improved")
            assert "Recorded: naloxone 4 mg nasal spray given at" in page.text
            page = await press(phone, page, "ems", agency="Denver Health Paramedics")
            assert "Recorded: EMS arrived at" in page.text and "Denver Health Paramedics" in page.text
            again = await press(phone, page, "en_route")
            assert "Not recorded: en route was recorded already" in again.text
            forged = await phone.post(f"/workspace/respond/{incident_id}/done", data={"csrf_token": "forged"})
            unknown = await phone.post(
                f"/workspace/respond/{incident_id}/teleport", data={"csrf_token": csrf_of(page.text)}
            )
            page = await press(phone, page, "done")
            assert "Recorded: done at" in page.text and 'id="button-done"' not in page.text
        await stack.settled()
        await stack.reply("clinician", "STATUS")

        assert forged.status_code == 403 and forged.headers["content-type"].startswith("application/problem+json")
        assert unknown.status_code == 404
        events = await stream_events(js, first)
        clinician = stack.people["clinician"].responder_id
        subject = f"responder {clinician}"
        reported = [e for e in events if e.type == "dispatch.progress_reported"]
        assert [(e.data.stage, e.data.reported_by) for e in reported] == [
            ("en_route", subject),
            ("arrived", subject),
            ("done", subject),
        ]
        recorded = [e for e in events if e.type in ("dispatch.en_route", "dispatch.arrived", "dispatch.completed")]
        assert [(e.type, e.data.channel, e.data.responder_id, e.causation_id) for e in recorded] == [
            (t, "app", clinician, r.id)
            for t, r in zip(("dispatch.en_route", "dispatch.arrived", "dispatch.completed"), reported, strict=True)
        ]
        assert recorded[-1].data.closes_incident is False  # the peer coach is still on it
        [dose] = [e.data for e in events if e.type == "incident.naloxone_administered"]
        assert (dose.product, dose.dose_mg, dose.route, dose.given_by_role, dose.response, dose.recorded_by) == (
            "naloxone 4 mg nasal spray",
            4.0,
            "intranasal",
            "clinician",
            "improved",
            subject,
        )
        [ems] = [e.data for e in events if e.type == "incident.ems_arrived"]
        assert (ems.agency, ems.recorded_by) == ("Denver Health Paramedics", subject)
        assert not [e for e in events if _confirmation_text(e)]  # buttons are confirmed on the page, not by SMS
        status = [e for e in await stream_events(js, first) if e.type == "notification.requested"][-1]
        assert (status.data.template, status.data.params) == ("status_summary", {"codes": []})  # released
        writes = [r for r in stack.app.state.read_models.audit.query(limit=1000) if r["action"].startswith("write:")]
        assert {r["action"] for r in writes} >= {
            "write:dispatch.progress_reported",
            "write:incident.naloxone_administered",
            "write:incident.ems_arrived",
        }
        assert {r["subject"] for r in writes} == {subject}


def _confirmation_text(event: Envelope) -> bool:
    return event.type == "notification.requested" and event.data.template.endswith("_confirmed")


async def test_a_forwarded_tampered_or_expired_link_asks_for_sign_in_and_others_may_not_see_the_page(
    js, nats_server, tmp_path: Path
) -> None:
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id = await accepted(stack)
        page_path = f"/workspace/respond/{incident_id}"
        link = stack.path(await stack.link_for("clinician"))
        nurse = await signed_in(stack, "nurse", "nurse-user")
        director = await signed_in(stack, "director", "dr-director")
        coach = await signed_in(stack, "coach", "coach-user")
        try:
            forwarded = sign_in_asked(await nurse.get(link))
            nurse_page = await nurse.get(page_path)
            director_page = await director.get(page_path)
            coach_page = await coach.get(page_path)
            async with stack.client() as stranger:
                tampered = sign_in_asked(await stranger.get(link[:-4] + ("AAAA" if link[-4:] != "AAAA" else "BBBB")))
                garbage = sign_in_asked(await stranger.get("/r/not-a-token"))
            async with stack.client() as phone:
                assert (await opened(stack, phone)).status_code == 200
                stack.move_clock(hours=12, minutes=1)  # the link was signed when they accepted, for 12 h
                expired_session = sign_in_asked(await phone.get(page_path))
                expired = sign_in_asked(await phone.get(link))
        finally:
            for client in (nurse, director, coach):
                await client.aclose()

        assert forwarded["next"] == page_path and "someone else" in forwarded["error"]
        assert nurse_page.status_code == 403  # never paged for it
        assert director_page.status_code == 200 and 'id="button-naloxone"' in director_page.text
        assert 'id="button-en_route"' not in director_page.text  # en route is the responder's own to press
        assert coach_page.status_code == 200 and 'id="button-en_route"' in coach_page.text  # backup: on it too
        assert tampered["next"] == "/workspace/" and garbage["next"] == "/workspace/"
        assert expired_session["next"] == page_path
        assert expired["next"] == page_path and "expired" in expired["error"]
        denied = [
            (r["action"], r["subject"])
            for r in stack.app.state.read_models.audit.query(limit=1000)
            if r["outcome"] == "denied"
        ]
        assert ("responder_link:someone_else", "nurse-user") in denied
        assert ("responder_page", "nurse-user") in denied
        assert denied.count(("responder_link:invalid", "unverified link")) == 2
        clinician = f"responder {stack.people['clinician'].responder_id}"
        assert ("responder_link:expired", clinician) in denied


async def test_a_report_changed_after_the_link_was_sent_shows_on_the_page(js, nats_server, tmp_path: Path) -> None:
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id = await accepted(stack)
        async with stack.client() as phone:
            before = await opened(stack, phone)
            await publish_event(js, _relocated(incident_id))
            await stack.settled()
            after = await phone.get(urlsplit(str(before.url)).path)
        assert "1701 Wynkoop St" in before.text
        assert "Platform 1, 17th St side" in after.text and "moved to the other platform" in after.text


def _relocated(incident_id: UUID) -> Envelope:
    data = IncidentRelocatedData(
        incident_id=incident_id,
        location=Location(lat=39.7533, lon=-105.0003, address="Platform 1, 17th St side"),
        zone="central",
        reason="moved to the other platform",
        recorded_by="intake-line",
    )
    return new_event(
        IncidentRelocated, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident_id
    )
