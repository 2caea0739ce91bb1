"""A program's page for one referral: ``/rf/<token>`` (the link its SMS carries; referral_links.py). No sign-in:
the token is the credential, for that referral and that program only, until it expires.

It shows the referral's code, the level of care and the needs (medication, payer, populations, language), never
anything that names the person, and the program's own offer state. Opening it records ``referral.received``
once; the forms answer: accept (with the admission window in hours from now), decline (a reason), need
information (what), arrived, did not arrive. Each is checked against the state machine first (a closed offer
answers nothing) and appended with actor "program link"; "Thank you: saved." shows only once the stream took it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.contract.events import (
    ReferralAccepted,
    ReferralAcceptedData,
    ReferralAdmitted,
    ReferralAdmittedData,
    ReferralDeclined,
    ReferralDeclinedData,
    ReferralInfoRequested,
    ReferralInfoRequestedData,
    ReferralNoShow,
    ReferralNoShowData,
    ReferralReceived,
    ReferralReceivedData,
    new_event,
)
from services.contract.referral import DeclineReason, InfoNeeded, OfferState
from services.projections.adapters import html_pages as pages
from services.projections.domain.referral import ReferralView, may
from services.projections.referral_links import REFERRAL_LINK_PATH, ReferralLinks
from services.runtime.form_csrf import FIELD, FormTokenCookie
from services.runtime.stream import STREAM_NAME, NotRecorded, OutcomeUnknown

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
ANSWER_FORM = FormTokenCookie("crisis_referral_answer", path="/rf", max_age=3600)
PRODUCER = "projections"
_NOT_VALID = "This link is not valid or has expired. Call the crisis team."
STATE_WORDS = {
    "sent": "waiting for your answer",
    "received": "waiting for your answer",
    "info_needed": "on hold: the team is getting the information you asked for",
    "accepted": "accepted by you: waiting for the person to arrive",
    "declined": "declined by you",
    "withdrawn": "no longer needed (another program accepted, or the referral was cancelled)",
    "admitted": "arrival confirmed",
    "no_show": "the person did not arrive",
}


def install_referral_link_page(app: FastAPI) -> None:
    app.include_router(router)


def _claim(request: Request, token: str) -> tuple[UUID, UUID] | None:
    links: ReferralLinks = request.app.state.referral_links
    return links.read(token, request.app.state.clock.now())


async def _view(request: Request, token: str) -> tuple[ReferralView, str, str] | None:
    claim = _claim(request, token)
    if claim is None:
        return None
    view = await asyncio.to_thread(request.app.state.read_models.referrals.referral, str(claim[0]))
    if view is None or view.offer(str(claim[1])) is None:
        return None
    entry = await asyncio.to_thread(request.app.state.read_models.directory.entry, str(claim[1]))
    return view, str(claim[1]), (entry.profile.get("name", "") if entry else "")


def _page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    csrf = ANSWER_FORM.token_for(request)
    shown = {"invalid": None, "error": None, "saved": False, "view": None, "offer": None, "name": "", "action": ""}
    html = pages.render(
        "referral_program.html",
        title="Referral",
        who=None,
        csrf=csrf,
        state_words=STATE_WORDS,
        reasons=[r.value for r in DeclineReason],
        needs=[n.value for n in InfoNeeded],
        **shown | context,
    )
    response = HTMLResponse(html, status_code=status, headers=pages.PAGE_SECURITY_HEADERS)
    ANSWER_FORM.set_on(response, csrf)
    return response


async def _append(request: Request, event: Any) -> None:
    sequence = await request.app.state.record_access.publish(event)
    try:
        await asyncio.to_thread(request.app.state.read_models.store.wait, STREAM_NAME, sequence, 5.0)
    except Exception:  # recorded on the stream: the page shows it when the read models catch up
        log.warning("the referrals did not reach %s within 5 s", sequence)


def _common(view: ReferralView, program_id: str, name: str) -> dict[str, Any]:
    return {
        "referral_id": UUID(view.referral_id),
        "incident_id": UUID(view.incident_id),
        "program_id": UUID(program_id),
        "program_name": name or None,
        "actor": "program link",
        "channel": "link",
    }


def _event(view: ReferralView, event_class: Any, data: Any, now: Any) -> Any:
    return new_event(
        event_class, data, event_id=uuid4(), occurred_at=now, producer=PRODUCER, incident_id=UUID(view.incident_id)
    )


@router.get(REFERRAL_LINK_PATH + "{token}")
async def referral_page(request: Request, token: str, saved: str | None = None) -> HTMLResponse:
    found = await _view(request, token)
    if found is None:
        return _page(request, 404, invalid=_NOT_VALID)
    view, program_id, name = found
    offer = view.offer(program_id)
    if offer is not None and offer.state is OfferState.SENT and not view.final:
        now = request.app.state.clock.now()
        received = _event(view, ReferralReceived, ReferralReceivedData(**_common(view, program_id, name)), now)
        try:
            await _append(request, received)
            view, program_id, name = await _view(request, token) or found
        except (NotRecorded, OutcomeUnknown):
            log.warning("referral %s: 'received' not recorded; the page still answers", view.code)
    return _page(
        request,
        view=view,
        offer=view.offer(program_id),
        name=name,
        saved=saved == "1",
        action=f"{REFERRAL_LINK_PATH}{token}",
    )


@router.post(REFERRAL_LINK_PATH + "{token}")
async def answer_referral(request: Request, token: str) -> Response:
    found = await _view(request, token)
    if found is None:
        return _page(request, 404, invalid=_NOT_VALID)
    view, program_id, name = found
    form = {k: str(v) for k, v in (await request.form()).items()}
    shown = {"view": view, "offer": view.offer(program_id), "name": name, "action": f"{REFERRAL_LINK_PATH}{token}"}
    if not ANSWER_FORM.accepts(request, form.get(FIELD)):
        return _page(request, 403, error="The form expired; please send it again.", **shown)
    now = request.app.state.clock.now()
    common = _common(view, program_id, name)
    answer = form.get("answer", "")
    try:
        if answer == "accept":
            hours = int(form.get("hours", "24"))
            if not 1 <= hours <= 336:
                raise ValueError
            data: Any = ReferralAcceptedData(**common, admission_from=now, admission_until=now + timedelta(hours=hours))
            event = _event(view, ReferralAccepted, data, now)
        elif answer == "decline":
            event = _event(view, ReferralDeclined, ReferralDeclinedData(**common, reason=form.get("reason", "")), now)
        elif answer == "info":
            data = ReferralInfoRequestedData(**common, needed=[form.get("needed", "other")])
            event = _event(view, ReferralInfoRequested, data, now)
        elif answer == "arrived":
            event = _event(view, ReferralAdmitted, ReferralAdmittedData(**common, admitted_at=now), now)
        elif answer == "no_show":
            data = ReferralNoShowData(
                **{k: v for k, v in common.items() if k != "program_name"}, code=view.code, window_closed_at=now
            )
            event = _event(view, ReferralNoShow, data, now)
        else:
            return _page(request, 422, error="Choose an answer.", **shown)
    except ValueError:
        field = {"accept": "hours (1 to 336)", "decline": "reason", "info": "what you need"}.get(answer, "answer")
        return _page(request, 422, error=f"{field}: not understood; nothing was saved.", **shown)
    if not may(view, event):
        return _page(
            request, 409, error=f"Referral {view.code} is {view.state.value.replace('_', ' ')}: not saved.", **shown
        )
    try:
        await _append(request, event)
    except (NotRecorded, OutcomeUnknown):
        return _page(request, 503, error="Not saved: the system did not answer. Try again.", **shown)
    return RedirectResponse(f"{REFERRAL_LINK_PATH}{token}?saved=1", status_code=303)
