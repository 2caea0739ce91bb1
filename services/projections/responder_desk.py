"""The responder's incident page as use cases: ``ResponderDesk``.

- ``open_link``: the signed link in an accept confirmation (``services/runtime/signed_links.py``) opens the page
  of that incident for the responder it was signed for, until it expires; every opening is audited, refused ones
  too (expired, signed for nobody on the incident, or opened while someone else is signed in).
- ``incident_page``: what the responder needs on the way and on scene (``domain/responder_view.py``); an audited
  read, refused (403, audited) to anyone but a director and the responders paged for the incident.
- ``report_progress``: en route, on scene, done. Appended as ``dispatch.progress_reported``; the dispatcher records
  it as it records the same words texted (``dispatch.en_route`` / ``arrived`` / ``completed``, channel app), so
  the page waits (bounded) for that answer and says what was recorded.
- ``record_naloxone``, ``record_ems_arrived``: the same events as the gateway's incident updates.
- ``reassess`` (a clinician, nurse or prescriber paged for it, or a director): a COWS / CIWA-Ar score or the
  C-SSRS answers; triage re-runs (``domain/reassessment.py`` over the shared rules) and the result is appended as
  ``incident.reassessed`` (the dispatcher records a priority change and tells the supervisor).
- ``report_restock`` (the responder who carries the kits): ``naloxone.restock_reported``, which the dispatcher
  applies to their stock; ``record_ems_called``: ``field.ems_called`` (channel app; the dispatcher keeps the first).
  A form that is not right raises ``InvalidForm`` naming its field: nothing is recorded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from services.contract.events import (
    EmsArrived,
    EmsArrivedData,
    EmsCalled,
    EmsCalledData,
    IncidentReassessed,
    IncidentReassessedData,
    IncidentReported,
    NaloxoneAdministered,
    NaloxoneAdministeredData,
    NaloxoneRestockReported,
    NaloxoneRestockReportedData,
    ProgressReported,
    ProgressReportedData,
)
from services.contract.triage import Thresholds
from services.projections.application import ClinicalRecordAccess
from services.projections.domain.audit import AuditEntry
from services.projections.domain.progress import Progress, RecordedEvent, incident_progress
from services.projections.domain.reassessment import SCALE_NAMES, ReassessmentRefused, may_reassess, reassess
from services.projections.domain.responder_view import (
    PROGRESS_EVENTS,
    STAGE_WORDS,
    ResponderView,
    StaffContact,
    Stage,
    responder_view,
)
from services.projections.domain.restock import RestockRefused, restock_kits
from services.projections.errors import InvalidForm, NotPermitted, Refused
from services.runtime.credentials import AccessRole, Principal
from services.runtime.request_ids import FRESH, RequestIds
from services.runtime.signed_links import ResponderLinks

LINK_ACTION = "responder_link"
PAGE_ACTION = "responder_page"
NALOXONE_PRODUCTS = {
    "nasal_4mg": ("naloxone 4 mg nasal spray", 4.0, "intranasal"),
    "injection_0_4mg": ("naloxone 0.4 mg injection", 0.4, "intramuscular"),
}
"""What the page offers as the dose given: the common kit first (DOMAIN.md: 4 mg nasal)."""
GIVEN_BY = {"peer_coach": "peer_coach", "clinician": "clinician", "nurse": "clinician", "prescriber": "clinician"}


class Changes(Protocol):
    """The read models' position, and a wait for it to move (``adapters/change_feed.py``)."""

    position: int

    async def wait_beyond(self, position: int, timeout: float) -> int | None:
        """The new position once past ``position``; None after ``timeout`` seconds."""


def link_principal(responder_id: UUID) -> Principal:
    """Who a link session acts as: the responder it was signed for (named on the timeline by the roster)."""
    return Principal(subject=f"responder {responder_id}", role=AccessRole.RESPONDER, responder_id=responder_id)


@dataclass(frozen=True)
class LinkOpened:
    responder_id: UUID
    incident_id: UUID
    expires_at: datetime


class LinkRefused(Exception):
    """The link does not open the page; the person is asked to sign in. ``incident_id``: the page to go to after
    signing in, when the link was genuine (None: a link that says nothing trustworthy)."""

    def __init__(self, reason: str, incident_id: UUID | None = None) -> None:
        super().__init__(reason)
        self.incident_id = incident_id


@dataclass(frozen=True)
class Recorded:
    """What a button recorded, to show back: ``at`` None when it was sent but not confirmed yet."""

    what: str
    at: datetime | None


class ResponderDesk(ClinicalRecordAccess):
    """The responder page's use cases, on the same stores, audit log and publisher as ``access``."""

    def __init__(
        self,
        access: ClinicalRecordAccess,
        links: ResponderLinks,
        changes: Changes,
        answer_seconds: float = 5.0,
        thresholds: Thresholds | None = None,
    ) -> None:
        super().__init__(
            access.store, access.audit, access.publish, access.clock, access.targets, access.export_fhir, access.zone
        )
        self.links = links
        self.changes = changes
        self.answer_seconds = answer_seconds
        self.thresholds = thresholds or Thresholds()
        """Triage's score thresholds for a re-assessment (the projections' settings; intake's defaults)."""

    # ---- the link --------------------------------------------------------------------------------------------

    async def open_link(self, token: str, signed_in: Principal | None) -> LinkOpened:
        """The responder and incident ``token`` opens, if it is genuine, unexpired, and nobody else is signed in
        (``signed_in``: whoever this browser is signed in as already). Audited either way; LinkRefused otherwise."""
        claim = self.links.read(token)
        involved = await asyncio.to_thread(self.store.involved, claim.incident_id) if claim else {}
        responder_id = self.links.signed_for(claim, sorted(involved)) if claim else None
        if claim is None or responder_id is None:
            await self._link_audit(None, claim.incident_id if claim else None, "invalid")
            raise LinkRefused("This link is not valid. Sign in to see your incidents.")
        if signed_in is not None and signed_in.responder_id != responder_id:
            await self._audit(signed_in, f"{LINK_ACTION}:someone_else", "incident", str(claim.incident_id), "denied")
            raise LinkRefused("This link was sent to someone else. Sign in to continue.", claim.incident_id)
        if claim.expired(self.clock.now()):
            await self._link_audit(responder_id, claim.incident_id, "expired")
            raise LinkRefused("This link has expired. Sign in to see the incident.", claim.incident_id)
        await self._link_audit(responder_id, claim.incident_id, None)
        return LinkOpened(responder_id, claim.incident_id, claim.expires_at)

    async def _link_audit(self, responder_id: UUID | None, incident_id: UUID | None, refusal: str | None) -> None:
        entry = AuditEntry(
            at=self.clock.now(),
            subject=link_principal(responder_id).subject if responder_id else "unverified link",
            role=AccessRole.RESPONDER.value if responder_id else "none",
            responder_id=responder_id,
            action=f"{LINK_ACTION}:{refusal}" if refusal else LINK_ACTION,
            record_type="incident",
            record_id=str(incident_id) if incident_id else "unknown",
            outcome="denied" if refusal else "read",
        )
        await asyncio.to_thread(self.audit.record, entry)

    # ---- the page ----------------------------------------------------------------------------------------------

    async def incident_page(self, who: Principal, incident_id: UUID, action: str = PAGE_ACTION) -> ResponderView:
        """The incident as ``who`` sees it on their phone. Audited under ``action``; NotPermitted (403) unless
        ``who`` is a director or a responder paged for it."""
        view, _ = await self._page(who, incident_id, action)
        return view

    async def _page(self, who: Principal, incident_id: UUID, action: str) -> tuple[ResponderView, list[RecordedEvent]]:
        recorded = await self._incident_events(who, incident_id, action)
        progress = incident_progress(recorded) or Progress(incident_id=incident_id)
        rows = await asyncio.to_thread(self.store.responders)
        staff = {
            UUID(row["responder_id"]): StaffContact(
                row["name"],
                row["role"],
                row.get("phone"),
                UUID(row["supervisor_id"]) if row.get("supervisor_id") else None,
            )
            for row in rows
        }
        return responder_view([r.event for r in recorded], who.responder_id, staff, progress.status), recorded

    async def _open_incident(self, who: Principal, incident_id: UUID, action: str) -> ResponderView:
        view = await self.incident_page(who, incident_id, action)
        if not view.open:
            raise Refused(f"incident {view.short_code or ''} is {view.status}: nothing more is recorded here")
        return view

    async def report_progress(self, who: Principal, incident_id: UUID, stage: Stage) -> Recorded:
        """En route, on scene or done, by the responder who accepted; the dispatcher records it."""
        if who.role is not AccessRole.RESPONDER or who.responder_id is None:
            raise NotPermitted("en route, on scene and done are recorded by the responder on the incident")
        view = await self._open_incident(who, incident_id, f"write:{ProgressReported.TYPE}")
        me = view.me
        if me is None or not me.on_it:
            raise Refused("you are not on this incident: accept its page first (or you are done with it)")
        if stage in me.times:
            raise Refused(f"{STAGE_WORDS[stage]} was recorded already")
        data = ProgressReportedData(
            incident_id=incident_id, responder_id=who.responder_id, stage=stage, reported_by=who.subject
        )
        event = self._event(ProgressReported, data, incident_id, FRESH)
        await self._append(event)
        return Recorded(STAGE_WORDS[stage], await self._dispatcher_answer(incident_id, event.id))

    async def _dispatcher_answer(self, incident_id: UUID, cause: UUID) -> datetime | None:
        """When the dispatcher recorded what event ``cause`` reported; None if not within ``answer_seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.answer_seconds
        while True:
            position = self.changes.position  # first: a change after it wakes the wait below
            recorded = await asyncio.to_thread(self.store.incident_events, incident_id)
            for r in recorded:
                if r.event.causation_id == cause and type(r.event) in PROGRESS_EVENTS:
                    return r.event.occurred_at
            remaining = deadline - loop.time()
            if remaining <= 0 or await self.changes.wait_beyond(position, remaining) is None:
                return None

    async def _recording_role(self, who: Principal, incident_id: UUID, event_type: str) -> str:
        """The role a dose or EMS arrival is recorded for: a director's, or a paged responder's on the roster."""
        if who.role not in (AccessRole.DIRECTOR, AccessRole.RESPONDER):
            raise NotPermitted("only directors and the responders paged record updates here")
        await self._open_incident(who, incident_id, f"write:{event_type}")
        staff = await asyncio.to_thread(self.staff)
        person = staff.get(who.responder_id) if who.responder_id else None
        return GIVEN_BY.get(person.role, "responder") if person else "responder"

    async def record_naloxone(self, who: Principal, incident_id: UUID, product: str, response: str | None) -> Recorded:
        """A dose given now, by ``who``'s role. Refused (409) for an unknown product or response."""
        if product not in NALOXONE_PRODUCTS or response not in (None, "improved", "unchanged", "worse"):
            raise Refused("choose the dose given and how the person responded from the lists")
        given_by = await self._recording_role(who, incident_id, NaloxoneAdministered.TYPE)
        name, dose_mg, route = NALOXONE_PRODUCTS[product]
        now = self.clock.now()
        data = NaloxoneAdministeredData(
            incident_id=incident_id,
            given_at=now,
            product=name,
            dose_mg=dose_mg,
            route=route,
            given_by_role=given_by,
            response=response,
            recorded_by=who.subject,
        )
        await self._append(self._event(NaloxoneAdministered, data, incident_id, FRESH))
        return Recorded(f"{name} given", now)

    async def record_ems_arrived(self, who: Principal, incident_id: UUID, agency: str | None) -> Recorded:
        await self._recording_role(who, incident_id, EmsArrived.TYPE)
        if agency is not None and len(agency) > 100:
            raise Refused("the EMS agency's name is at most 100 characters")
        now = self.clock.now()
        data = EmsArrivedData(incident_id=incident_id, arrived_at=now, agency=agency, recorded_by=who.subject)
        await self._append(self._event(EmsArrived, data, incident_id, FRESH))
        return Recorded("EMS arrived", now)

    # ---- on scene: re-assessment, 911 called, restock (issue 18) -----------------------------------------------

    async def may_reassess(self, who: Principal, view: ResponderView) -> bool:
        """Whether the page offers ``who`` the re-assessment form (``reassess`` checks again)."""
        staff = await asyncio.to_thread(self.staff)
        person = staff.get(who.responder_id) if who.responder_id else None
        role = person.role if person else None
        return bool(view.instruments) and may_reassess(who.role is AccessRole.DIRECTOR, role, view.me is not None)

    async def reassess(
        self, who: Principal, incident_id: UUID, instrument: str, values: dict[str, str], ids: RequestIds = FRESH
    ) -> Recorded:
        """A score (or the C-SSRS answers) recorded on scene; triage re-runs. InvalidForm names a field that is not
        right (nothing is recorded); NotPermitted unless a director or a clinician, nurse or prescriber paged."""
        if who.role not in (AccessRole.DIRECTOR, AccessRole.RESPONDER):
            raise NotPermitted("only directors and the clinicians paged re-assess here")
        view, recorded = await self._page(who, incident_id, f"write:{IncidentReassessed.TYPE}")
        if not view.open:
            raise Refused(f"incident {view.short_code or ''} is {view.status}: nothing more is recorded here")
        staff = await asyncio.to_thread(self.staff)
        person = staff.get(who.responder_id) if who.responder_id else None
        if not may_reassess(who.role is AccessRole.DIRECTOR, person.role if person else None, view.me is not None):
            raise NotPermitted("a re-assessment is recorded by a clinician, nurse or prescriber on the incident")
        reported = next((r.event for r in recorded if isinstance(r.event, IncidentReported)), None)
        try:
            result = reassess(reported, view.priority or "P3", instrument, values, self.thresholds)
        except ReassessmentRefused as exc:
            raise InvalidForm(exc.field, str(exc)) from exc
        data = IncidentReassessedData(
            incident_id=incident_id,
            instrument=result.instrument,
            score=result.score,
            c_ssrs_risk=result.c_ssrs_risk,
            previous_priority=result.previous_priority,
            priority=result.priority,
            risk_level=result.risk_level,
            reasons=list(result.reasons),
            recorded_by=who.subject,
            responder_id=who.responder_id,
        )
        await self._append(self._event(IncidentReassessed, data, incident_id, ids))
        scale = SCALE_NAMES[result.instrument]
        score = f"{result.c_ssrs_risk} risk" if result.score is None else str(result.score)
        before, after = result.previous_priority.value, result.priority.value
        change = f"priority {before} -> {after}" if before != after else f"priority stays {after}"
        return Recorded(f"re-assessment {scale} {score}, {change}", self.clock.now())

    async def record_ems_called(self, who: Principal, incident_id: UUID, ids: RequestIds = FRESH) -> Recorded:
        """911 called now, from the page (channel app); Refused when a call was recorded already."""
        if who.role not in (AccessRole.DIRECTOR, AccessRole.RESPONDER):
            raise NotPermitted("only directors and the responders paged record updates here")
        view = await self._open_incident(who, incident_id, f"write:{EmsCalled.TYPE}")
        if view.ems_called_at is not None:
            raise Refused("911 was recorded as called already")
        now = self.clock.now()
        data = EmsCalledData(
            incident_id=incident_id,
            called_at=now,
            responder_id=who.responder_id,
            channel="app",
            recorded_by=who.subject,
        )
        await self._append(self._event(EmsCalled, data, incident_id, ids))
        return Recorded("911 called", now)

    async def report_restock(
        self, who: Principal, incident_id: UUID, values: dict[str, str], ids: RequestIds = FRESH
    ) -> Recorded:
        """Kits added to ``who``'s own naloxone stock (the responder who carries them); the dispatcher applies it.
        Entered from an incident page the responder may open (also after the incident closed)."""
        if who.role is not AccessRole.RESPONDER or who.responder_id is None:
            raise NotPermitted("a restock is recorded by the responder who carries the kits")
        view = await self.incident_page(who, incident_id, f"write:{NaloxoneRestockReported.TYPE}")
        if view.me is None:
            raise NotPermitted("a restock is recorded from the page of an incident you were paged for")
        today = self.clock.now().astimezone(self.zone).date()
        try:
            kits = restock_kits(values.get("count", ""), values.get("lot", ""), values.get("expires_on", ""), today)
        except RestockRefused as exc:
            raise InvalidForm(exc.field, str(exc)) from exc
        data = NaloxoneRestockReportedData(responder_id=who.responder_id, kits=[kits], recorded_by=who.subject)
        await self._append(self._event(NaloxoneRestockReported, data, incident_id, ids))
        plural = "s" if kits.count != 1 else ""
        return Recorded(f"restock of {kits.count} naloxone kit{plural}", self.clock.now())
