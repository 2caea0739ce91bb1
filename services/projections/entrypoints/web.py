"""The director workspace: server-rendered pages under /workspace, signed in with a session cookie.

Each handler reads the form or query, calls ``ClinicalRecordAccess`` and renders a page, or redirects after a change
(post/redirect/get) with a short message. Nothing is loaded from outside this service.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from services.projections.adapters import html_pages as pages
from services.projections.adapters.change_feed import ChangeFeed
from services.projections.adapters.session_cookies import COOKIE_NAME, WorkspaceSessions
from services.projections.application import ClinicalRecordAccess, Refused, responders_able
from services.projections.domain.access import READER_ROLES
from services.projections.entrypoints import documentation_form as doc_form
from services.projections.entrypoints.auth import Caller, PageCaller, session_of
from services.projections.entrypoints.form_values import InvalidFormValue, form_time, refusal_reason
from services.projections.entrypoints.person_pages import incident_people
from services.runtime.credentials import CredentialStore, token_digest
from services.runtime.form_csrf import FIELD, FormTokenCookie
from services.runtime.input_times import within_input_range

router = APIRouter(prefix="/workspace", include_in_schema=False)
SIGN_IN_FORM = FormTokenCookie("crisis_sign_in", path="/workspace", max_age=900)
SSE_LIFETIME_SECONDS = 300.0
SSE_KEEPALIVE_SECONDS = 10.0

SHORT_CODE = re.compile(r"\d{4}")
PAST_TENSE = {
    "assign": "assigned",
    "complete": "completed",
    "reschedule": "rescheduled",
    "attempt": "recorded",  # an outreach attempt (issue 19)
    "end": "ended",  # the outreach series
}
OFFERS = ("naloxone_kit", "test_strips", "moud_start", "bridge_prescription", "referral")
YES_NO = {"yes": True, "no": False}


def record_access(request: Request) -> ClinicalRecordAccess:
    return request.app.state.record_access


def page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=pages.PAGE_SECURITY_HEADERS)


def back(path: str, **params: str) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v})
    return RedirectResponse(f"{path}?{query}" if query else path, status_code=303)


async def form_of(request: Request, caller: Caller) -> dict[str, str]:
    form = await request.form()
    values = {k: str(v) for k, v in form.items()}
    caller.check_csrf(values.get(FIELD))
    return values


# ---- static files ---------------------------------------------------------------------------------------------


@router.get("/static/app.css")
async def stylesheet() -> Response:
    return Response(pages.STYLESHEET, media_type="text/css", headers={"Cache-Control": "max-age=300"})


@router.get("/static/app.js")
async def script() -> Response:
    return Response(pages.SCRIPT, media_type="text/javascript", headers={"Cache-Control": "max-age=300"})


# ---- signing in and out ------------------------------------------------------------------------------------------


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str = "/workspace/", error: str | None = None) -> HTMLResponse:  # noqa: A002
    token = SIGN_IN_FORM.token_for(request)
    response = page(pages.sign_in_page(pages.next_target(next), token, error))
    SIGN_IN_FORM.set_on(response, token)
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    values = {k: str(v) for k, v in form.items()}
    target = pages.next_target(values.get("next"))
    if not SIGN_IN_FORM.accepts(request, values.get(FIELD)):
        return back("/workspace/sign-in", next=target, error="The form expired; please sign in again.")
    store: CredentialStore = request.app.state.credentials
    token = values.get("token", "")
    principal = store.verify_token(token)
    username = values.get("username", "")
    if principal is None or not hmac.compare_digest(principal.subject.encode(), username.encode()):
        return back("/workspace/sign-in", next=target, error="User name or token not recognised.")
    if principal.role.value not in READER_ROLES:
        return back("/workspace/sign-in", next=target, error="This account has no workspace access.")
    sessions: WorkspaceSessions = request.app.state.sessions
    # bound to the credential: removing it from the credentials file ends this session too
    value, _ = await sessions.begin(principal, token_digest(token), request.app.state.clock.now())
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=int(sessions.lifetime.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.app.state.cookie_secure,
        path="/",
    )
    SIGN_IN_FORM.clear(response)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, caller: PageCaller) -> Response:
    await form_of(request, caller)
    # ended on the server: a copy of the cookie (another tab, a proxy log, a thief) signs nobody in
    sessions: WorkspaceSessions = request.app.state.sessions
    await sessions.end(request.cookies.get(COOKIE_NAME), request.app.state.clock.now())
    response = RedirectResponse("/workspace/sign-in", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


# ---- the board and its live updates -------------------------------------------------------------------------


def _status(value: str) -> str | None:
    return None if value == "all" else value if value in ("open", "closed", "cancelled") else "open"


def _shown(status: str) -> str:
    """The filter the board shows as chosen: what ``_status`` reads the query as ('all' for every incident)."""
    return _status(status) or "all"


@router.get("/")
async def board(request: Request, caller: PageCaller, status: str = "open") -> HTMLResponse:
    position = request.app.state.changes.position  # read first: any later change is announced after it
    rows = await record_access(request).board(caller.principal, _status(status))
    csrf = caller.session.csrf_token  # type: ignore[union-attr]
    html = pages.board_page(rows, caller.principal, csrf, _shown(status), position, request.app.state.time_zone)
    return page(html)


@router.get("/board/rows")
async def board_rows(request: Request, caller: PageCaller, status: str = "open") -> HTMLResponse:
    rows = await record_access(request).board(caller.principal, _status(status))
    return page(pages.board_rows(rows, request.app.state.time_zone))


@router.get("/events")
async def events(request: Request, caller: PageCaller, after: int | None = None) -> StreamingResponse:
    """Server-Sent Events: 'change' whenever the read models move on (carrying only the stream position), until
    the session ends (signed out, or its credential revoked)."""
    feed: ChangeFeed = request.app.state.changes
    loop = asyncio.get_running_loop()

    async def stream():  # noqa: ANN202 - an async generator of SSE frames
        position = feed.position if after is None else after
        yield "retry: 2000\n\n"
        if feed.position > position:
            position = feed.position
            yield f"event: change\ndata: {position}\n\n"
        # the browser reconnects by itself; a bounded stream lets the server stop promptly
        stop_at = loop.time() + SSE_LIFETIME_SECONDS
        while loop.time() < stop_at:
            moved = await feed.wait_beyond(position, SSE_KEEPALIVE_SECONDS)
            if await session_of(request) is None:
                return
            if moved is None:
                yield ": keep-alive\n\n"
                continue
            position = moved
            yield f"event: change\ndata: {position}\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


# ---- one incident ------------------------------------------------------------------------------------------------


@router.get("/incidents/{incident_id}")
async def timeline(request: Request, incident_id: UUID, caller: PageCaller, as_of: str | None = None) -> HTMLResponse:
    zone = request.app.state.time_zone
    moment = form_time(as_of, "as_of", zone)  # the page shows the organisation's time, so it is read in it too
    view = await record_access(request).timeline(caller.principal, incident_id, moment)
    as_of_text = moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S") if moment else ""
    csrf = caller.session.csrf_token  # type: ignore[union-attr]
    people, may_link = await incident_people(request, caller, incident_id)
    return page(pages.timeline_page(view, caller.principal, csrf, as_of_text, zone, people, may_link))


async def documentation_view(
    request: Request, incident_id: UUID, caller: Caller, status: int = 200, **shown: Any
) -> HTMLResponse:
    """The documentation page; ``shown``: a message (``done``/``error``) and, after a refused form, what was typed
    (``typed``) and which field was wrong (``invalid``), so nothing typed is lost."""
    doc, progress = await record_access(request).documentation(caller.principal, incident_id)
    view = {"short_code": progress.short_code, "kind": progress.kind}
    csrf = caller.session.csrf_token  # type: ignore[union-attr]
    zone = request.app.state.time_zone
    html = pages.documentation_page(doc, view, caller.principal, csrf, zone, doc_form.LABELS, **shown)
    return page(html, status)


@router.get("/incidents/{incident_id}/documentation")
async def documentation(
    request: Request, incident_id: UUID, caller: PageCaller, done: str | None = None, error: str | None = None
) -> HTMLResponse:
    return await documentation_view(request, incident_id, caller, done=done, error=error)


@router.post("/incidents/{incident_id}/documentation/fields")
async def complete_fields(request: Request, incident_id: UUID, caller: PageCaller) -> Response:
    values = await form_of(request, caller)
    try:
        fields = doc_form.documentation_fields(values, request.app.state.time_zone)
    except InvalidFormValue as exc:
        error = doc_form.refusal_words(exc)
        return await documentation_view(request, incident_id, caller, 422, error=error, typed=values, invalid=exc.field)
    path = f"/workspace/incidents/{incident_id}/documentation"
    if not fields.model_fields_set:
        return back(path, error="Nothing to save: every field was empty.")
    await record_access(request).complete_fields(caller.principal, incident_id, fields)
    return back(path, done=doc_form.saved_words(fields))


@router.post("/incidents/{incident_id}/documentation/attest")
async def attest(request: Request, incident_id: UUID, caller: PageCaller) -> Response:
    await form_of(request, caller)
    path = f"/workspace/incidents/{incident_id}/documentation"
    try:
        await record_access(request).attest(caller.principal, incident_id)
    except Refused as exc:
        return back(path, error=f"Not attested: {exc}"[:300])
    return back(path, done="Attested.")


@router.post("/incidents/{incident_id}/documentation/sign-off")
async def sign_off(request: Request, incident_id: UUID, caller: PageCaller) -> Response:
    values = await form_of(request, caller)
    path = f"/workspace/incidents/{incident_id}/documentation"
    decision = values.get("decision", "")
    comment = values.get("comment", "").strip() or None
    if refused := doc_form.sign_off_refusal(decision, comment):
        error = f"Not signed off; nothing was recorded. {refused}"
        return await documentation_view(
            request, incident_id, caller, 422, error=error, typed=values, invalid=refused.field
        )
    try:
        await record_access(request).sign_off(caller.principal, incident_id, decision, comment)  # type: ignore[arg-type]
    except Refused as exc:
        return back(path, error=f"Not signed off: {exc}"[:300])
    return back(path, done="Signed off." if decision == "approved" else "Returned for changes.")


# ---- follow-up tasks ------------------------------------------------------------------------------------------------


async def tasks_view(request: Request, caller: Caller, show: str = "", status: int = 200, **shown: Any) -> HTMLResponse:
    """The tasks page; ``shown``: a message (``done``/``error``) and, after a refused form, the task and what was
    typed into it (``typed``: task id, action, values), so a note is never lost."""
    director = caller.principal.role.value == "director"
    scope = show if show in ("mine", "all") else ("all" if director else "mine")
    app = record_access(request)
    rows = await app.tasks(caller.principal, mine=scope == "mine")
    candidates: dict[str, list[tuple[UUID, str]]] = {}
    if director:
        staff = await asyncio.to_thread(app.staff)
        for row in rows:
            candidates[row["task_id"]] = [(rid, info.name) for rid, info in responders_able(staff, row["owner_role"])]
    csrf = caller.session.csrf_token  # type: ignore[union-attr]
    zone = request.app.state.time_zone
    return page(pages.tasks_page(rows, caller.principal, csrf, candidates, scope, zone, **shown), status)


@router.get("/tasks")
async def tasks(
    request: Request, caller: PageCaller, show: str = "", done: str | None = None, error: str | None = None
) -> HTMLResponse:
    return await tasks_view(request, caller, show, done=done, error=error)


async def task_command(request: Request, caller: Caller, task_id: UUID, action: str, values: dict[str, str]) -> None:
    """Gives the task the command the form names; Refused, ValueError, ValidationError or InvalidFormValue when
    it cannot."""
    app = record_access(request)
    if action == "assign":
        try:
            assignee = UUID(values.get("assignee_id", ""))
        except ValueError:
            raise InvalidFormValue("assignee_id", "choose who takes the task") from None
        await app.assign_task(caller.principal, task_id, assignee)
    elif action == "attempt":
        attempt = {
            "channel": values.get("channel", ""),
            "reached": values.get("reached") == "yes",
            "offered": [o for o in OFFERS if values.get(f"offered_{o}")],
            "accepted": [o for o in OFFERS if values.get(f"accepted_{o}")],
            "safety_plan_reviewed": YES_NO.get(values.get("safety_plan", "")),
            "further_contact": YES_NO.get(values.get("further_contact", "")),
        }
        await app.record_attempt(caller.principal, task_id, attempt)
    elif action == "end":
        await app.end_series(caller.principal, task_id, values.get("series_outcome", ""))  # type: ignore[arg-type]
    elif action == "complete":
        note = values.get("note", "").strip() or None
        await app.complete_task(caller.principal, task_id, values.get("outcome", ""), note)  # type: ignore[arg-type]
    else:
        due = form_time(values.get("due_at"), "due_at", request.app.state.time_zone)
        if due is None:
            raise InvalidFormValue("due_at", "a new due time is required")
        await app.reschedule_task(caller.principal, task_id, due, values.get("reason", "").strip() or "rescheduled")


@router.post("/tasks/{task_id}/{action}")
async def change_task(request: Request, task_id: UUID, action: str, caller: PageCaller) -> Response:
    values = await form_of(request, caller)
    if action not in PAST_TENSE:
        return page(pages.error_page(404, "no such action", caller.principal, None), 404)
    try:
        await task_command(request, caller, task_id, action, values)
    except (Refused, ValueError, ValidationError, InvalidFormValue) as exc:
        status = 409 if isinstance(exc, Refused) else 422
        error = f"Not {PAST_TENSE[action]}; nothing was recorded: {refusal_reason(exc)}"[:300]
        typed = {"task_id": str(task_id), "action": action, "values": values}
        return await tasks_view(request, caller, values.get("show", ""), status, error=error, typed=typed)
    done = {"attempt": "Attempt recorded.", "end": "Series ended."}.get(action, f"Task {PAST_TENSE[action]}.")
    return back("/workspace/tasks", done=done)


# ---- metrics and audit ---------------------------------------------------------------------------------------------


def day_start(text: str, name: str, zone: tzinfo, days_after: int = 0) -> datetime | None:
    """The start, in ``zone``, of the day ``text`` names (or of the day ``days_after`` it); None when empty;
    InvalidFormValue naming ``name`` when it is not a date the services accept."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
        within_input_range(datetime.combine(day, time(0), tzinfo=zone))
        return within_input_range(datetime.combine(day + timedelta(days=days_after), time(0), tzinfo=zone))
    except ValueError as exc:
        raise InvalidFormValue(name, str(exc)) from None


@router.get("/metrics")
async def metrics(request: Request, caller: PageCaller, since: str = "", until: str = "") -> HTMLResponse:
    """Incidents reported, and tasks due, from the start of ``since`` to the end of ``until`` (both days included,
    in the organisation's zone)."""
    zone = request.app.state.time_zone
    start, end = day_start(since, "since", zone), day_start(until, "until", zone, days_after=1)
    if start is not None and end is not None and end <= start:
        raise InvalidFormValue("until", "the last day shown comes before the first")
    figures = await record_access(request).metrics(caller.principal, start, end)
    csrf = caller.session.csrf_token  # type: ignore[union-attr]
    return page(pages.metrics_page(figures, caller.principal, csrf, since, until, zone))


@router.get("/outcomes")
async def outcomes(request: Request, caller: PageCaller) -> HTMLResponse:
    """The outcome figures (issue 19): directors only."""
    figures = await record_access(request).outcomes(caller.principal)
    csrf = caller.session.csrf_token  # type: ignore[union-attr]
    return page(pages.outcomes_page(figures, caller.principal, csrf, request.app.state.time_zone))


@router.get("/audit")
async def audit(
    request: Request, caller: PageCaller, subject: str = "", incident: str = "", record_id: str = ""
) -> HTMLResponse:
    """The audit log, by person (``subject``), by incident short code (``incident``: its incidents and their
    follow-up tasks) or by one record's id."""
    code = incident.strip()
    if code and not SHORT_CODE.fullmatch(code):
        raise InvalidFormValue("incident", "an incident code is 4 digits, e.g. 4821")
    app = record_access(request)
    rows = await app.audit_trail(
        caller.principal,
        incident_code=code or None,
        subject=subject.strip() or None,
        record_id=record_id.strip() or None,
        limit=1000,
    )
    people = await app.audit_people(caller.principal)
    filters = {"subject": subject.strip(), "incident": code, "record_id": record_id.strip()}
    csrf = caller.session.csrf_token  # type: ignore[union-attr]
    return page(pages.audit_page(rows, caller.principal, csrf, people, filters, request.app.state.time_zone))


@router.get("/dead-letters")
async def dead_letters(request: Request, caller: PageCaller) -> HTMLResponse:
    rows = await record_access(request).dead_letters(caller.principal)
    return page(pages.dead_letters_page(rows, caller.principal, caller.session.csrf_token))  # type: ignore[union-attr]


@router.get("/robots.txt")
async def robots() -> PlainTextResponse:
    return PlainTextResponse("User-agent: *\nDisallow: /\n")
