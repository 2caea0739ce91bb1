"""The referral in the workspace (issue 17): matches for an incident with the proposed level of care (confirm or
change it), sending a referral to up to three programs, the referrals list, and a referral's page with its state,
each program's answer, its history (every transition with its actor and channel) and the staff's forms (transport,
insurance, arrival, cancel). Each form goes through ``ReferralCommands``: refused ones come back with the reason,
nothing saved; saved ones are shown back."""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any
from uuid import UUID

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from services.contract.events import ReferralNeeds
from services.contract.referral import CancelReason
from services.contract.treatment import LevelOfCare, Medication, Payer
from services.projections.adapters import html_pages as pages
from services.projections.domain.directory import availability_words
from services.projections.domain.program_matching import MatchRequest
from services.projections.domain.referral import TransitionRefused
from services.projections.entrypoints.auth import PageCaller
from services.projections.entrypoints.form_values import InvalidFormValue, form_time
from services.projections.entrypoints.referral_api import commands, program_names, referral_json
from services.projections.entrypoints.web import back, form_of
from services.projections.errors import Refused
from services.projections.referral_commands import InvalidReferral
from services.runtime.request_ids import FRESH

router = APIRouter(prefix="/workspace", include_in_schema=False)
TRANSPORT = ("responder", "program", "family", "ride_service", "ems", "public_transit", "self")


def install_referral_pages(app: FastAPI) -> None:
    app.include_router(router)


def _page(template: str, caller: Any, status: int = 200, **context: Any) -> HTMLResponse:
    csrf = caller.session.csrf_token if caller.session else ""
    html = pages.render(template, who=caller.principal, csrf=csrf, **context)
    return HTMLResponse(html, status_code=status, headers=pages.PAGE_SECURITY_HEADERS)


@router.get("/incidents/{incident_id}/matches")
async def matches_page(
    request: Request,
    incident_id: UUID,
    caller: PageCaller,
    level: str = "",
    medication: str = "",
    payer: str = "",
    done: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    wanted = MatchRequest(
        LevelOfCare(level).value if level in {v.value for v in LevelOfCare} else None,
        medication if medication in {m.value for m in Medication} else None,
        payer if payer in {p.value for p in Payer} else None,
    )
    found = await commands(request).matches(caller.principal, incident_id, wanted)
    now, zone = request.app.state.clock.now(), request.app.state.time_zone
    rows = [m | {"words": availability_words(m["availability"], now, zone)} for m in map(vars, found.matches)]
    return _page(
        "matches.html",
        caller,
        title="Find treatment",
        active="board",
        incident=incident_id,
        found=found,
        rows=rows,
        levels=[v.value for v in LevelOfCare],
        medications=[m.value for m in Medication],
        payers=[p.value for p in Payer],
        typed={"level": level, "medication": medication, "payer": payer},
        done=done,
        error=error,
    )


@router.post("/incidents/{incident_id}/level-of-care")
async def choose_level(request: Request, incident_id: UUID, caller: PageCaller) -> Response:
    values = await form_of(request, caller)
    path = f"/workspace/incidents/{incident_id}/matches"
    try:
        chosen = LevelOfCare(values.get("chosen", ""))
        await commands(request).choose_level_of_care(caller.principal, incident_id, chosen, values.get("reason"))
    except ValueError:
        return back(path, error="Level of care: choose one of the list. Nothing was saved.")
    except InvalidReferral as exc:
        return back(path, error=f"Not saved: {exc}")
    return back(path, done=f"Level of care {chosen.value} recorded by {caller.principal.subject}.")


@router.post("/incidents/{incident_id}/referrals")
async def send_referral(request: Request, incident_id: UUID, caller: PageCaller) -> Response:
    form = await request.form()
    await form_of(request, caller)
    path = f"/workspace/incidents/{incident_id}/matches"
    try:
        program_ids = [UUID(str(p)) for p in form.getlist("program_id")]
        needs = ReferralNeeds(medication=form.get("medication") or None, payer=form.get("payer") or None)
        sent = await commands(request).send(caller.principal, incident_id, program_ids, needs)
    except (ValueError, ValidationError):
        return back(path, error="Choose one to three programs from the list. Nothing was sent.")
    except (InvalidReferral, Refused) as exc:
        return back(path, error=f"Not sent: {exc}")
    return back(f"/workspace/referrals/{sent.referral_id}", done=f"Referral {sent.code} sent; the programs are texted.")


@router.get("/referrals")
async def referrals_page(request: Request, caller: PageCaller) -> HTMLResponse:
    access = commands(request)
    views = await asyncio.to_thread(access.referrals.referrals, open_only=False, limit=200)
    shown = []
    for view in views:
        try:
            await access._incident_events(caller.principal, UUID(view.incident_id), "read:referrals")
        except Exception:  # noqa: BLE001 - not theirs: left out (the refusal is audited)
            continue
        shown.append(view)
    shown.sort(key=lambda v: (v.final, v.sent_at))
    return _page("referrals.html", caller, title="Referrals", active="referrals", views=shown, now=access.clock.now())


@router.get("/referrals/{referral_id}")
async def referral_page(
    request: Request, referral_id: UUID, caller: PageCaller, done: str | None = None, error: str | None = None
) -> HTMLResponse:
    view = await commands(request).referral(caller.principal, referral_id)
    body = referral_json(view, await program_names(request))
    return _page(
        "referral.html",
        caller,
        title=f"Referral {view.code}",
        active="referrals",
        r=body,
        view=view,
        transport=TRANSPORT,
        cancel_reasons=[c.value for c in CancelReason],
        done=done,
        error=error,
    )


@router.post("/referrals/{referral_id}/{action}")
async def referral_action(request: Request, referral_id: UUID, action: str, caller: PageCaller) -> Response:
    values = await form_of(request, caller)
    path, who, access = f"/workspace/referrals/{referral_id}", caller.principal, commands(request)
    zone = request.app.state.time_zone
    try:
        if action == "transport":
            pickup = form_time(values.get("pickup_at", "").strip(), "pickup time", zone)
            await access.transport(
                who, referral_id, values.get("mode", ""), pickup.astimezone(UTC) if pickup else None, FRESH
            )
            said = "Transport recorded."
        elif action == "insurance":
            await access.insurance(who, referral_id, values.get("status", ""), values.get("payer") or None, FRESH)
            said = "Insurance recorded."
        elif action == "arrived":
            await access.arrived(who, referral_id, None, FRESH)
            said = "Arrival recorded."
        elif action == "cancel":
            await access.cancel(who, referral_id, CancelReason(values.get("reason", "")), FRESH)
            said = "Referral cancelled; the programs are told."
        else:
            return back(path, error="Unknown action.")
    except (InvalidFormValue, ValidationError, ValueError) as exc:
        return back(path, error=f"Not saved: {str(exc)[:200]}")
    except (Refused, TransitionRefused) as exc:
        return back(path, error=f"Not saved: {exc}")
    return back(path, done=said)
