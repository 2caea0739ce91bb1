"""The field on the responder's incident page (issue 18), with the dispatcher and the projections service on one
real stream and one moved clock:

- a clinician paged for a withdrawal re-scores the person on scene (COWS): triage re-runs with the shared rules,
  ``incident.reassessed`` is recorded with the previous and new priority, the dispatcher records the priority
  change and texts the supervisor (``priority_changed``), the board and the timeline show it; a score out of the
  scale comes back as a 422 page with the form as typed and nothing recorded; a peer coach gets no form and is
  refused (403);
- "911 called" is ``field.ems_called`` (channel app), once; the documentation then says EMS was activated;
- a restock is ``naloxone.restock_reported`` with the kits, lot and expiry; a wrong expiry is shown back; the same
  form sent twice records once;
- nothing about a duress signal is ever on a page the responder can open (their incident page, their timeline),
  while the director and their supervisor read it on the timeline.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx

from services.contract.events import (
    Assessment,
    CheckInConfirmed,
    CheckInConfirmedData,
    CheckInDuress,
    CheckInDuressData,
    CheckInEnded,
    CheckInEndedData,
    CheckInMissed,
    CheckInMissedData,
    CheckInStarted,
    CheckInStartedData,
    CrisisKind,
    EtaGiven,
    EtaGivenData,
    IncidentReported,
    IncidentReportedData,
    LastKnownLocation,
    Location,
    NotificationRequested,
    NotificationRequestedData,
    Priority,
    Reporter,
    ResponderArrived,
    ResponderProgressData,
    SelfHarmRiskDetails,
    WithdrawalDetails,
    new_event,
)
from tests.factories import T0
from tests.integration.test_board_timeline_audit import visible_text
from tests.integration.test_responder_page import accepted, audit, csrf_of, opened, press, signed_in
from tests.support.responder_stack import SCENE, ResponderStack, responder_stack
from tests.support.stream import stream_events


def reported_at_the_station(short_code: str, kind: CrisisKind, risk: str, **details: object) -> IncidentReported:
    """A P3 report at the station (generated test data): ``details`` is its kind's block."""
    incident_id = uuid4()
    data = IncidentReportedData(
        incident_id=incident_id,
        short_code=short_code,
        kind=kind,
        priority=Priority.P3,
        needs=[],
        guidance=["A responder is being paged."],
        location=Location(lat=SCENE[0], lon=SCENE[1], address="1701 Wynkoop St, Denver, CO 80202"),
        reporter=Reporter(channel="hotline", relation="friend", callback="+15550188002"),
        assessment=Assessment(risk_level=risk, reasons=["as reported"]),
        zone="central",
        **details,
    )
    return new_event(
        IncidentReported, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident_id
    )


def withdrawal_at_the_station(short_code: str = "5310") -> IncidentReported:
    """Opioid withdrawal, COWS 6 on the phone: P3, nobody special needed."""
    details = WithdrawalDetails(substance="opioid", cows_score=6)
    return reported_at_the_station(short_code, CrisisKind.WITHDRAWAL, "mild", withdrawal=details)


async def paged_for(stack: ResponderStack, incident_id: UUID) -> set[str]:
    people = {p.responder_id: key for key, p in stack.people.items()}
    return {
        people[e.data.responder_id]
        for e in await stream_events(stack.js)
        if e.type == "dispatch.offered" and e.incident_id == incident_id
    }


async def taken_by_the_clinician(stack: ResponderStack, reported: IncidentReported) -> tuple[UUID, int]:
    """``reported`` paged, the clinician among those paged accepts it: its id, and the stream position after."""
    await stack.publish(reported)
    incident_id = reported.data.incident_id
    assert "clinician" in await paged_for(stack, incident_id)
    await stack.reply("clinician", f"Y {reported.data.short_code}")
    return incident_id, len(await stream_events(stack.js)) + 1


async def of_type(stack: ResponderStack, event_type: str, first: int = 1) -> list:
    return [e for e in await stream_events(stack.js, first) if e.type == event_type]


async def post_form(client: httpx.AsyncClient, page: httpx.Response, action: str, **fields: str) -> httpx.Response:
    """A form sent as the browser sends it (its CSRF token and the page's form key), without following redirects."""
    path = urlsplit(str(page.url)).path
    key = re.search(r'name="form_key" value="([^"]+)"', page.text)
    data = {"csrf_token": csrf_of(page.text), **({"form_key": key[1]} if key else {}), **fields}
    return await client.post(f"{path}/{action}", data=data)


async def test_a_clinician_re_scores_on_scene_triage_re_runs_and_the_supervisor_is_told(
    js, nats_server, tmp_path: Path
) -> None:
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id, first = await taken_by_the_clinician(stack, withdrawal_at_the_station())
        async with stack.client() as phone:
            page = await opened(stack, phone)
            assert 'id="reassess-cows"' in page.text and 'id="reassess-ciwa_ar"' not in page.text
            assert 'id="reassess-c_ssrs"' not in page.text

            wrong = await post_form(phone, page, "reassess", instrument="cows", score="60")
            assert wrong.status_code == 422, wrong.text
            assert 'id="error-score"' in wrong.text and "the COWS total is from 0 to 48; 60 is not" in wrong.text
            assert 'name="score" inputmode="numeric" autocomplete="off" maxlength="3" value="60"' in wrong.text
            await stack.settled()
            assert await of_type(stack, "incident.reassessed", first) == []

            stack.move_clock(minutes=20)
            page = await press(phone, page, "reassess", instrument="cows", score="14")
            assert "Recorded: re-assessment COWS 14, priority P3 -&gt; P2 at" in page.text
            await stack.settled()
            assert "COWS 14: priority P3 -&gt; P2" in page.text  # under "From the report"

        [again] = await of_type(stack, "incident.reassessed", first)
        data = again.data
        assert (data.instrument, data.score, data.previous_priority, data.priority) == ("cows", 14, "P3", "P2")
        assert data.risk_level == "moderate" and data.reasons == ["COWS 14 >= 8: prescriber review for buprenorphine"]
        assert data.responder_id == stack.people["clinician"].responder_id and data.recorded_by.startswith("responder")
        notices = [
            e for e in await of_type(stack, "notification.requested", first) if e.data.template == "priority_changed"
        ]
        assert [(n.data.to, n.data.params) for n in notices] == [
            (stack.people["supervisor"].phone, {"code": "5310", "from_priority": "P3", "to_priority": "P2"})
        ]
        assert stack.dispatcher.repository.get(incident_id).priority == "P2"
        written = [r["outcome"] for r in audit(stack, "write:incident.reassessed") if r["outcome"] != "read"]
        assert written == ["recorded"]  # the 422 recorded nothing

        # scored again, the same priority: recorded, and nobody is told anything new
        later = len(await stream_events(js)) + 1
        async with stack.client() as phone:
            page = await press(phone, await opened(stack, phone), "reassess", instrument="cows", score="10")
            assert "Recorded: re-assessment COWS 10, priority stays P2 at" in page.text
        await stack.settled()
        assert [e.data.priority for e in await of_type(stack, "incident.reassessed", later)] == ["P2"]
        assert [e.data.template for e in await of_type(stack, "notification.requested", later)] == []

        director = await signed_in(stack, "director", "dr-director")
        try:
            timeline = visible_text((await director.get(f"/workspace/incidents/{incident_id}")).text)
            board = (await director.get("/workspace/")).text
        finally:
            await director.aclose()
        assert "Re-assessed on scene: COWS 14 (moderate); priority P3 -> P2" in timeline
        assert "Priority-changed notice text to Dana Whitfield (supervisor)" in timeline
        row = board[board.index(f'data-incident="{incident_id}"') :]
        assert "P2" in row[: row.index("</tr>")]


async def test_only_clinicians_re_assess_and_an_overdose_has_nothing_to_re_score(
    js, nats_server, tmp_path: Path
) -> None:
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id = await accepted(stack)  # an overdose: the clinician and the peer coach on it
        coach = await signed_in(stack, "coach", "coach-user")
        try:
            page = await coach.get(f"/workspace/respond/{incident_id}")
            assert page.status_code == 200 and "Re-assess on scene" not in page.text
            refused = await post_form(coach, page, "reassess", instrument="cows", score="14")
            assert refused.status_code == 403
        finally:
            await coach.aclose()
        async with stack.client() as phone:
            page = await opened(stack, phone, "clinician")
            assert "Re-assess on scene" not in page.text  # an overdose stays P1
            refused = await post_form(phone, page, "reassess", instrument="cows", score="14")
            assert refused.status_code == 422 and "an overdose stays P1" in refused.text
        await stack.settled()
        assert await of_type(stack, "incident.reassessed") == []
        assert stack.dispatcher.repository.get(incident_id).priority == "P1"


async def test_911_called_on_the_page_is_recorded_once_and_fills_the_documentation(
    js, nats_server, tmp_path: Path
) -> None:
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id = await accepted(stack)
        first = len(await stream_events(js)) + 1
        async with stack.client() as phone:
            page = await opened(stack, phone)
            assert 'id="button-ems-called"' in page.text and "911: not recorded as called" in page.text
            stack.move_clock(minutes=3)
            page = await press(phone, page, "ems_called")
            assert "Recorded: 911 called at 2026-11-23 09:03:00 UTC." in page.text
            assert 'id="button-ems-called"' not in page.text and "911: called 2026-11-23 09:03:00 UTC" in page.text
            again = await post_form(phone, page, "ems_called")
            assert again.status_code == 303 and "recorded+as+called+already" in again.headers["location"]
        await stack.settled()
        [called] = await of_type(stack, "field.ems_called", first)
        assert (called.data.channel, called.data.responder_id) == ("app", stack.people["clinician"].responder_id)
        assert called.data.called_at == called.occurred_at and called.incident_id == incident_id
        assert stack.dispatcher.repository.get(incident_id).field_state()["ems_called_at"] == called.data.called_at
        async with stack.client() as api:
            api.headers["Authorization"] = f"Bearer {stack.tokens['director']}"
            doc = (await api.get(f"/v1/incidents/{incident_id}/documentation")).json()
        ems = doc["documentation"]["what"]["ems"] if "documentation" in doc else doc["what"]["ems"]
        assert ems["activated"] is True and ems["called_at"].startswith("2026-11-23T09:03:00")
        gaps = doc.get("gaps") or doc.get("documentation", {}).get("gaps", [])
        assert "ems_activated" not in {g["key"] for g in gaps}
        written = [r["outcome"] for r in audit(stack, "write:field.ems_called") if r["outcome"] != "read"]
        assert written == ["recorded"]


async def test_a_restock_is_reported_with_its_lot_and_expiry_once_and_a_wrong_expiry_is_shown_back(
    js, nats_server, tmp_path: Path
) -> None:
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id = await accepted(stack)
        first = len(await stream_events(js)) + 1
        async with stack.client() as phone:
            page = await opened(stack, phone)
            assert 'id="restock"' in page.text
            wrong = await post_form(phone, page, "restock", count="3", lot="AB12", expires_on="2026-10")
            assert wrong.status_code == 422 and 'id="error-expires_on"' in wrong.text
            assert "those kits expired on 2026-10-31" in wrong.text
            assert 'value="AB12"' in wrong.text and 'value="2026-10"' in wrong.text  # the form as typed
            answer = await post_form(phone, page, "restock", count="3", lot="ab12", expires_on="2027-06")
            replay = await post_form(phone, page, "restock", count="3", lot="ab12", expires_on="2027-06")
            assert answer.status_code == replay.status_code == 303
            shown = await phone.get(answer.headers["location"])
            assert "Recorded: restock of 3 naloxone kits at" in shown.text
        await stack.settled()
        [restock] = await of_type(stack, "naloxone.restock_reported", first)
        assert restock.incident_id == incident_id
        assert restock.data.responder_id == stack.people["clinician"].responder_id
        assert [k.model_dump(mode="json") for k in restock.data.kits] == [
            {"count": 3, "lot": "AB12", "expires_on": "2027-06-30"}
        ]
        director = await signed_in(stack, "director", "dr-director")
        try:
            timeline = visible_text((await director.get(f"/workspace/incidents/{incident_id}")).text)
        finally:
            await director.aclose()
        assert "Restock of Maya Okafor (clinician)'s naloxone reported: 3 kits (lot AB12, expires 2027-06-30)" in (
            timeline
        )
        written = [r["outcome"] for r in audit(stack, "write:naloxone.restock_reported") if r["outcome"] != "read"]
        assert written == ["recorded"]  # the same form sent twice records once


async def test_a_duress_signal_is_on_no_page_the_responder_can_open_but_staff_read_it(
    js, nats_server, tmp_path: Path
) -> None:
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id = await accepted(stack)
        clinician, supervisor = stack.people["clinician"], stack.people["supervisor"]
        now = stack.clock.now()
        where = LastKnownLocation(lat=SCENE[0], lon=SCENE[1], as_of=now, source="scene", place_name="Union Station")
        alert_id = uuid4()

        def dispatched(cls, data) -> object:
            return new_event(
                cls, data, event_id=uuid4(), occurred_at=now, producer="dispatcher", incident_id=incident_id
            )

        await stack.publish(
            # what the dispatcher records for a reply with the duress word: an OK to the phone, the alarm to staff
            dispatched(
                CheckInConfirmed,
                CheckInConfirmedData(
                    incident_id=incident_id,
                    responder_id=clinician.responder_id,
                    code="4821",
                    channel="sms",
                    next_due_at=now,
                ),
            ),
            dispatched(
                CheckInDuress,
                CheckInDuressData(
                    incident_id=incident_id,
                    responder_id=clinician.responder_id,
                    code="4821",
                    last_known=where,
                    notified=[supervisor.responder_id],
                ),
            ),
            dispatched(
                NotificationRequested,
                NotificationRequestedData(
                    notification_id=alert_id,
                    incident_id=incident_id,
                    page_id=None,
                    to=supervisor.phone,
                    template="duress_alert",
                    params={"responder_name": clinician.name, "code": "4821"},
                    priority=Priority.P1,
                ),
            ),
        )
        await stack.reply("clinician", "OK 4821 PINEAPPLE")  # what they texted: no page shows an inbound text
        pages: dict[str, str] = {}
        async with stack.client() as phone:
            pages["link page"] = (await opened(stack, phone)).text
        for who, user in (("clinician", "clinician-user"), ("coach", "coach-user")):
            client = await signed_in(stack, who, user)
            try:
                pages[f"{who} page"] = (await client.get(f"/workspace/respond/{incident_id}")).text
                pages[f"{who} timeline"] = (await client.get(f"/workspace/incidents/{incident_id}")).text
            finally:
                await client.aclose()
        async with stack.client() as api:
            api.headers["Authorization"] = f"Bearer {stack.tokens['clinician']}"
            pages["clinician API timeline"] = (await api.get(f"/v1/incidents/{incident_id}/timeline")).text
        staff: dict[str, str] = {}
        director = await signed_in(stack, "director", "dr-director")
        try:
            staff["director"] = visible_text((await director.get(f"/workspace/incidents/{incident_id}")).text)
        finally:
            await director.aclose()

    for name, html in pages.items():
        assert "checked in (ok 4821)" in visible_text(html).lower() or "page" in name, name
        for word in ("duress", "Duress", "DURESS", "checkin.duress", "duress_alert", "PINEAPPLE", "pineapple"):
            assert word not in html, (name, word)
    assert (
        "Duress signal from Maya Okafor (clinician): supervisor paged (Dana Whitfield (supervisor))"
        in (staff["director"])
    )
    assert "DURESS alert text to Dana Whitfield (supervisor)" in staff["director"]


def self_harm_risk_by_the_river(short_code: str = "6420") -> IncidentReported:
    """C-SSRS screener on the phone: only Q1 yes, low risk, P3."""
    details = SelfHarmRiskDetails(q1=True, q2=False, q6_ever=False)
    return reported_at_the_station(short_code, CrisisKind.SELF_HARM_RISK, "low", self_harm_risk=details)


async def test_the_c_ssrs_answers_on_scene_follow_the_screeners_skip_logic_and_re_run_triage(
    js, nats_server, tmp_path: Path
) -> None:
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id, first = await taken_by_the_clinician(stack, self_harm_risk_by_the_river())
        answers = {"q1": "yes", "q2": "yes", "q3": "yes", "q5": "no", "q6_ever": "no"}
        async with stack.client() as phone:
            page = await opened(stack, phone)
            assert 'id="reassess-c_ssrs"' in page.text and 'id="score-cows"' not in page.text
            skipped = await post_form(phone, page, "reassess", instrument="c_ssrs", **answers)  # Q4 not answered
            assert skipped.status_code == 422
            assert 'id="error-q4"' in skipped.text and "Q4 must be answered after a yes to Q2" in skipped.text
            assert 'name="q3" value="yes" checked' in skipped.text  # the answers as given
            page = await press(phone, page, "reassess", instrument="c_ssrs", **answers, q4="yes")
            assert "Recorded: re-assessment C-SSRS high risk, priority P3 -&gt; P1 at" in page.text
            assert '<span class="prio P1">P1</span>' in page.text
        await stack.settled()
        [again] = await of_type(stack, "incident.reassessed", first)
        assert (again.data.instrument, again.data.c_ssrs_risk, again.data.score) == ("c_ssrs", "high", None)
        assert (again.data.previous_priority, again.data.priority) == ("P3", "P1")
        assert stack.dispatcher.repository.get(incident_id).priority == "P1"


async def test_the_read_models_keep_eta_and_check_in_for_the_board_and_every_field_event_for_the_timeline(
    js, nats_server, tmp_path: Path
) -> None:
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id = await accepted(stack)
        clinician = stack.people["clinician"].responder_id
        now = stack.clock.now()
        code = {"incident_id": incident_id, "responder_id": clinician, "code": "4821"}

        def dispatched(cls, data, after: float) -> object:  # noqa: ANN001 - a contract class and its data
            at = now + timedelta(minutes=after)
            return new_event(
                cls, data, event_id=uuid4(), occurred_at=at, producer="dispatcher", incident_id=incident_id
            )

        async def board(who: str) -> dict:
            async with stack.client() as api:
                api.headers["Authorization"] = f"Bearer {stack.tokens[who]}"
                [row] = (await api.get("/v1/incidents")).json()
            return row["field"]

        await stack.publish(
            dispatched(EtaGiven, EtaGivenData(**code, minutes=12, eta_at=now + timedelta(minutes=12)), 0)
        )
        assert await board("director") == {"lines": [{"missed": False, "text": "ETA 02:12"}], "check_in_missed": False}
        due = now + timedelta(minutes=25)
        await stack.publish(
            dispatched(ResponderArrived, ResponderProgressData(**code, page_id=uuid4(), message_sid=None), 10),
            dispatched(CheckInStarted, CheckInStartedData(**code, channel="sms", minutes=15, due_at=due), 10),
        )
        assert (await board("clinician"))["lines"] == [{"missed": False, "text": "check-in due 02:25"}]
        await stack.publish(
            dispatched(CheckInMissed, CheckInMissedData(**code, step="call", due_at=due, minutes_overdue=3), 28)
        )
        assert await board("director") == {
            "lines": [{"missed": True, "text": "CHECK-IN MISSED (due 02:25)"}],
            "check_in_missed": True,
        }
        await stack.publish(dispatched(CheckInEnded, CheckInEndedData(**code, reason="clear", channel="sms"), 30))
        assert await board("director") == {"lines": [], "check_in_missed": False}

        async with stack.client() as api:
            api.headers["Authorization"] = f"Bearer {stack.tokens['director']}"
            entries = (await api.get(f"/v1/incidents/{incident_id}/timeline")).json()["entries"]
        said = {e["type"]: e["summary"] for e in entries}
        assert said["field.eta_given"] == "accepted page 4821 with ETA 12 min (at 02:12:00 MST)"
        assert said["checkin.started"] == "check-in started for 4821: every 15 min, first due 02:25:00 MST"
        assert said["checkin.missed"] == (
            "CHECK-IN MISSED by Maya Okafor (clinician), due 02:25:00 MST, 3 min ago: voice call placed"
        )
        assert said["checkin.ended"] == "check-in for 4821 ended (CLEAR: the responder is safe and done checking in)"
