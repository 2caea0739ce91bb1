"""What a responder on an incident sees on their phone: where to go (address, access notes, map), what the caller
was told, who else is on it and how to reach the supervisor, and how far they themselves got.

Pure: one incident's events (stream order) and the roster's contacts in, a ``ResponderView`` out. Who may see it is
decided before (``access.py``); this only shapes what they see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from services.contract.events import (
    DispatchAcknowledged,
    DispatchCompleted,
    DispatchDeclined,
    DispatchExtraAcceptance,
    DispatchOffered,
    DispatchTimedOut,
    DispatchUnreachable,
    DispatchWithdrawn,
    EmsArrived,
    EmsCalled,
    Envelope,
    IncidentReassessed,
    IncidentRelocated,
    IncidentReported,
    Location,
    NaloxoneAdministered,
    ProgressReported,
    ResponderArrived,
    ResponderEnRoute,
)
from services.projections.domain.reassessment import SCALE_NAMES, instruments_for

Stage = Literal["en_route", "arrived", "done"]
STAGES: tuple[Stage, ...] = ("en_route", "arrived", "done")
STAGE_WORDS = {"accepted": "accepted", "en_route": "en route", "arrived": "on scene", "done": "done", "paged": "paged"}
PROGRESS_EVENTS = {ResponderEnRoute: "en_route", ResponderArrived: "arrived", DispatchCompleted: "done"}
CLOSING_ANSWERS = (DispatchDeclined, DispatchTimedOut, DispatchUnreachable, DispatchWithdrawn)


@dataclass(frozen=True)
class StaffContact:
    """A responder as the roster names them: shown to the team of an incident they are on."""

    name: str
    role: str
    phone: str | None = None
    supervisor_id: UUID | None = None


@dataclass(frozen=True)
class Scene:
    """Where to go: the latest location reported (the report, or a relocation)."""

    lat: float
    lon: float
    address: str | None
    access_notes: str | None
    place: str | None
    relocated_because: str | None = None

    @property
    def geo_uri(self) -> str:
        """Opens the phone's own maps app (RFC 5870)."""
        return f"geo:{self.lat:.6f},{self.lon:.6f}?q={self.lat:.6f},{self.lon:.6f}"

    @property
    def map_url(self) -> str:
        """OpenStreetMap in the browser, a marker on the scene; nothing of it is loaded by the page itself."""
        lat, lon = f"{self.lat:.6f}", f"{self.lon:.6f}"
        return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=18/{lat}/{lon}"


@dataclass
class PersonOnIt:
    """Someone paged for the incident, and how far they got: each stage's first time."""

    responder_id: UUID
    team_role: str
    accepted_at: datetime | None = None
    page_open: bool = False
    times: dict[str, datetime] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    """Stages pressed on the incident page that the dispatcher has not recorded (yet)."""

    @property
    def stage(self) -> str:
        for name in reversed(STAGES):
            if name in self.times:
                return name
        return "accepted" if self.accepted_at else "paged"

    @property
    def on_it(self) -> bool:
        """Accepted and not done: their en route / on scene / done are recorded."""
        return self.accepted_at is not None and "done" not in self.times


@dataclass(frozen=True)
class Teammate:
    name: str
    role: str
    team_role: str
    stage: str
    phone: str | None


@dataclass(frozen=True)
class Dose:
    given_at: datetime
    product: str
    route: str
    response: str | None


@dataclass(frozen=True)
class Reassessed:
    at: datetime
    said: str
    """'COWS 14: P3 -> P2'."""


@dataclass(frozen=True)
class ResponderView:
    incident_id: UUID
    short_code: str | None
    priority: str | None
    kind: str | None
    status: str
    reported_at: datetime | None
    scene: Scene | None
    guidance: list[str]
    needs: list[str]
    facts: list[tuple[str, str]]
    me: PersonOnIt | None
    team: list[Teammate]
    supervisor: StaffContact | None
    doses: list[Dose]
    ems_arrived_at: datetime | None
    ems_agency: str | None
    ems_called_at: datetime | None = None
    """The first report that 911 was called (by text or on this page)."""
    reassessed: list[Reassessed] = field(default_factory=list)
    """Scores a clinician recorded on scene, oldest first (``priority`` is the latest one's)."""
    instruments: tuple[str, ...] = ()
    """What re-scores this incident (``reassessment.instruments_for``): empty for an overdose."""

    @property
    def open(self) -> bool:
        return self.status == "open"


def _scene(location: Location, because: str | None = None) -> Scene:
    return Scene(location.lat, location.lon, location.address, location.access_notes, location.place, because)


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def triage_facts(reported: IncidentReported) -> list[tuple[str, str]]:
    """What the report said that a responder on the way needs: a few labelled answers, no scores' arithmetic."""
    data = reported.data
    facts: list[tuple[str, str]] = []
    if data.overdose is not None:
        od = data.overdose
        facts += [
            ("Responsive", _yes_no(od.responsive)),
            ("Breathing", _yes_no(od.breathing)),
            ("Naloxone before the call", f"{od.naloxone_doses_given} dose(s)" if od.naloxone_doses_given else "none"),
            ("911 / EMS called", _yes_no(od.ems_called)),
        ]
        if od.substance:
            facts.append(("Substance", od.substance))
    if data.withdrawal is not None:
        wd = data.withdrawal
        facts.append(("Substance", wd.substance))
        for label, value in (("Seizure", wd.seizure), ("Delirium", wd.delirium), ("Hallucinations", wd.hallucinations)):
            if value is not None:
                facts.append((label, _yes_no(value)))
    if data.assessment is not None and data.assessment.risk_level:
        facts.append(("Risk", data.assessment.risk_level.replace("_", " ")))
    return facts


def _people(events: Sequence[Envelope]) -> dict[UUID, PersonOnIt]:
    """Everyone paged for the incident, with their pages' state and their progress."""
    people: dict[UUID, PersonOnIt] = {}
    open_pages: dict[UUID, UUID] = {}  # page -> responder
    answered: set[UUID] = set()  # ids of the app reports the dispatcher answered (its events' causation)
    reported: list[ProgressReported] = []
    for event in events:
        data = event.data
        if isinstance(event, DispatchOffered):
            person = people.setdefault(data.responder_id, PersonOnIt(data.responder_id, data.reason.team_role))
            open_pages[data.page_id] = data.responder_id
        elif isinstance(event, DispatchAcknowledged) or (
            isinstance(event, DispatchExtraAcceptance) and data.outcome == "backup"
        ):
            person = people.setdefault(data.responder_id, PersonOnIt(data.responder_id, "primary"))
            person.accepted_at = person.accepted_at or event.occurred_at
            open_pages.pop(data.page_id, None)
        elif isinstance(event, CLOSING_ANSWERS):
            open_pages.pop(data.page_id, None)
        elif type(event) in PROGRESS_EVENTS:
            person = people.setdefault(data.responder_id, PersonOnIt(data.responder_id, "primary"))
            person.times.setdefault(PROGRESS_EVENTS[type(event)], event.occurred_at)
            if event.causation_id is not None:
                answered.add(event.causation_id)
        elif isinstance(event, ProgressReported):
            reported.append(event)
    for responder_id in open_pages.values():
        people[responder_id].page_open = True
    for event in reported:
        person = people.get(event.data.responder_id)
        if person is not None and event.id not in answered and event.data.stage not in person.times:
            person.pending.add(event.data.stage)
    return people


def responder_view(
    events: Sequence[Envelope], me: UUID | None, staff: Mapping[UUID, StaffContact], status: str
) -> ResponderView:
    """The incident page of responder ``me`` (None: a director looking at it), from the incident's events in
    stream order; ``status`` is the incident's (open, closed or cancelled)."""
    reported = next((e for e in events if isinstance(e, IncidentReported)), None)
    scene = _scene(reported.data.location) if reported else None
    doses: list[Dose] = []
    ems_at, ems_agency = None, None
    called_at: datetime | None = None
    reassessed: list[Reassessed] = []
    priority = reported.data.priority.value if reported else None
    for event in events:
        data = event.data
        if isinstance(event, IncidentRelocated):
            scene = _scene(data.location, data.reason)
        elif isinstance(event, NaloxoneAdministered):
            doses.append(Dose(data.given_at, data.product, data.route, data.response))
        elif isinstance(event, EmsArrived):
            ems_at, ems_agency = data.arrived_at, data.agency
        elif isinstance(event, EmsCalled):
            called_at = min(called_at or data.called_at, data.called_at)
        elif isinstance(event, IncidentReassessed):
            reassessed.append(Reassessed(event.occurred_at, _reassessed_words(data)))
            priority = data.priority.value
    people = _people(events)
    mine = people.get(me) if me is not None else None
    team = [
        Teammate(contact.name, contact.role, person.team_role, person.stage, contact.phone)
        for rid, person in people.items()
        if rid != me and (person.accepted_at or person.page_open) and (contact := staff.get(rid)) is not None
    ]
    return ResponderView(
        incident_id=reported.data.incident_id if reported else events[0].incident_id,  # type: ignore[arg-type]
        short_code=reported.data.short_code if reported else None,
        priority=priority,
        kind=reported.data.kind.value if reported else None,
        status=status,
        reported_at=reported.occurred_at if reported else None,
        scene=scene,
        guidance=list(reported.data.guidance) if reported else [],
        needs=list(reported.data.needs) if reported else [],
        facts=triage_facts(reported) if reported else [],
        me=mine,
        team=team,
        supervisor=_supervisor(me, people, staff),
        doses=doses,
        ems_arrived_at=ems_at,
        ems_agency=ems_agency,
        ems_called_at=called_at,
        reassessed=reassessed,
        instruments=instruments_for(reported),
    )


def _reassessed_words(data: Any) -> str:
    """'COWS 14: priority P3 -> P2' (C-SSRS: the risk level)."""
    scale = SCALE_NAMES.get(data.instrument, data.instrument)
    score = f"{data.c_ssrs_risk} risk" if data.instrument == "c_ssrs" else str(data.score)
    return f"{scale} {score}: priority {data.previous_priority.value} -> {data.priority.value}"


def _supervisor(
    me: UUID | None, people: Mapping[UUID, PersonOnIt], staff: Mapping[UUID, StaffContact]
) -> StaffContact | None:
    """``me``'s supervisor; for a director (or a responder with none on the roster), the supervisor of the first
    person who accepted."""
    candidates = [me] if me is not None else []
    candidates += [rid for rid, person in people.items() if person.accepted_at is not None]
    for rid in candidates:
        contact = staff.get(rid) if rid is not None else None
        if contact is not None and contact.supervisor_id is not None and contact.supervisor_id in staff:
            return staff[contact.supervisor_id]
    return None
