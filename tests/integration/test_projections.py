"""Projections over a real nats-server and real stores (SQLite and PostgreSQL): timelines with durations, SLA
and "as known at"; documentation with gaps, attestation, sign-off and exports; follow-up tasks and their
overdue pages; metrics; role-based access and the audit log; rebuild equal to live."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
from eventsourcing.persistence import Tracking
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.task import Task

from services.contract.events import (
    Assessment,
    CrisisKind,
    DispatchAcknowledged,
    DispatchAcknowledgedData,
    DispatchCompleted,
    DispatchCompletedData,
    DispatchEscalated,
    DispatchEscalatedData,
    DispatchOffered,
    DispatchOfferedData,
    EmsArrived,
    EmsArrivedData,
    Envelope,
    GeoPoint,
    IncidentCancelled,
    IncidentCancelledData,
    IncidentReported,
    IncidentReportedData,
    Location,
    NaloxoneAdministered,
    NaloxoneAdministeredData,
    NotificationRequested,
    NotificationRequestedData,
    OverdoseDetails,
    PageReason,
    Priority,
    Reporter,
    ResponderArrived,
    ResponderEnRoute,
    ResponderProfile,
    ResponderProgressData,
    ResponderRegistered,
    Role,
    SelfHarmRiskDetails,
    SmsSent,
    SmsSentData,
    WithdrawalDetails,
    decode_event,
    new_event,
)
from services.projections.adapters.sql_read_models import SCHEMA_VERSION
from services.projections.bootstrap import DESK_NAME, build, build_projections
from services.projections.read_models import ReadModels
from services.projections.rebuild import replay_into
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from services.runtime.credentials import AccessRole, issue_credential
from services.runtime.stream import STREAM_NAME, publish_event
from tests.support.asgi_server import serving
from tests.support.stream import (
    last_sequence,
    publish_all,
    relayed,
    stream_events,
    taken_in,
    tracked,
    wait_for_stream,
)

T0 = datetime.fromisoformat("2026-11-23T09:00:00+00:00")


def sid() -> str:
    return "SM" + uuid4().hex


@dataclass
class Person:
    name: str
    role: Role
    responder_id: UUID = field(default_factory=uuid4)
    phone: str = ""
    supervisor_id: UUID | None = None

    def registered(self) -> Envelope:
        profile = ResponderProfile(
            responder_id=self.responder_id,
            name=self.name,
            role=self.role,
            phone=self.phone,
            home_base=GeoPoint(lat=39.74, lon=-104.99),
            supervisor_id=self.supervisor_id,
        )
        return new_event(ResponderRegistered, profile, event_id=uuid4(), occurred_at=T0, producer="tests")


def team() -> dict[str, Person]:
    supervisor = Person("Sam Supervisor", Role.SUPERVISOR, phone="+15550199004")
    return {
        "supervisor": supervisor,
        "clinician": Person(
            "Cleo Clinician", Role.CLINICIAN, phone="+15550199001", supervisor_id=supervisor.responder_id
        ),
        "coach": Person("Pat Peer", Role.PEER_COACH, phone="+15550199002", supervisor_id=supervisor.responder_id),
        "nurse": Person("Nia Nurse", Role.NURSE, phone="+15550199003", supervisor_id=supervisor.responder_id),
    }


@dataclass
class Story:
    """One incident's events, told with explicit times (minutes after ``start``)."""

    kind: CrisisKind = CrisisKind.OVERDOSE
    priority: Priority = Priority.P1
    start: datetime = T0
    overdose: OverdoseDetails | None = field(default_factory=lambda: OverdoseDetails(ems_called=False))
    withdrawal: WithdrawalDetails | None = None
    self_harm: SelfHarmRiskDetails | None = None
    risk_level: str | None = None
    incident_id: UUID = field(default_factory=uuid4)
    code: str = "4821"
    pages: dict[UUID, UUID] = field(default_factory=dict)

    def at(self, minutes: float) -> datetime:
        return self.start + timedelta(minutes=minutes)

    def _event(self, cls: type[Envelope], data: Any, minutes: float, producer: str = "dispatcher") -> Envelope:
        return new_event(
            cls, data, event_id=uuid4(), occurred_at=self.at(minutes), producer=producer, incident_id=self.incident_id
        )

    def reported(self, address: str = "5th St & Main") -> Envelope:
        data = IncidentReportedData(
            incident_id=self.incident_id,
            short_code=self.code,
            kind=self.kind,
            priority=self.priority,
            needs=["naloxone_carrier", "ems_now"] if self.kind is CrisisKind.OVERDOSE else [],
            guidance=["Call 911 now."],
            location=Location(lat=39.7431, lon=-104.9876, address=address),
            reporter=Reporter(channel="hotline", relation="friend", callback="+15550188001"),
            overdose=self.overdose if self.kind is CrisisKind.OVERDOSE else None,
            withdrawal=self.withdrawal,
            self_harm_risk=self.self_harm,
            assessment=Assessment(risk_level=self.risk_level, reasons=["test"]) if self.risk_level else None,
            zone="central",
        )
        return self._event(IncidentReported, data, 0, "intake_gateway")

    def naloxone(self, minutes: float, response: str | None = "improved") -> Envelope:
        data = NaloxoneAdministeredData(
            incident_id=self.incident_id,
            given_at=self.at(minutes),
            product="naloxone 4 mg nasal spray",
            dose_mg=4,
            route="intranasal",
            given_by_role="peer_coach",
            response=response,
            recorded_by="coach-user",
        )
        return self._event(NaloxoneAdministered, data, minutes, "intake_gateway")

    def ems_arrived(self, minutes: float, agency: str = "Denver Fire") -> Envelope:
        data = EmsArrivedData(incident_id=self.incident_id, arrived_at=self.at(minutes), agency=agency)
        return self._event(EmsArrived, data, minutes, "intake_gateway")

    def cancelled(self, minutes: float) -> Envelope:
        data = IncidentCancelledData(incident_id=self.incident_id, reason="false alarm: person was asleep")
        return self._event(IncidentCancelled, data, minutes, "intake_gateway")

    def offered(self, person: Person, minutes: float, step: int = 1) -> list[Envelope]:
        page_id = uuid4()
        self.pages[person.responder_id] = page_id
        data = DispatchOfferedData(
            incident_id=self.incident_id,
            page_id=page_id,
            responder_id=person.responder_id,
            responder_role=person.role.value,
            code=self.code,
            priority=self.priority,
            ack_deadline=self.at(minutes + 1.5),
            step=step,
            reason=PageReason(on_call=True, skills_matched=[], distance_km=0.8, load=0, rule="nearest on call"),
        )
        notification_id = uuid4()
        request = NotificationRequestedData(
            notification_id=notification_id,
            incident_id=self.incident_id,
            page_id=page_id,
            to=person.phone,
            template="page_offer",
            params={"priority": self.priority.value, "code": self.code},
            priority=self.priority,
        )
        sent = SmsSentData(
            notification_id=notification_id, message_sid=sid(), to=person.phone, status="queued", segments=1
        )
        return [
            self._event(DispatchOffered, data, minutes),
            self._event(NotificationRequested, request, minutes),
            self._event(SmsSent, sent, minutes + 0.1, "notifier"),
        ]

    def _answer(self, person: Person) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "page_id": self.pages[person.responder_id],
            "responder_id": person.responder_id,
            "code": self.code,
            "message_sid": sid(),
        }

    def acknowledged(self, person: Person, minutes: float) -> Envelope:
        return self._event(DispatchAcknowledged, DispatchAcknowledgedData(**self._answer(person)), minutes)

    def en_route(self, person: Person, minutes: float) -> Envelope:
        return self._event(ResponderEnRoute, ResponderProgressData(**self._answer(person)), minutes)

    def arrived(self, person: Person, minutes: float) -> Envelope:
        return self._event(ResponderArrived, ResponderProgressData(**self._answer(person)), minutes)

    def completed(self, person: Person, minutes: float) -> Envelope:
        data = DispatchCompletedData(**self._answer(person), closes_incident=True)
        return self._event(DispatchCompleted, data, minutes)

    def escalated(self, minutes: float) -> Envelope:
        data = DispatchEscalatedData(
            incident_id=self.incident_id, from_step=1, to_step=2, rung="candidates", reason="timed_out"
        )
        return self._event(DispatchEscalated, data, minutes)

    def full_response(self, person: Person, ack: float, en_route: float, arrive: float, done: float) -> list[Envelope]:
        return [
            self.reported(),
            *self.offered(person, 0.2),
            self.acknowledged(person, ack),
            self.en_route(person, en_route),
            self.arrived(person, arrive),
            self.completed(person, done),
        ]


@dataclass
class Workspace:
    url: str
    app: Any
    clock: ManualClock
    tokens: dict[str, str]
    people: dict[str, Person]
    settings: ProjectionsSettings

    def client(self, who: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=30)

    @property
    def read_models(self) -> ReadModels:
        return self.app.state.read_models

    async def settled(self, js) -> None:
        """Wait (on tracking) until the follow-up desk has processed everything on the stream and published what
        it decided, and then until both consumers have applied everything on the stream, the desk's own too."""
        desk = self.app.state.desk
        await taken_in(js, DESK_NAME)
        await relayed(desk)
        last = await last_sequence(js)
        await tracked(self.read_models.store, last)
        await taken_in(js, DESK_NAME)

    async def settled_events(self, js, first: int = 1) -> list[Envelope]:
        """Once settled, the stream's events from sequence ``first`` on."""
        await self.settled(js)
        return await stream_events(js, first)


def make_settings(nats_url: str, var_dir: Path, database_url: str) -> ProjectionsSettings:
    return ProjectionsSettings(
        nats_url=nats_url,
        var_dir=var_dir,
        database_url=database_url,
        credentials_file=var_dir / "credentials.json",
        followup_check_seconds=3600,  # tests drive the overdue check themselves
    )


def issue_tokens(path: Path, people: dict[str, Person]) -> dict[str, str]:
    tokens = {"director": issue_credential(path, "dr-director", AccessRole.DIRECTOR)}
    for key, person in people.items():
        tokens[key] = issue_credential(path, f"{key}-user", AccessRole.RESPONDER, person.responder_id)
    tokens["admin"] = issue_credential(path, "roster-admin", AccessRole.ADMIN)
    return tokens


@contextlib.asynccontextmanager
async def workspace(
    js,
    nats_server,
    tmp_path: Path,
    database_url: str = "",
    clock: ManualClock | None = None,
    people: dict[str, Person] | None = None,
) -> AsyncIterator[Workspace]:
    """The projections service on a real port; ``people`` again after a restart (the roster is on the stream)."""
    settings = make_settings(nats_server.url, tmp_path / "var", database_url)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    restarted = people is not None
    people = people or team()
    tokens = issue_tokens(settings.credentials_file, people)
    if not restarted:
        for person in people.values():
            await publish_event(js, person.registered())
    clock = clock or ManualClock(T0 + timedelta(hours=2))
    app = build(settings, clock)
    with serving(app) as url:
        space = Workspace(url, app, clock, tokens, people, settings)
        await space.settled(js)
        yield space


# ---- 1. timeline ------------------------------------------------------------------------------------------------


async def test_timeline_orders_every_event_with_durations_and_marks_the_sla_breach(
    js, nats_server, tmp_path, database_url
) -> None:
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        clinician = space.people["clinician"]
        story = Story()
        await publish_all(js, story.full_response(clinician, ack=1.5, en_route=3, arrive=75, done=120))
        await space.settled(js)
        async with space.client("director") as client:
            response = await client.get(f"/v1/incidents/{story.incident_id}/timeline")
        assert response.status_code == 200, response.text
        timeline = response.json()
        types = [e["type"] for e in timeline["entries"]]
        assert types[0] == "incident.reported"
        assert types.index("dispatch.offered") < types.index("dispatch.acknowledged") < types.index("dispatch.arrived")
        assert all(e["actor"] and e["channel"] and e["occurred_at"] for e in timeline["entries"])
        acknowledged = next(e for e in timeline["entries"] if e["type"] == "dispatch.acknowledged")
        assert acknowledged["actor"] == "Cleo Clinician (clinician)" and acknowledged["channel"] == "sms"
        assert timeline["durations_seconds"] == {
            "first_page": 12.0,
            "acknowledged": 90.0,
            "en_route": 180.0,
            "on_scene": 4500.0,
            "closed": 7200.0,
        }
        assert timeline["sla"]["state"] == "breached" and timeline["sla"]["minutes_late"] == 15.0
        breach = [e for e in timeline["entries"] if e["sla_breach"]]
        assert len(breach) == 1 and "15 min" in breach[0]["summary"]
        assert timeline["status"] == "closed"
        assert "+15550188001" not in response.text  # the reporter's callback stays off the timeline


async def test_timeline_as_known_at_a_past_moment(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        clinician = space.people["clinician"]
        story = Story()
        events = story.full_response(clinician, ack=1.5, en_route=3, arrive=20, done=60)
        await publish_all(js, events[:5])  # reported, offered, notification, sent, acknowledged
        await space.settled(js)
        async with space.client("director") as client:
            early = (await client.get(f"/v1/incidents/{story.incident_id}/timeline")).json()
            await publish_all(js, events[5:])
            await space.settled(js)
            moment = max(e["recorded_at"] for e in early["entries"] if e["recorded_at"])
            then = (await client.get(f"/v1/incidents/{story.incident_id}/timeline", params={"as_of": moment})).json()
            now = (await client.get(f"/v1/incidents/{story.incident_id}/timeline")).json()
        assert [e["event_id"] for e in then["entries"]] == [e["event_id"] for e in early["entries"]]
        assert then["status"] == "open" and then["milestones"]["on_scene_at"] is None and then["as_of"] is not None
        assert now["status"] == "closed" and {str(e.id) for e in events} <= {e["event_id"] for e in now["entries"]}


# ---- 2. documentation -----------------------------------------------------------------------------------------


def complete_fields(at: datetime) -> dict[str, Any]:
    return {
        "disposition": "transported_to_ed",
        "handoff_organisation": "Denver Health ED",
        "handoff_receiving_person": "Charge nurse on duty",
        "handed_off_at": (at + timedelta(minutes=50)).isoformat(),
        "ems_agency": "Denver Fire / AMR",
        "follow_up_plan": "Outreach visit within 72 h; MOUD referral offered.",
        "documentation_minutes": 15,
        "language": "en",
        "interpreter_used": False,
        "naloxone_doses": [
            {
                "given_at": (at - timedelta(minutes=3)).isoformat(),
                "product": "naloxone nasal spray 4 mg",
                "dose_mg": 4,
                "route": "intranasal",
                "given_by_role": "bystander",
                "response": "improved",
            }
        ],
    }


async def test_documentation_gaps_are_completed_attested_and_signed_off_as_events(
    js, nats_server, tmp_path, database_url
) -> None:
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        clinician, coach = space.people["clinician"], space.people["coach"]
        story = Story(overdose=OverdoseDetails(ems_called=True, naloxone_doses_given=1, responsive=False))
        events = story.full_response(clinician, ack=1, en_route=2, arrive=12, done=58)
        events[1:1] = story.offered(coach, 0.3)
        events.insert(6, story.acknowledged(coach, 1.2))
        first_new = await publish_all(js, events) + 1
        await space.settled(js)
        url = f"/v1/incidents/{story.incident_id}/documentation"
        async with (
            space.client("director") as director,
            space.client("clinician") as cleo,
            space.client("coach") as pat,
        ):
            doc = (await director.get(url)).json()
            gaps = {g["key"] for g in doc["gaps"]}
            assert {"disposition", "naloxone_doses", "ems_agency", "documentation_minutes", "language"} <= gaps
            assert doc["when"]["on_scene_at"] and doc["who"]["reporter"]["callback"] == "+15550188001"
            refused = await cleo.post(f"{url}/attestation")
            assert refused.status_code == 409 and "gap" in refused.json()["detail"]

            saved = await cleo.post(f"{url}/fields", json=complete_fields(story.start))
            assert saved.status_code == 202, saved.text
            doc = (await cleo.get(url)).json()
            assert doc["gaps"] == [] and doc["status"] == "draft"
            assert doc["what"]["interventions"]["naloxone_doses"][0]["response"] == "improved"

            assert (await director.post(f"{url}/sign-off", json={})).status_code == 409  # not attested yet
            peer = await pat.post(f"{url}/attestation")
            assert peer.status_code == 409 and "peer coach may not attest" in peer.json()["detail"]
            assert (await director.post(f"{url}/attestation")).status_code == 403
            assert (await cleo.post(f"{url}/attestation")).status_code == 202
            assert (await cleo.post(f"{url}/sign-off", json={})).status_code == 403
            signed = await director.post(f"{url}/sign-off", json={"decision": "approved", "comment": "Good work."})
            assert signed.status_code == 202, signed.text
            doc = (await director.get(url)).json()
        assert doc["status"] == "signed_off"
        assert doc["sign_off"]["attested_by"] == "clinician-user" and doc["sign_off"]["attester_role"] == "clinician"
        assert doc["sign_off"]["signed_off_by"] == "dr-director"
        on_stream = [e.type for e in await stream_events(js, first_new) if e.incident_id == story.incident_id]
        assert {"documentation.fields_completed", "documentation.attested", "documentation.signed_off"} <= set(
            on_stream
        )
        assert on_stream.count("documentation.attested") == 1


async def test_exports_print_html_pdf_and_a_valid_fhir_bundle(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        clinician = space.people["clinician"]
        story = Story(overdose=OverdoseDetails(ems_called=True, naloxone_doses_given=1))
        await publish_all(js, story.full_response(clinician, ack=1, en_route=2, arrive=12, done=58))
        await space.settled(js)
        base = f"/v1/incidents/{story.incident_id}"
        async with space.client("clinician") as cleo, space.client("director") as director:
            assert (
                await cleo.post(f"{base}/documentation/fields", json=complete_fields(story.start))
            ).status_code == 202
            html = await director.get(f"{base}/documentation.html")
            pdf = await director.get(f"{base}/documentation.pdf")
            fhir = await director.get(f"{base}/fhir")
        assert html.status_code == 200 and "<h2>What</h2>" in html.text and "Denver Health ED" in html.text
        assert "@page" in html.text and "http" not in html.text.split("<body>")[0].replace("http-equiv", "")
        assert (
            pdf.status_code == 200
            and pdf.content.startswith(b"%PDF")
            and pdf.headers["content-type"] == "application/pdf"
        )
        assert fhir.status_code == 200 and fhir.headers["content-type"].startswith("application/fhir+json")
        bundle = Bundle.model_validate(fhir.json())
        assert bundle.type == "collection"
        kinds = {entry.resource.get_resource_type() for entry in bundle.entry}
        assert {"Encounter", "MedicationAdministration", "Task", "Communication", "Patient"} <= kinds
        models = {
            "Encounter": Encounter,
            "MedicationAdministration": MedicationAdministration,
            "Task": Task,
            "Communication": Communication,
            "Patient": Patient,
            "Observation": Observation,
            "QuestionnaireResponse": QuestionnaireResponse,
        }
        for entry in fhir.json()["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] in models:
                models[resource["resourceType"]].model_validate(resource)
        encounter = next(e["resource"] for e in fhir.json()["entry"] if e["resource"]["resourceType"] == "Encounter")
        assert encounter["class"]["code"] == "FLD" and encounter["status"] == "finished"
        assert encounter["hospitalization"]["dischargeDisposition"]["text"] == "transported to ed"
        assert any(x["url"].endswith("eTimes.06") for x in encounter["extension"])
        dose = next(
            e["resource"] for e in fhir.json()["entry"] if e["resource"]["resourceType"] == "MedicationAdministration"
        )
        assert dose["medicationCodeableConcept"]["coding"][0]["code"] == "7242"
        assert "+1555" not in fhir.text  # no phone numbers in the export's messages


# ---- 3. follow-up tasks -------------------------------------------------------------------------------------------


async def test_follow_ups_are_created_assigned_completed_and_rescheduled(
    js, nats_server, tmp_path, database_url
) -> None:
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        coach, clinician = space.people["coach"], space.people["clinician"]
        overdose = Story()
        start = await publish_all(js, [overdose.reported(), *overdose.offered(coach, 0.2)])
        await publish_all(js, [overdose.acknowledged(coach, 1)])
        events = await space.settled_events(js, start)
        assert any(e.type == "followup.assigned" for e in events)
        created = next(e for e in events if e.type == "followup.created")
        assert created.data.rule == "post_overdose_outreach" and created.data.owner_role == Role.PEER_COACH
        assert created.data.due_at == overdose.start + timedelta(hours=72)
        assigned = next(e for e in events if e.type == "followup.assigned")
        assert assigned.data.assignee_id == coach.responder_id and assigned.data.assigned_by == "rules"
        told = [e for e in events if e.type == "notification.requested" and e.data.template == "task_due"]
        assert [e.data.to for e in told] == [coach.phone]
        assert told[0].data.params == {"task_code": created.data.task_code, "due_in_hours": 72, "incident_code": "4821"}

        crisis = Story(kind=CrisisKind.SELF_HARM_RISK, priority=Priority.P1, overdose=None)
        await publish_all(js, [crisis.reported()])
        events = await space.settled_events(js, start)
        assert sum(e.type == "followup.created" for e in events) == 3
        task_id = created.data.task_id
        async with space.client("coach") as pat, space.client("director") as director, space.client("nurse") as nia:
            mine = (await pat.get("/v1/followups")).json()
            assert [t["task_id"] for t in mine] == [str(task_id)]
            assert mine[0]["assignee_name"] == "Pat Peer" and mine[0]["status"] == "open"
            everything = (await director.get("/v1/followups")).json()
            assert {t["rule"] for t in everything} == {
                "post_overdose_outreach",
                "caring_contact",
                "follow_up_appointment",
            }
            caring = next(t for t in everything if t["rule"] == "caring_contact")
            assert datetime.fromisoformat(caring["due_at"]) == crisis.start + timedelta(hours=24)
            assert (await nia.get("/v1/followups")).json() == []
            assert (
                await nia.post(f"/v1/followups/{task_id}/complete", json={"outcome": "contact_made"})
            ).status_code == 403
            appointment = next(t for t in everything if t["rule"] == "follow_up_appointment")
            bad = await director.post(
                f"/v1/followups/{appointment['task_id']}/assign", json={"assignee_id": str(coach.responder_id)}
            )
            assert bad.status_code == 409  # a peer coach cannot take a clinician's task
            ok = await director.post(
                f"/v1/followups/{appointment['task_id']}/assign", json={"assignee_id": str(clinician.responder_id)}
            )
            assert ok.status_code == 202
            later = (space.clock.now() + timedelta(days=1)).isoformat()
            moved = await pat.post(
                f"/v1/followups/{task_id}/reschedule", json={"due_at": later, "reason": "client asked"}
            )
            assert moved.status_code == 202
            done = await pat.post(
                f"/v1/followups/{task_id}/complete", json={"outcome": "contact_made", "note": "kit replaced"}
            )
            assert done.status_code == 202
            again = await pat.post(f"/v1/followups/{task_id}/complete", json={"outcome": "contact_made"})
            assert again.status_code == 409
            task = (await pat.get(f"/v1/followups/{task_id}")).json()
        assert task["status"] == "done" and task["outcome"] == "contact_made" and task["note"] == "kit replaced"
        assert task["due_at"].startswith(later[:19])
        assert [h["what"].split(":")[0] for h in task["history"]][:2] == [
            "created",
            f"assigned to {coach.responder_id}",
        ]


async def test_overdue_follow_up_pages_the_assignee_and_tells_the_supervisor_even_after_a_restart(
    js, nats_server, tmp_path
) -> None:
    clock = ManualClock(T0 + timedelta(hours=1))
    overdose = Story()
    async with workspace(js, nats_server, tmp_path, clock=clock) as space:
        coach, supervisor = space.people["coach"], space.people["supervisor"]
        start = await publish_all(
            js, [overdose.reported(), *overdose.offered(coach, 0.2), overdose.acknowledged(coach, 1)]
        )
        assert any(e.type == "followup.assigned" for e in await space.settled_events(js, start))
        clock.advance(timedelta(hours=71))  # 72 h after the report: not overdue yet
        assert await space.app.state.overdue_watch.check_once() == 0
    # the service is down while the task falls due; the next start finds it in the store
    clock.advance(timedelta(hours=2))
    async with workspace(js, nats_server, tmp_path, clock=clock, people=space.people) as space:
        events = await wait_for_stream(js, lambda es: any(e.type == "followup.overdue" for e in es), start)
        overdue = next(e for e in events if e.type == "followup.overdue")
        assert overdue.data.assignee_id == coach.responder_id
        assert set(overdue.data.notified) == {coach.responder_id, supervisor.responder_id}
        events = await wait_for_stream(
            js,
            lambda es: sum(e.type == "notification.requested" and e.data.template == "task_overdue" for e in es) == 2,
            start,
        )
        pages = [e for e in events if e.type == "notification.requested" and e.data.template == "task_overdue"]
        assert {p.data.to for p in pages} == {coach.phone, supervisor.phone}
        assert all(set(p.data.params) == {"task_code", "due_in_hours", "incident_code"} for p in pages)
        assert await space.app.state.overdue_watch.check_once() == 0  # once per due time
        await space.settled(js)
        async with space.client("coach") as pat:
            task = (await pat.get("/v1/followups")).json()[0]
        assert task["overdue"] is True and task["overdue_notices"] == 1


# ---- 4. metrics ------------------------------------------------------------------------------------------------------


async def test_metrics_by_priority_zone_and_week_with_sla_and_escalation(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        clinician = space.people["clinician"]
        fast = Story(start=T0)
        slow = Story(start=T0 + timedelta(hours=1))
        routine = Story(start=T0 + timedelta(days=7), priority=Priority.P2)
        events = [
            *fast.full_response(clinician, ack=1, en_route=2, arrive=20, done=40),
            *slow.full_response(clinician, ack=5, en_route=6, arrive=90, done=100),
            slow.escalated(3),
            *routine.full_response(clinician, ack=2, en_route=3, arrive=30, done=45),
        ]
        await publish_all(js, events)
        await space.settled(js)
        async with space.client("director") as director, space.client("clinician") as cleo:
            metrics = (await director.get("/v1/metrics")).json()
            assert (await cleo.get("/v1/metrics")).status_code == 403
        p1 = next(g for g in metrics["by_priority"] if g["key"] == "P1")
        assert p1["incidents"] == 2 and p1["acknowledge_median_s"] == 180 and p1["acknowledge_p90_s"] == 300
        assert p1["arrive_median_s"] == 3300 and p1["arrive_p90_s"] == 5400
        assert p1["escalation_rate"] == 0.5 and p1["sla_compliance"] == 0.5
        assert [g["key"] for g in metrics["by_week"]] == ["2026-W48", "2026-W49", "all"]
        assert [g["key"] for g in metrics["by_zone"]] == ["central", "all"]
        assert metrics["follow_ups"]["open_not_due"] + metrics["follow_ups"]["open_overdue"] == 3


# ---- 8. access and audit -----------------------------------------------------------------------------------------


async def test_roles_limit_what_is_seen_and_every_read_is_audited(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        clinician, coach = space.people["clinician"], space.people["coach"]
        mine, other = Story(), Story()
        await publish_all(
            js, [mine.reported(), *mine.offered(coach, 0.2), other.reported(), *other.offered(clinician, 0.2)]
        )
        await space.settled(js)
        async with (
            space.client("coach") as pat,
            space.client("director") as director,
            space.client("admin") as admin,
            httpx.AsyncClient(base_url=space.url) as anonymous,
        ):
            assert {i["incident_id"] for i in (await pat.get("/v1/incidents")).json()} == {str(mine.incident_id)}
            assert len((await director.get("/v1/incidents")).json()) == 2
            assert (await pat.get(f"/v1/incidents/{mine.incident_id}/timeline")).status_code == 200
            denied = await pat.get(f"/v1/incidents/{other.incident_id}/documentation")
            assert denied.status_code == 403 and denied.headers["content-type"].startswith("application/problem+json")
            assert (await admin.get(f"/v1/incidents/{mine.incident_id}/timeline")).status_code == 403
            unauthenticated = await anonymous.get(f"/v1/incidents/{mine.incident_id}/timeline")
            assert unauthenticated.status_code == 401 and "Bearer" in unauthenticated.headers["www-authenticate"]
            assert (await director.get(f"/v1/incidents/{mine.incident_id}/fhir")).status_code == 200
            assert (await pat.get("/v1/audit")).status_code == 403
            trail = (await director.get("/v1/audit", params={"record_id": str(other.incident_id)})).json()
            everything = (await director.get("/v1/audit")).json()
        assert [(a["subject"], a["action"], a["outcome"]) for a in trail] == [("coach-user", "documentation", "denied")]
        actions = {(a["subject"], a["action"], a["record_id"], a["outcome"]) for a in everything}
        assert ("coach-user", "timeline", str(mine.incident_id), "read") in actions
        assert ("dr-director", "export:fhir", str(mine.incident_id), "read") in actions
        assert ("roster-admin", "timeline", str(mine.incident_id), "denied") in actions
        assert all(a["at"] for a in everything)


# ---- 6/7. exactly once, rebuild equals live ------------------------------------------------------------------------


async def test_rebuild_from_sequence_one_equals_the_live_read_models(js, nats_server, tmp_path, database_url) -> None:
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        clinician, coach = space.people["clinician"], space.people["coach"]
        first, second = Story(), Story(kind=CrisisKind.SELF_HARM_RISK, overdose=None)
        await publish_all(js, first.full_response(coach, ack=1, en_route=2, arrive=30, done=50))
        await publish_all(js, [second.reported(), *second.offered(clinician, 0.5), second.acknowledged(clinician, 2)])
        assert sum(e.type == "followup.created" for e in await space.settled_events(js)) == 3
        await js.publish("crisis.incident.reported", b"not json")  # dead-lettered live, skipped by the rebuild
        async with space.client("clinician") as cleo:
            saved = await cleo.post(
                f"/v1/incidents/{second.incident_id}/documentation/fields", json={"language": "es", "notes": "ok"}
            )
            assert saved.status_code == 202
        await space.settled(js)
        live = await asyncio.to_thread(space.read_models.store.dump)
        with build_projections(space.settings, space.clock, name="rebuilt") as rebuilt:
            result = await replay_into(js, rebuilt, reset=True, batch=7)
            assert result.skipped == 1 and result.position == space.read_models.processed_position()
            assert await asyncio.to_thread(rebuilt.store.dump) == live
            # a second rebuild starts from nothing again and ends the same
            await replay_into(js, rebuilt, reset=True)
            assert await asyncio.to_thread(rebuilt.store.dump) == live
        assert len(live["timeline"]) > 20 and len(live["tasks"]) == 3 and len(live["responders"]) == 4


async def test_read_models_apply_each_event_once(js, nats_server, tmp_path, database_url) -> None:
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        story = Story()
        sequence = await publish_all(js, [story.reported()])
        await space.settled(js)
        before = await asyncio.to_thread(space.read_models.store.dump)
        event = decode_event((await js.get_msg(STREAM_NAME, sequence)).data)
        assert await asyncio.to_thread(space.read_models.handle, event, sequence) is False
        assert await asyncio.to_thread(space.read_models.store.dump) == before
        types = [e["type"] for e in space.read_models.timeline(story.incident_id)]
        assert types.count("incident.reported") == 1


def test_stored_rows_are_sealed_when_a_cipher_key_is_set(tmp_path) -> None:
    key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # 32 bytes, test only
    settings = ProjectionsSettings(var_dir=tmp_path, cipher_key=key)
    story = Story()
    with build_projections(settings, ManualClock(T0)) as read_models:
        assert read_models.handle(story.reported(address="17 Secret Lane"), 1)
        assert read_models.timeline(story.incident_id)[0]["details"]["location"]["address"] == "17 Secret Lane"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("projections.sqlite*"))
    assert b"17 Secret Lane" not in stored and b"friend" not in stored


# ---- intake's updates after the report ------------------------------------------------------------------------


async def test_intake_updates_reach_the_timeline_and_documentation_and_a_cancellation_cancels_follow_ups(
    js, nats_server, tmp_path
) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        coach = space.people["coach"]
        story = Story(overdose=OverdoseDetails(ems_called=True, naloxone_doses_given=1))
        events = story.full_response(coach, ack=1, en_route=2, arrive=9, done=40)
        events[7:7] = [story.naloxone(10, response=None), story.ems_arrived(14, agency="Denver Fire")]
        false_alarm = Story()
        first = await publish_all(js, [*events, false_alarm.reported(), false_alarm.cancelled(5)])
        assert any(e.type == "followup.cancelled" for e in await space.settled_events(js, first))
        async with space.client("director") as director:
            timeline = (await director.get(f"/v1/incidents/{story.incident_id}/timeline")).json()
            doc = (await director.get(f"/v1/incidents/{story.incident_id}/documentation")).json()
            cancelled = (await director.get(f"/v1/incidents/{false_alarm.incident_id}/timeline")).json()
            tasks = (await director.get("/v1/followups")).json()
        summaries = {e["type"]: e["summary"] for e in timeline["entries"]}
        assert "response not yet known" in summaries["incident.naloxone_administered"]
        assert "Denver Fire" in summaries["incident.ems_arrived"]
        assert doc["what"]["ems"]["agency"] == "Denver Fire" and doc["what"]["ems"]["arrived_at"]
        [dose] = doc["what"]["interventions"]["naloxone_doses"]
        assert dose["source"] == "intake" and dose["given_by_role"] == "peer_coach"
        gaps = {g["key"] for g in doc["gaps"]}
        assert "naloxone_doses[1].response" in gaps and "naloxone_doses" not in gaps and "ems_agency" not in gaps
        assert doc["where"]["zone"] == "central"
        assert cancelled["status"] == "cancelled" and cancelled["sla"]["state"] == "not_applicable"
        by_incident = {t["incident_id"]: t["status"] for t in tasks}
        assert by_incident == {str(story.incident_id): "open", str(false_alarm.incident_id): "cancelled"}


async def test_self_harm_and_withdrawal_exports_carry_the_screeners_and_scores(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        clinician = space.people["clinician"]
        answers = SelfHarmRiskDetails(
            q1=True, q2=True, q3=True, q4=True, q5=False, q6_ever=True, q6_past_3_months=False
        )
        crisis = Story(kind=CrisisKind.SELF_HARM_RISK, overdose=None, self_harm=answers, risk_level="high")
        sick = Story(
            kind=CrisisKind.WITHDRAWAL, overdose=None, withdrawal=WithdrawalDetails(substance="opioid", cows_score=14)
        )
        first = await publish_all(js, [*crisis.full_response(clinician, 1, 2, 20, 60), sick.reported()])
        events = await space.settled_events(js, first)
        assert sum(e.type == "followup.created" for e in events) == 3
        review = next(e.data for e in events if e.type == "followup.created" and e.incident_id == sick.incident_id)
        assert (review.rule, review.owner_role, review.due_at) == (
            "prescriber_review",
            Role.PRESCRIBER,
            sick.at(24 * 60),
        )
        async with space.client("director") as director:
            crisis_fhir = (await director.get(f"/v1/incidents/{crisis.incident_id}/fhir")).json()
            sick_fhir = (await director.get(f"/v1/incidents/{sick.incident_id}/fhir")).json()
            doc = (await director.get(f"/v1/incidents/{crisis.incident_id}/documentation")).json()
        Bundle.model_validate(crisis_fhir)
        Bundle.model_validate(sick_fhir)
        resources = [e["resource"] for e in crisis_fhir["entry"]]
        screener = next(r for r in resources if r["resourceType"] == "QuestionnaireResponse")
        QuestionnaireResponse.model_validate(screener)
        assert {i["linkId"]: i["answer"][0]["valueBoolean"] for i in screener["item"]} == {
            "93246-7": True,
            "93247-5": True,
            "93248-3": True,
            "93249-1": True,
            "93250-9": False,
            "93267-3": True,
            "93269-9": False,
        }
        risk = next(r for r in resources if r["resourceType"] == "Observation")
        assert risk["code"]["coding"][0]["code"] == "93374-7" and risk["valueCodeableConcept"]["text"] == "high"
        cows = next(e["resource"] for e in sick_fhir["entry"] if e["resource"]["resourceType"] == "Observation")
        assert cows["code"]["text"] == "COWS total score" and cows["valueInteger"] == 14
        assert doc["what"]["risk_level"] == "high" and "safety_plan" in {g["key"] for g in doc["gaps"]}


async def test_a_store_from_before_the_read_models_is_replayed_at_start(js, nats_server, tmp_path) -> None:
    story = Story()
    await publish_all(js, [story.reported(), *story.offered(team()["clinician"], 0.2)])
    settings = make_settings(nats_server.url, tmp_path / "var", "")
    with build_projections(settings, ManualClock(T0)) as old:
        old.store.insert_tracking(Tracking(STREAM_NAME, 4))  # an older version had processed everything
        old.store.drop_tables()
    async with workspace(js, nats_server, tmp_path) as space:
        assert space.read_models.needs_replay is False
        async with space.client("director") as director:
            timeline = (await director.get(f"/v1/incidents/{story.incident_id}/timeline")).json()
    assert [e["type"] for e in timeline["entries"]][:2] == ["incident.reported", "followup.created"]


async def test_read_models_of_an_older_schema_are_replayed_at_start(js, nats_server, tmp_path) -> None:
    story = Story()
    await publish_all(js, [story.reported(), *story.offered(team()["clinician"], 0.2)])
    settings = make_settings(nats_server.url, tmp_path / "var", "")
    with build_projections(settings, ManualClock(T0)) as old:
        old.store.insert_tracking(Tracking(STREAM_NAME, 4))  # processed by schema 1, which kept no dead letters
        with old.store.transaction(commit=True) as cursor:
            old.store.execute(cursor, "UPDATE {meta} SET value = %s WHERE key = %s", ("1", "schema_version"))
    async with workspace(js, nats_server, tmp_path) as space:
        assert space.read_models.store.schema_version() == SCHEMA_VERSION
        async with space.client("director") as director:
            timeline = (await director.get(f"/v1/incidents/{story.incident_id}/timeline")).json()
    assert [e["type"] for e in timeline["entries"]][:2] == ["incident.reported", "followup.created"]


# ---- 5. the workspace's pages (without a browser) --------------------------------------------------------------


async def signed_in(space: Workspace, username: str, who: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=space.url, timeout=30)
    form = await client.get("/workspace/sign-in")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]
    answer = await client.post(
        "/workspace/sign-in",
        data={"username": username, "token": space.tokens[who], "csrf_token": csrf, "next": "/workspace/"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/workspace/", answer.text
    return client


def page_csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


async def test_workspace_pages_sign_in_csrf_and_role_based_views(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        clinician, coach = space.people["clinician"], space.people["coach"]
        mine, other = Story(code="1212"), Story(code="3434")
        await publish_all(js, [*mine.full_response(coach, 1, 2, 20, 40), *other.full_response(clinician, 1, 2, 75, 90)])
        await wait_for_stream(js, lambda es: sum(e.type == "followup.assigned" for e in es) == 1)
        await space.settled(js)
        async with httpx.AsyncClient(base_url=space.url) as anonymous:
            redirected = await anonymous.get("/workspace/tasks")
            assert redirected.status_code == 303 and redirected.headers["location"].startswith("/workspace/sign-in")
            wrong = await anonymous.get("/workspace/sign-in")
            refused = await anonymous.post(
                "/workspace/sign-in",
                data={
                    "username": "someone-else",
                    "token": space.tokens["director"],
                    "csrf_token": page_csrf(wrong.text),
                },
            )
            assert "not+recognised" in refused.headers["location"]
        director = await signed_in(space, "dr-director", "director")
        pat = await signed_in(space, "coach-user", "coach")
        try:
            board = await director.get("/workspace/?status=all")
            assert board.status_code == 200 and "1212" in board.text and "3434" in board.text
            assert "default-src 'self'" in board.headers["content-security-policy"]
            assert "http://" not in board.text and "https://" not in board.text  # nothing from the internet
            metrics = await director.get("/workspace/metrics")
            assert metrics.text.count("<svg") == 5 and "On-scene target: P1 60 min" in metrics.text
            own = await pat.get("/workspace/?status=all")
            assert "1212" in own.text and "3434" not in own.text
            assert (await pat.get(f"/workspace/incidents/{other.incident_id}")).status_code == 403
            assert (await pat.get("/workspace/metrics")).status_code == 403
            tasks = await pat.get("/workspace/tasks")
            assert "My follow-up tasks" in tasks.text and tasks.text.count("data-task=") == 1
            task_id = re.search(r'data-task="([^"]+)"', tasks.text)[1]
            forged = await pat.post(f"/workspace/tasks/{task_id}/complete", data={"outcome": "contact_made"})
            assert forged.status_code == 403  # no CSRF token
            done = await pat.post(
                f"/workspace/tasks/{task_id}/complete",
                data={"outcome": "contact_made", "note": "met at the clinic", "csrf_token": page_csrf(tasks.text)},
            )
            assert done.status_code == 303 and "done=" in done.headers["location"]
            doc_url = f"/workspace/incidents/{other.incident_id}/documentation"
            doc = await director.get(doc_url)
            saved = await director.post(
                f"{doc_url}/fields",
                data={"disposition": "refused_care", "language": "en", "csrf_token": page_csrf(doc.text)},
            )
            assert saved.status_code == 303 and "Saved" in saved.headers["location"]
            audit = await director.get("/workspace/audit")
            assert "coach-user" in audit.text and "denied" in audit.text
            out = await pat.post("/workspace/sign-out", data={"csrf_token": page_csrf(tasks.text)})
            assert out.status_code == 303 and (await pat.get("/workspace/")).status_code == 303
        finally:
            await director.aclose()
            await pat.aclose()
        async with space.client("coach") as api:
            assert (await api.get(f"/v1/followups/{task_id}")).json()["status"] == "done"
        async with space.client("director") as api:
            doc_json = (await api.get(f"/v1/incidents/{other.incident_id}/documentation")).json()
        assert doc_json["outcome"]["disposition"] == "refused_care" and doc_json["minutes"]["language"] == "en"


# ---- dead letters ----------------------------------------------------------------------------------------------


async def test_dead_letters_are_listed_for_directors_only_and_each_read_is_audited(
    js, nats_server, tmp_path, database_url
) -> None:
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        story = Story()
        # a report no consumer can read: every consumer dead-letters it, naming itself
        bad = story.reported().model_dump(mode="json") | {"schema_version": 99}
        sequence = (await js.publish("crisis.incident.reported", json.dumps(bad).encode())).seq
        # the three consumers that read reports publish their dead letter after the bad message (no tracking
        # records an unreadable one): the read models, the follow-up desk and the person desk
        await wait_for_stream(js, lambda after: len(after) >= 3, sequence + 1)
        await space.settled(js)
        async with space.client("director") as director, space.client("clinician") as cleo:
            listed = (await director.get("/v1/dead-letters")).json()
            assert {d["consumer"] for d in listed} == {"projections", "followups", "persons"}
            assert {d["original_sequence"] for d in listed} == {sequence}
            assert {d["incident_id"] for d in listed} == {str(story.incident_id)}
            assert all("schema_version" in d["reason"] or "99" in d["reason"] for d in listed), listed
            assert (await cleo.get("/v1/dead-letters")).status_code == 403
        browser = await signed_in(space, "dr-director", "director")
        try:
            page = await browser.get("/workspace/dead-letters")
            assert page.status_code == 200 and f"DL-{sequence}" in page.text
        finally:
            await browser.aclose()
        async with space.client("director") as director:
            trail = (await director.get("/v1/audit", params={"record_id": "all"})).json()
        actions = [(a["subject"], a["action"], a["outcome"]) for a in trail if a["action"] == "dead_letters"]
        assert ("dr-director", "dead_letters", "read") in actions
        assert ("clinician-user", "dead_letters", "denied") in actions


async def test_a_report_links_only_duplicates_the_reader_may_read(js, nats_server, tmp_path) -> None:
    """A responder reading a report linked to someone else's incident is not handed that incident's id."""
    async with workspace(js, nats_server, tmp_path) as space:
        clinician, coach = space.people["clinician"], space.people["coach"]
        mine, theirs, also_mine = Story(), Story(), Story()
        report = mine.reported()
        linked = report.data.model_copy(update={"possible_duplicate_of": [theirs.incident_id, also_mine.incident_id]})
        await publish_all(
            js,
            [
                theirs.reported(),
                *theirs.offered(clinician, 0.1),
                also_mine.reported(),
                *also_mine.offered(coach, 0.1),
                report.model_copy(update={"data": linked}),
                *mine.offered(coach, 0.2),
            ],
        )
        await space.settled(js)
        async with space.client("coach") as pat, space.client("director") as director:
            seen_by_coach = [
                (await pat.get(f"/v1/incidents/{mine.incident_id}/{view}")).text
                for view in ("timeline", "documentation")
            ]
            seen_by_director = (await director.get(f"/v1/incidents/{mine.incident_id}/documentation")).text
    for text in seen_by_coach:
        assert str(theirs.incident_id) not in text and str(also_mine.incident_id) in text
    assert str(theirs.incident_id) in seen_by_director
