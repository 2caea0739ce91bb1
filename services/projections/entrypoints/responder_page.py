"""The responder's incident page, for a phone: ``/r/<token>`` (the link in the accept confirmation) and
``/workspace/respond/<incident id>`` (the page, and its buttons).

A valid link starts a session of that responder on that incident only: a signed cookie (``crisis_respond``)
whose path is that incident's page, so it is sent nowhere else and opens nothing else. A workspace session (a
signed-in director, or a responder paged for the incident) opens the page too. Every form carries the session's
CSRF token; each button redirects back to the page with what was recorded (post/redirect/get).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.contract.events import derived_id
from services.projections.adapters import html_pages as pages
from services.projections.adapters.record_layout import fmt_time
from services.projections.adapters.session_cookies import WorkspaceSessions
from services.projections.domain.reassessment import SCALE_NAMES
from services.projections.domain.responder_view import STAGE_WORDS, STAGES
from services.projections.entrypoints.auth import SignInRequired, session_of
from services.projections.errors import InvalidForm, Refused
from services.projections.responder_desk import (
    NALOXONE_PRODUCTS,
    LinkOpened,
    LinkRefused,
    Recorded,
    ResponderDesk,
    link_principal,
)
from services.projections.settings import ProjectionsSettings
from services.runtime.credentials import AccessRole, Principal
from services.runtime.form_csrf import FIELD
from services.runtime.problems import Problem
from services.runtime.request_ids import FRESH, RequestIds
from services.runtime.signed_links import LINK_PATH, ResponderLinks, link_key

router = APIRouter(include_in_schema=False)
LINK_COOKIE = "crisis_respond"
PAGE_PATH = "/workspace/respond"
C_SSRS_WORDS = (
    ("q1", "Q1 Wished to be dead or not wake up (past month)"),
    ("q2", "Q2 Actual thoughts of killing themselves"),
    ("q3", "Q3 Thought about how (asked after yes to Q2)"),
    ("q4", "Q4 Some intention of acting on them (after yes to Q2)"),
    ("q5", "Q5 Worked out the details, intends a plan (after yes to Q2)"),
    ("q6_ever", "Q6 Ever done, started or prepared anything to end their life"),
    ("q6_past_3_months", "Q6 ... within the past 3 months (after yes to Q6)"),
)
"""The C-SSRS screener's questions as the re-assessment form asks them."""
STYLESHEET = files("services.projections").joinpath("static/responder.css").read_text(encoding="utf-8")


def install_responder_page(app: FastAPI, settings: ProjectionsSettings) -> None:
    """The page's routes, and the key its links are checked with (the lifespan adds ``app.state.responder_desk``)."""
    app.state.responder_links = ResponderLinks(link_key(settings.responder_link_key, settings.var_dir))
    app.include_router(router)


def desk(request: Request) -> ResponderDesk:
    return request.app.state.responder_desk


def page_path(incident_id: UUID) -> str:
    return f"{PAGE_PATH}/{incident_id}"


def ask_sign_in(next_path: str, message: str) -> RedirectResponse:
    return RedirectResponse(f"/workspace/sign-in?{urlencode({'next': next_path, 'error': message})}", status_code=303)


@dataclass(frozen=True)
class PageUser:
    """Who is on the page: a link's responder (``link_expires`` set) or a signed-in workspace user."""

    principal: Principal
    csrf: str
    link_expires: datetime | None = None


async def page_user(request: Request, incident_id: UUID) -> PageUser | None:
    links: ResponderLinks = request.app.state.responder_links
    link = links.session(request.cookies.get(LINK_COOKIE), incident_id, request.app.state.clock.now())
    if link is not None:
        return PageUser(link_principal(link.responder_id), link.csrf_token, link.expires_at)
    session = await session_of(request)
    return PageUser(session.principal, session.csrf_token) if session else None


async def signed_in_user(request: Request, incident_id: UUID) -> PageUser:
    """The page's user; otherwise a redirect to the workspace sign-in, back to this page after."""
    user = await page_user(request, incident_id)
    if user is None:
        raise SignInRequired(page_path(incident_id))
    return user


@router.get("/workspace/static/responder.css")
async def stylesheet() -> Response:
    return Response(STYLESHEET, media_type="text/css", headers={"Cache-Control": "max-age=300"})


@router.get(LINK_PATH + "{token}")
async def open_link(request: Request, token: str) -> Response:
    """Opens the page for the responder the link was signed for; anyone else, or later, is asked to sign in."""
    claim = ResponderLinks.read(token)
    current = await page_user(request, claim.incident_id) if claim else None  # who this browser is already
    try:
        opened = await desk(request).open_link(token, current.principal if current else None)
    except LinkRefused as refused:
        return ask_sign_in(page_path(refused.incident_id) if refused.incident_id else "/workspace/", str(refused))
    response = RedirectResponse(page_path(opened.incident_id), status_code=303)
    begin_link_session(request, response, opened)
    return response


def begin_link_session(request: Request, response: Response, opened: LinkOpened) -> None:
    """The session cookie of an opened link: until the link expires, or a workspace session would."""
    now = request.app.state.clock.now()
    sessions: WorkspaceSessions = request.app.state.sessions
    expires = min(opened.expires_at, now + sessions.lifetime)
    links: ResponderLinks = request.app.state.responder_links
    value, _ = links.begin_session(opened.responder_id, opened.incident_id, expires)
    response.set_cookie(
        LINK_COOKIE,
        value,
        max_age=max(1, int((expires - now).total_seconds())),
        httponly=True,
        samesite="lax",  # the link is opened from a messaging app: a top-level navigation from elsewhere
        secure=request.app.state.cookie_secure,
        path=page_path(opened.incident_id),
    )


@router.get(PAGE_PATH + "/{incident_id}")
async def incident_page(
    request: Request, incident_id: UUID, done: str | None = None, error: str | None = None
) -> HTMLResponse:
    user = await signed_in_user(request, incident_id)
    return await page_html(request, user, incident_id, done=done, error=error)


async def page_html(
    request: Request,
    user: PageUser,
    incident_id: UUID,
    *,
    done: str | None = None,
    error: str | None = None,
    typed: InvalidForm | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The page; after a form that was not right (``typed``, with the ``values`` as typed), that form again with
    what was wrong next to its field (422), nothing recorded."""
    app = desk(request)
    view = await app.incident_page(user.principal, incident_id)
    html = pages.render(
        "responder.html",
        view=view,
        who=user.principal,
        csrf=user.csrf,
        by_link=user.link_expires is not None,
        link_expires=user.link_expires,
        stages=[(stage, STAGE_WORDS[stage]) for stage in STAGES],
        products=NALOXONE_PRODUCTS,
        can_record=user.principal.role is AccessRole.DIRECTOR or view.me is not None,
        can_reassess=view.open and await app.may_reassess(user.principal, view),
        can_restock=user.principal.role is AccessRole.RESPONDER and view.me is not None,
        scales=SCALE_NAMES,
        questions=C_SSRS_WORDS,
        form_key=str(uuid4()),
        invalid=typed,
        typed=values or {},
        done=done,
        error=error,
    )
    return HTMLResponse(html, status_code=status_code, headers=pages.PAGE_SECURITY_HEADERS)


def shown(recorded: Recorded) -> str:
    if recorded.at is None:
        return f"Sent: {recorded.what}. The dispatcher has not confirmed it yet; reload in a moment."
    return f"Recorded: {recorded.what} at {fmt_time(recorded.at)}."


@router.post(PAGE_PATH + "/{incident_id}/{action}")
async def press(request: Request, incident_id: UUID, action: str) -> Response:
    """One button: en_route, arrived, done, naloxone, ems; or a form on scene: reassess, ems_called, restock."""
    user = await signed_in_user(request, incident_id)
    values: dict[str, Any] = {k: str(v) for k, v in (await request.form()).items()}
    if not hmac.compare_digest(values.get(FIELD, "").encode(), user.csrf.encode()):
        raise Problem(403, "missing or wrong CSRF token; reload the page and try again")
    app, who = desk(request), user.principal
    try:
        if action in STAGES:
            recorded = await app.report_progress(who, incident_id, action)  # type: ignore[arg-type]
        elif action == "naloxone":
            product = values.get("product", "nasal_4mg")
            recorded = await app.record_naloxone(who, incident_id, product, values.get("response") or None)
        elif action == "ems":
            recorded = await app.record_ems_arrived(who, incident_id, values.get("agency", "").strip() or None)
        elif action in FIELD_FORMS:
            recorded = await FIELD_FORMS[action](app, who, incident_id, values, form_ids(who, values))
        else:
            raise Problem(404, f"no button {action!r} on this page")
    except InvalidForm as exc:
        error = f"Not recorded: {exc}"[:300]
        return await page_html(request, user, incident_id, error=error, typed=exc, values=values, status_code=422)
    except Refused as exc:
        return back(incident_id, error=f"Not recorded: {exc}"[:300])
    return back(incident_id, done=shown(recorded))


def form_ids(who: Principal, values: dict[str, str]) -> RequestIds:
    """The ids a form records under: derived from the key the page put in it (``form_key``), so a form sent twice
    (a double tap, a retry after a dropped answer) records once; fresh when it has none."""
    try:
        key = UUID(values.get("form_key", ""))
    except ValueError:
        return FRESH
    return RequestIds(derived_id("responder_page", who.subject, key))


async def _reassess(app: ResponderDesk, who: Principal, incident_id: UUID, values: dict, ids: RequestIds) -> Recorded:
    return await app.reassess(who, incident_id, values.get("instrument", ""), values, ids)


async def _ems_called(app: ResponderDesk, who: Principal, incident_id: UUID, values: dict, ids: RequestIds) -> Recorded:
    return await app.record_ems_called(who, incident_id, ids)


async def _restock(app: ResponderDesk, who: Principal, incident_id: UUID, values: dict, ids: RequestIds) -> Recorded:
    return await app.report_restock(who, incident_id, values, ids)


FIELD_FORMS = {"reassess": _reassess, "ems_called": _ems_called, "restock": _restock}
"""The on-scene forms (issue 18): re-assessment, 911 called, naloxone restock."""


def back(incident_id: UUID, **message: str) -> RedirectResponse:
    return RedirectResponse(f"{page_path(incident_id)}?{urlencode(message)}", status_code=303)
