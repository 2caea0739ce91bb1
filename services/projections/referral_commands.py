"""The referral's use cases in the workspace (issue 17, sections 2 and 3): matches for an incident, the level of care
a clinician chooses, a referral sent to up to three programs, and what staff record after a program accepted.

Each checks who asks (directors; responders paged for the incident, and for the level of care only a clinician,
nurse or prescriber), audits the read, refuses a transition ``domain/referral.py``'s state machine does not allow
(``Refused``, 409, naming the state), and appends one event; the answer says what was recorded once the stream
took it. A program's own answers come by its signed link or by SMS (the referral desk), not through here, except
when staff enter one after a phone call (channel ``app``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.contract.events import (
    IncidentReported,
    LevelOfCareChosen,
    LevelOfCareChosenData,
    ReferralAdmitted,
    ReferralAdmittedData,
    ReferralCancelled,
    ReferralCancelledData,
    ReferralInfoProvided,
    ReferralInfoProvidedData,
    ReferralInsuranceVerified,
    ReferralInsuranceVerifiedData,
    ReferralNeeds,
    ReferralSent,
    ReferralSentData,
    ReferralTransportArranged,
    ReferralTransportArrangedData,
)
from services.contract.referral import CancelReason, InfoNeeded, InsuranceStatus, TransportMode
from services.contract.treatment import LevelOfCare, Payer
from services.projections.application import ClinicalRecordAccess
from services.projections.directory import ProgramDirectory
from services.projections.domain.directory import DirectoryFilter
from services.projections.domain.program_matching import (
    Distance,
    Match,
    MatchRequest,
    Proposal,
    match_programs,
    propose_level_of_care,
)
from services.projections.domain.referral import ReferralView, TransitionRefused, fold_referral
from services.projections.errors import NotPermitted, Refused, UnknownIncident
from services.projections.referrals import ReferralTable
from services.runtime.credentials import AccessRole, Principal
from services.runtime.request_ids import FRESH, RequestIds

CHOOSERS = frozenset({"clinician", "nurse", "prescriber"})


class ReferralSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRISIS_", extra="ignore")

    referral_accept_minutes: str = Field(
        default="4-WM=60,3.7-WM=60,4=60,3.7=120,default=240",
        description="how long programs have to accept a referral, by level of care (minutes; 'default' for the rest)",
    )

    def accept_within(self, level: str) -> timedelta:
        table = dict(part.strip().split("=", 1) for part in self.referral_accept_minutes.split(",") if "=" in part)
        return timedelta(minutes=float(table.get(level, table.get("default", "240"))))


class InvalidReferral(Exception):
    """A request that can never be recorded as sent: ``field`` names what is wrong (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Matches:
    proposal: Proposal
    chosen: dict[str, Any] | None  # the last referral.level_of_care_chosen, as JSON
    wanted: MatchRequest
    matches: list[Match]
    origin_from: str = "the incident"  # or "the place the person chose"


@dataclass(frozen=True)
class Sent:
    referral_id: UUID
    code: str
    accept_by: datetime


class ReferralCommands(ClinicalRecordAccess):
    """The referral's use cases, on the same stores, audit log and publisher as ``access``."""

    def __init__(
        self,
        access: ClinicalRecordAccess,
        directory: Callable[[], ProgramDirectory],
        referrals: ReferralTable,
        distance: Distance,
        settings: ReferralSettings,
        person_place: Callable[[UUID], tuple[float, float] | None] = lambda incident_id: None,
    ) -> None:
        """``person_place``: the place chosen by a person linked to the incident (matching measures from it)."""
        super().__init__(
            access.store, access.audit, access.publish, access.clock, access.targets, access.export_fhir, access.zone
        )
        self.directory = directory
        self.person_place = person_place
        self.referrals = referrals
        self.distance = distance
        self.settings = settings

    # ---- matching ----------------------------------------------------------------------------------------

    async def matches(self, who: Principal, incident_id: UUID, wanted: MatchRequest) -> Matches:
        """The programs that fit, ranked; the level is the one asked for, else the chosen one, else the proposal."""
        events = [r.event for r in await self._incident_events(who, incident_id, "read:matches")]
        proposal = _proposal(events)
        chosen = _last_chosen(events)
        reported = next((e for e in events if isinstance(e, IncidentReported)), None)
        level = wanted.level or (chosen["chosen"] if chosen else proposal.level)
        origin, origin_from = wanted.origin, "the place asked for"
        if origin is None:
            origin, origin_from = await asyncio.to_thread(self.person_place, incident_id), "the place the person chose"
        if origin is None and reported is not None:
            origin, origin_from = (reported.data.location.lat, reported.data.location.lon), "the incident"
        wanted = MatchRequest(level, wanted.medication, wanted.payer, wanted.populations, wanted.language, origin)
        listings = await asyncio.to_thread(self.directory().listings, DirectoryFilter())
        return Matches(proposal, chosen, wanted, match_programs(listings, wanted, self.distance), origin_from)

    async def choose_level_of_care(
        self, who: Principal, incident_id: UUID, chosen: LevelOfCare, reason: str | None, ids: RequestIds = FRESH
    ) -> int:
        """Recorded with its author; a choice other than the proposal needs a reason (InvalidReferral)."""
        events = [r.event for r in await self._incident_events(who, incident_id, "write:referral.level_of_care_chosen")]
        await self._clinician_on(who, incident_id)
        proposal = _proposal(events)
        if proposal.level is not None and chosen.value != proposal.level and not (reason or "").strip():
            raise InvalidReferral("reason", f"say why {chosen.value} rather than the proposed {proposal.level}")
        data = LevelOfCareChosenData(
            incident_id=incident_id,
            proposed=LevelOfCare(proposal.level) if proposal.level else None,
            proposed_basis=list(proposal.basis)[:10],
            chosen=chosen,
            chosen_by=who.subject,
            responder_id=who.responder_id,
            reason=(reason or "").strip() or None,
        )
        return await self._append(self._event(LevelOfCareChosen, data, incident_id, ids))

    async def send(
        self, who: Principal, incident_id: UUID, program_ids: list[UUID], needs: ReferralNeeds, ids: RequestIds = FRESH
    ) -> Sent:
        """``referral.sent`` to 1-3 listed programs, once a level of care was chosen for the incident."""
        events = [r.event for r in await self._incident_events(who, incident_id, "write:referral.sent")]
        await self._involved_responder(who, incident_id)
        if not 1 <= len(program_ids) <= 3 or len(set(program_ids)) != len(program_ids):
            raise InvalidReferral("program_ids", "choose one to three different programs")
        for program_id in program_ids:
            listing = await asyncio.to_thread(self.directory().listing, str(program_id))
            if listing is None or listing.entry.retired:
                raise InvalidReferral("program_ids", f"program {program_id} is not in the directory")
        chosen = _last_chosen(events)
        if chosen is None:
            raise Refused("choose the level of care first (a clinician confirms or changes the proposal)")
        if any(e.type == "incident.cancelled" for e in events):
            raise Refused("the incident was cancelled")
        referral_id = ids.id_for("referral")
        taken = {v.code for v in await asyncio.to_thread(self.referrals.for_incident, str(incident_id))}
        code = _code(referral_id, taken)
        now = self.clock.now()
        accept_by = now + self.settings.accept_within(chosen["chosen"])
        data = ReferralSentData(
            referral_id=referral_id,
            incident_id=incident_id,
            code=code,
            level_of_care=LevelOfCare(chosen["chosen"]),
            needs=needs,
            program_ids=program_ids,
            accept_by=accept_by,
            sent_by=who.subject,
            responder_id=who.responder_id,
        )
        await self._append(self._event(ReferralSent, data, incident_id, ids))
        return Sent(referral_id, code, accept_by)

    # ---- after an accept: staff record what they arranged --------------------------------------------------

    async def referral(self, who: Principal, referral_id: UUID, action: str = "read:referral") -> ReferralView:
        """The referral, if ``who`` may see its incident (audited); UnknownIncident for an unknown id."""
        view = await asyncio.to_thread(self.referrals.referral, str(referral_id))
        if view is None:
            raise UnknownIncident(referral_id)
        await self._incident_events(who, UUID(view.incident_id), action)
        return view

    async def transport(
        self, who: Principal, referral_id: UUID, mode: TransportMode, pickup_at: datetime | None, ids: RequestIds
    ) -> int:
        view = await self._writable(who, referral_id, "referral.transport_arranged")
        data = ReferralTransportArrangedData(
            referral_id=referral_id,
            incident_id=UUID(view.incident_id),
            mode=mode,
            pickup_at=pickup_at,
            actor=who.subject,
            responder_id=who.responder_id,
        )
        return await self._checked(view, ReferralTransportArranged, data, ids)

    async def insurance(
        self, who: Principal, referral_id: UUID, status: InsuranceStatus, payer: Payer | None, ids: RequestIds
    ) -> int:
        view = await self._writable(who, referral_id, "referral.insurance_verified")
        data = ReferralInsuranceVerifiedData(
            referral_id=referral_id,
            incident_id=UUID(view.incident_id),
            status=status,
            payer=payer,
            actor=who.subject,
            responder_id=who.responder_id,
        )
        return await self._checked(view, ReferralInsuranceVerified, data, ids)

    async def info_provided(
        self, who: Principal, referral_id: UUID, program_id: UUID, provided: list[InfoNeeded], ids: RequestIds
    ) -> int:
        view = await self._writable(who, referral_id, "referral.info_provided")
        data = ReferralInfoProvidedData(
            referral_id=referral_id,
            incident_id=UUID(view.incident_id),
            program_id=program_id,
            provided=provided,
            actor=who.subject,
            responder_id=who.responder_id,
        )
        return await self._checked(view, ReferralInfoProvided, data, ids)

    async def arrived(self, who: Principal, referral_id: UUID, admitted_at: datetime | None, ids: RequestIds) -> int:
        """Staff confirm the arrival at the program that accepted (channel app)."""
        view = await self._writable(who, referral_id, "referral.admitted")
        offer = view.accepted_offer
        if offer is None:
            raise Refused(f"referral {view.code} is {view.state.value}: an arrival comes after a program accepted")
        listing = await asyncio.to_thread(self.directory().listing, offer.program_id)
        data = ReferralAdmittedData(
            referral_id=referral_id,
            incident_id=UUID(view.incident_id),
            program_id=UUID(offer.program_id),
            program_name=listing.entry.profile.get("name") if listing else None,
            actor=who.subject,
            channel="app",
            admitted_at=admitted_at or self.clock.now(),
            responder_id=who.responder_id,
        )
        return await self._checked(view, ReferralAdmitted, data, ids)

    async def cancel(self, who: Principal, referral_id: UUID, reason: CancelReason, ids: RequestIds) -> int:
        view = await self._writable(who, referral_id, "referral.cancelled")
        data = ReferralCancelledData(
            referral_id=referral_id,
            incident_id=UUID(view.incident_id),
            reason=reason,
            actor=who.subject,
            responder_id=who.responder_id,
        )
        return await self._checked(view, ReferralCancelled, data, ids)

    # ---- checks --------------------------------------------------------------------------------------------

    async def _writable(self, who: Principal, referral_id: UUID, event_type: str) -> ReferralView:
        view = await self.referral(who, referral_id, f"write:{event_type}")
        await self._involved_responder(who, UUID(view.incident_id))
        return view

    async def _checked(self, view: ReferralView, event_class: Any, data: Any, ids: RequestIds) -> int:
        event = self._event(event_class, data, UUID(view.incident_id), ids)
        try:
            fold_referral(view, event)
        except TransitionRefused as refused:
            raise Refused(f"referral {view.code} is {refused.state}: {refused}") from refused
        return await self._append(event)

    async def _clinician_on(self, who: Principal, incident_id: UUID) -> None:
        await self._involved_responder(who, incident_id)
        if who.role is AccessRole.DIRECTOR:
            return
        me = (await asyncio.to_thread(self.staff)).get(who.responder_id) if who.responder_id else None
        if me is None or me.role not in CHOOSERS:
            raise NotPermitted("the level of care is chosen by a clinician, nurse or prescriber on the incident")


def _proposal(events: list[Any]) -> Proposal:
    reported = next((e for e in events if isinstance(e, IncidentReported)), None)
    if reported is None:
        return Proposal(None)
    data = reported.data
    details: dict[str, Any] = {}
    for part in (data.withdrawal, data.overdose):
        if part is not None:
            details |= part.model_dump(mode="json")
    if data.assessment is not None:
        details["risk_level"] = data.assessment.risk_level
    reassessed = [e.data.model_dump(mode="json") for e in events if e.type == "incident.reassessed"]
    return propose_level_of_care(data.kind.value, details, reassessed)


def _last_chosen(events: list[Any]) -> dict[str, Any] | None:
    chosen = [e for e in events if e.type == "referral.level_of_care_chosen"]
    return chosen[-1].data.model_dump(mode="json") | {"at": chosen[-1].occurred_at} if chosen else None


def _code(referral_id: UUID, taken: set[str]) -> str:
    """Four digits from the referral id, the next free one when the incident's referrals use it already."""
    start = int(hashlib.sha256(referral_id.bytes).hexdigest(), 16) % 10000
    return next(f"{(start + n) % 10000:04d}" for n in range(10000) if f"{(start + n) % 10000:04d}" not in taken)
