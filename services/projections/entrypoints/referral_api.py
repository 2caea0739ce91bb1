"""The referral's JSON API (issue 17, sections 2 and 3): matches for an incident, the level of care, sending a
referral, reading referrals, and what staff record after an accept. Each handler parses, calls
``ReferralCommands`` and maps the answer; refusals are problem documents (403 audited, 404, 409 naming the state,
422 naming the field). Commands take an Idempotency-Key like every workspace command.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.contract.events import ReferralNeeds
from services.contract.referral import CancelReason, InfoNeeded, InsuranceStatus, TransportMode
from services.contract.treatment import LevelOfCare, Payer
from services.projections.adapters.geodesic import geodesic_km
from services.projections.directory import DirectorySettings, ProgramDirectory
from services.projections.domain.directory import availability_words
from services.projections.domain.program_matching import MatchRequest
from services.projections.domain.referral import ReferralView
from services.projections.entrypoints.auth import ApiCaller
from services.projections.entrypoints.http import AUTH, CommandCall
from services.projections.entrypoints.referral_link_page import install_referral_link_page
from services.projections.entrypoints.requester import WorkspaceRequester
from services.projections.referral_commands import InvalidReferral, ReferralCommands, ReferralSettings
from services.projections.referral_desk import ReferralDeskSettings
from services.projections.referral_links import ReferralLinks
from services.runtime.idempotency import Answer
from services.runtime.input_times import InputDatetime
from services.runtime.problems import Problem
from services.runtime.request_ids import RequestIds

router = APIRouter(tags=["referrals"])


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LevelChoice(Body):
    chosen: LevelOfCare
    reason: str | None = Field(default=None, max_length=300)


class ReferralRequest(Body):
    program_ids: list[UUID] = Field(min_length=1, max_length=3)
    needs: ReferralNeeds = Field(default_factory=ReferralNeeds)


class Transport(Body):
    mode: TransportMode
    pickup_at: InputDatetime | None = None


class Insurance(Body):
    status: InsuranceStatus
    payer: Payer | None = None


class InfoProvided(Body):
    program_id: UUID
    provided: list[InfoNeeded] = Field(min_length=1, max_length=6)


class Arrived(Body):
    admitted_at: InputDatetime | None = None


class Cancel(Body):
    reason: CancelReason


class ReferralRequester(WorkspaceRequester):
    def refusal(self, exc: Exception) -> Problem | None:
        if isinstance(exc, InvalidReferral):
            return Problem(422, str(exc), errors=[{"loc": ["body", exc.field], "msg": str(exc)}])
        return super().refusal(exc)


def commands(request: Request) -> ReferralCommands:
    state = request.app.state
    return ReferralCommands(
        state.record_access,
        lambda: ProgramDirectory(state.read_models.directory, state.clock, state.staleness_rule),
        state.read_models.referrals,
        geodesic_km,
        state.referral_settings,
        lambda incident_id: _person_place(state, incident_id),
    )


def _person_place(state: Any, incident_id: UUID) -> tuple[float, float] | None:
    """The place chosen by the first person linked to the incident who chose one (None: no person desk, nobody
    linked, or no place chosen)."""
    desk = getattr(state, "person_desk", None)
    if desk is None:
        return None
    return next((v.chosen_place for v in desk.people_for_incident(incident_id) if v.chosen_place), None)


def install_referral_api(app: FastAPI) -> None:
    """The routes, the settings and the programs' referral links (signed with the responder links' key: install
    after ``install_responder_page``)."""
    app.state.referral_settings = ReferralSettings()
    desk_settings = ReferralDeskSettings()
    app.state.referral_links = ReferralLinks(
        app.state.responder_links.key,
        lifetime=timedelta(days=desk_settings.referral_link_days),
        base_url=DirectorySettings().workspace_public_url,
    )
    app.include_router(router)
    install_referral_link_page(app)  # /rf/<token>: the program's page for one referral


# ---- matching and sending -----------------------------------------------------------------------------------


@router.get("/v1/incidents/{incident_id}/matches", responses=AUTH)
async def incident_matches(
    request: Request,
    incident_id: UUID,
    caller: ApiCaller,
    level: LevelOfCare | None = None,
    medication: str | None = Query(default=None, max_length=40),
    payer: str | None = Query(default=None, max_length=40),
    population: str | None = Query(default=None, max_length=40),
    language: str | None = Query(default=None, max_length=8),
) -> dict[str, Any]:
    """Programs for this incident, ranked (confirmed availability, then distance), each with its reasons; the
    level of care triage proposes and the one a clinician chose. Audited."""
    wanted = MatchRequest(
        level.value if level else None, medication, payer, (population,) if population else (), language
    )
    found = await commands(request).matches(caller.principal, incident_id, wanted)
    now, zone = request.app.state.clock.now(), request.app.state.time_zone
    return {
        "proposal": {"level": found.proposal.level, "basis": list(found.proposal.basis)},
        "chosen": found.chosen,
        "level": found.wanted.level,
        "distance_from": found.origin_from,
        "matches": [
            {
                "rank": m.rank,
                "program_id": m.program_id,
                "name": m.name,
                "availability": m.state,
                "availability_words": availability_words(m.availability, now, zone),
                "distance_km": m.distance_km,
                "reasons": list(m.reasons),
            }
            for m in found.matches
        ],
    }


@router.post("/v1/incidents/{incident_id}/level-of-care", status_code=202, responses=AUTH)
async def choose_level(incident_id: UUID, body: LevelChoice, call: CommandCall) -> JSONResponse:
    """A clinician (or director) confirms or changes the proposed level of care (referral.level_of_care_chosen)."""
    access = commands(call.request)
    call.caller.check_csrf(call.csrf)

    async def use_case(ids: RequestIds) -> Answer:
        sequence = await access.choose_level_of_care(call.caller.principal, incident_id, body.chosen, body.reason, ids)
        return Answer(202, {"stream_sequence": sequence, "chosen": body.chosen.value})

    return await ReferralRequester(call.caller.principal, call.key, call.request).answer_once(body, use_case)


@router.post("/v1/incidents/{incident_id}/referrals", status_code=201, responses=AUTH)
async def send_referral(incident_id: UUID, body: ReferralRequest, call: CommandCall) -> JSONResponse:
    """Send a referral to one to three programs (referral.sent); each program is then told by SMS."""
    access = commands(call.request)
    call.caller.check_csrf(call.csrf)

    async def use_case(ids: RequestIds) -> Answer:
        sent = await access.send(call.caller.principal, incident_id, body.program_ids, body.needs, ids)
        return Answer(
            201,
            {"referral_id": str(sent.referral_id), "code": sent.code, "accept_by": sent.accept_by.isoformat()},
            {"Location": f"/v1/referrals/{sent.referral_id}"},
        )

    return await ReferralRequester(call.caller.principal, call.key, call.request).answer_once(body, use_case)


# ---- reading ------------------------------------------------------------------------------------------------


def referral_json(view: ReferralView, names: dict[str, str]) -> dict[str, Any]:
    """A referral as the API answers it: its state, each program's offer, transport, insurance and history."""

    def at(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "referral_id": view.referral_id,
        "incident_id": view.incident_id,
        "person_id": view.person_id,
        "code": view.code,
        "state": view.state.value,
        "level_of_care": view.level_of_care,
        "needs": view.needs,
        "sent_at": at(view.sent_at),
        "sent_by": view.sent_by,
        "accept_by": at(view.accept_by),
        "acceptance_overdue_at": at(view.acceptance_overdue_at),
        "escalation": {"soundings": view.escalations, "ended": view.escalation_end},
        "offers": [
            {
                "program_id": o.program_id,
                "program_name": names.get(o.program_id),
                "state": o.state.value,
                "answered_at": at(o.answered_at),
                "decline_reason": o.decline_reason,
                "info_needed": list(o.info_needed),
                "admission_from": at(o.admission_from),
                "admission_until": at(o.admission_until),
            }
            for o in view.offers
        ],
        "transport": view.transport,
        "insurance": view.insurance,
        "admitted_at": at(view.admitted_at),
        "no_show_at": at(view.no_show_at),
        "cancelled_at": at(view.cancelled_at),
        "cancel_reason": view.cancel_reason,
        "history": [
            {
                "at": at(h.at),
                "event_type": h.event_type,
                "actor": h.actor,
                "channel": h.channel,
                "program_id": h.program_id,
                "detail": h.detail,
            }
            for h in view.history
        ],
    }


async def program_names(request: Request) -> dict[str, str]:
    entries = await asyncio.to_thread(request.app.state.read_models.directory.entries)
    return {e.program_id: e.profile.get("name", "") for e in entries}


@router.get("/v1/referrals/{referral_id}", responses=AUTH)
async def read_referral(request: Request, referral_id: UUID, caller: ApiCaller) -> dict[str, Any]:
    """One referral, for a director or a responder on its incident. Audited."""
    view = await commands(request).referral(caller.principal, referral_id)
    return referral_json(view, await program_names(request))


@router.get("/v1/incidents/{incident_id}/referrals", responses=AUTH)
async def incident_referrals(request: Request, incident_id: UUID, caller: ApiCaller) -> dict[str, Any]:
    """The incident's referrals, oldest first. Audited."""
    access = commands(request)
    await access._incident_events(caller.principal, incident_id, "read:referrals")
    views = await asyncio.to_thread(access.referrals.for_incident, str(incident_id))
    names = await program_names(request)
    return {"referrals": [referral_json(v, names) for v in views]}


# ---- after an accept ----------------------------------------------------------------------------------------


async def _answer(call: Any, body: BaseModel, change: Any) -> JSONResponse:
    call.caller.check_csrf(call.csrf)

    async def use_case(ids: RequestIds) -> Answer:
        return Answer(202, {"stream_sequence": await change(ids)})

    return await ReferralRequester(call.caller.principal, call.key, call.request).answer_once(body, use_case)


@router.post("/v1/referrals/{referral_id}/transport", status_code=202, responses=AUTH)
async def arrange_transport(referral_id: UUID, body: Transport, call: CommandCall) -> JSONResponse:
    """Transport arranged (who takes the person, and when): referral.transport_arranged."""
    who, access = call.caller.principal, commands(call.request)
    return await _answer(call, body, lambda ids: access.transport(who, referral_id, body.mode, body.pickup_at, ids))


@router.post("/v1/referrals/{referral_id}/insurance", status_code=202, responses=AUTH)
async def verify_insurance(referral_id: UUID, body: Insurance, call: CommandCall) -> JSONResponse:
    """Insurance verified yes, no or pending: referral.insurance_verified."""
    who, access = call.caller.principal, commands(call.request)
    return await _answer(call, body, lambda ids: access.insurance(who, referral_id, body.status, body.payer, ids))


@router.post("/v1/referrals/{referral_id}/info-provided", status_code=202, responses=AUTH)
async def provide_info(referral_id: UUID, body: InfoProvided, call: CommandCall) -> JSONResponse:
    """Staff sent a program what it asked for: referral.info_provided (its offer is received again)."""
    who, access = call.caller.principal, commands(call.request)
    return await _answer(
        call, body, lambda ids: access.info_provided(who, referral_id, body.program_id, body.provided, ids)
    )


@router.post("/v1/referrals/{referral_id}/arrived", status_code=202, responses=AUTH)
async def confirm_arrival(referral_id: UUID, body: Arrived, call: CommandCall) -> JSONResponse:
    """Staff confirm the person arrived at the program that accepted: referral.admitted (channel app)."""
    who, access = call.caller.principal, commands(call.request)
    return await _answer(call, body, lambda ids: access.arrived(who, referral_id, body.admitted_at, ids))


@router.post("/v1/referrals/{referral_id}/cancel", status_code=202, responses=AUTH)
async def cancel_referral(referral_id: UUID, body: Cancel, call: CommandCall) -> JSONResponse:
    """Cancel the referral (the programs with an open offer are told): referral.cancelled."""
    who, access = call.caller.principal, commands(call.request)
    return await _answer(call, body, lambda ids: access.cancel(who, referral_id, body.reason, ids))
