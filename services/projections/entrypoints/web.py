"""The director workspace: server-rendered pages under /workspace, signed in with a session cookie.

Each handler reads the form or query, calls ``ClinicalRecordAccess`` and renders a page, or redirects after a change
(post/redirect/get) with a short message. Nothing is loaded from outside this service.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from services.contract.events import DocumentationFields
from services.projections.adapters import html_pages as pages
from services.projections.adapters.change_feed import ChangeFeed
from services.projections.adapters.session_cookies import COOKIE_NAME, WorkspaceSessions
from services.projections.application import ClinicalRecordAccess, Refused, responders_able
from services.projections.domain.access import READER_ROLES
from services.projections.entrypoints.auth import Caller, PageCaller, session_of
from services.runtime.credentials import CredentialStore, token_digest
from services.runtime.form_csrf import FIELD, FormTokenCookie
from services.runtime.input_times import naive_as_utc, within_input_range

router = APIRouter(prefix="/workspace", include_in_schema=False)
SIGN_IN_FORM = FormTokenCookie("crisis_sign_in", path="/workspace", max_age=900)
SSE_LIFETIME_SECONDS = 300.0
SSE_KEEPALIVE_SECONDS = 10.0

PAST_TENSE = {"assign": "assigned", "complete": "completed", "reschedule": "rescheduled"}


def record_access(request: Request) -> ClinicalRecordAccess:
    return request.app.state.record_access


def page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=pages.PAGE_SECURITY_HEADERS)


def back(path: str, **params: str) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v})
    return RedirectResponse(f"{path}?{query}" if query else path, status_code=303)


class InvalidFormValue(Exception):
    """A form or query value the workspace cannot use: answered 422 with a page naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def utc_local(text: str | None) -> datetime | None:
    """A datetime-local value (no zone) read as UTC; None when empty. ValueError when it is not a time, or not
    within the years every service accepts (``services.runtime.input_times``)."""
    if not text:
        return None
    return within_input_range(naive_as_utc(datetime.fromisoformat(text)))


def form_time(text: str | None, field: str) -> datetime | None:
    """``utc_local(text)``; InvalidFormValue naming ``field`` when the text is unusable."""
    try:
        return utc_local(text)
    except ValueError as exc:
        raise InvalidFormValue(field, str(exc)) from None


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


@router.get("/")
async def board(request: Request, caller: PageCaller, status: str = "open") -> HTMLResponse:
    position = request.app.state.changes.position  # read first: any later change is announced after it
    rows = await record_access(request).board(caller.principal, _status(status))
    html = pages.board_page(rows, caller.principal, caller.session.csrf_token, status, position)  # type: ignore[union-attr]
    return page(html)


@router.get("/board/rows")
async def board_rows(request: Request, caller: PageCaller, status: str = "open") -> HTMLResponse:
    rows = await record_access(request).board(caller.principal, _status(status))
    return page(pages.board_rows(rows))


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
    moment = form_time(as_of, "as_of")
    view = await record_access(request).timeline(caller.principal, incident_id, moment)
    as_of_text = moment.strftime("%Y-%m-%dT%H:%M:%S") if moment else ""
    return page(pages.timeline_page(view, caller.principal, caller.session.csrf_token, as_of_text))  # type: ignore[union-attr]


@router.get("/incidents/{incident_id}/documentation")
async def documentation(
    request: Request, incident_id: UUID, caller: PageCaller, done: str | None = None, error: str | None = None
) -> HTMLResponse:
    doc, progress = await record_access(request).documentation(caller.principal, incident_id)
    view = {"short_code": progress.short_code, "kind": progress.kind}
    html = pages.documentation_page(doc, view, caller.principal, caller.session.csrf_token, done, error)  # type: ignore[union-attr]
    return page(html)


def documentation_fields(values: dict[str, str]) -> DocumentationFields:
    """The non-empty form fields as a DocumentationFields (ValidationError/ValueError when a value is wrong)."""
    fields: dict[str, Any] = {}
    for name in (
        "disposition",
        "ems_agency",
        "handoff_organisation",
        "handoff_receiving_person",
        "supervisor_name",
        "language",
        "follow_up_plan",
        "notes",
    ):
        if values.get(name, "").strip():
            fields[name] = values[name].strip()
    if values.get("documentation_minutes", "").strip():
        fields["documentation_minutes"] = int(values["documentation_minutes"])
    if values.get("interpreter_used") in ("true", "false"):
        fields["interpreter_used"] = values["interpreter_used"] == "true"
    for name in ("acknowledged_at", "en_route_at", "on_scene_at", "handed_off_at", "cleared_at"):
        if moment := form_time(values.get(name), name):
            fields[name] = moment
    plan = {
        k.removeprefix("safety_plan."): v.strip()
        for k, v in values.items()
        if k.startswith("safety_plan.") and v.strip()
    }
    if plan:
        fields["safety_plan"] = plan
    if values.get("dose.given_at") and values.get("dose.product", "").strip():
        dose: dict[str, Any] = {
            "given_at": form_time(values["dose.given_at"], "dose.given_at"),
            "product": values["dose.product"].strip(),
            "route": values.get("dose.route") or "intranasal",
            "given_by_role": values.get("dose.given_by_role", "").strip() or "unknown",
        }
        if values.get("dose.dose_mg"):
            dose["dose_mg"] = float(values["dose.dose_mg"])
        if values.get("dose.response"):
            dose["response"] = values["dose.response"]
        fields["naloxone_doses"] = [dose]
    return DocumentationFields.model_validate(fields)


@router.post("/incidents/{incident_id}/documentation/fields")
async def complete_fields(request: Request, incident_id: UUID, caller: PageCaller) -> Response:
    values = await form_of(request, caller)
    path = f"/workspace/incidents/{incident_id}/documentation"
    try:
        fields = documentation_fields(values)
    except (ValidationError, ValueError) as exc:
        return back(path, error=f"Not saved: {exc}"[:300])
    if not fields.model_fields_set:
        return back(path, error="Nothing to save: every field was empty.")
    await record_access(request).complete_fields(caller.principal, incident_id, fields)
    return back(path, done="Saved.")


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
    decision = "returned" if values.get("decision") == "returned" else "approved"
    try:
        await record_access(request).sign_off(caller.principal, incident_id, decision, values.get("comment") or None)
    except Refused as exc:
        return back(path, error=f"Not signed off: {exc}"[:300])
    return back(path, done="Signed off." if decision == "approved" else "Returned for changes.")


# ---- follow-up tasks ------------------------------------------------------------------------------------------------


@router.get("/tasks")
async def tasks(
    request: Request, caller: PageCaller, show: str = "", done: str | None = None, error: str | None = None
) -> HTMLResponse:
    director = caller.principal.role.value == "director"
    scope = show if show in ("mine", "all") else ("all" if director else "mine")
    app = record_access(request)
    rows = await app.tasks(caller.principal, mine=scope == "mine")
    candidates: dict[str, list[tuple[UUID, str]]] = {}
    if director:
        staff = await asyncio.to_thread(app.staff)
        for row in rows:
            candidates[row["task_id"]] = [(rid, info.name) for rid, info in responders_able(staff, row["owner_role"])]
    html = pages.tasks_page(rows, caller.principal, caller.session.csrf_token, candidates, done, error, scope)  # type: ignore[union-attr]
    return page(html)


@router.post("/tasks/{task_id}/{action}")
async def change_task(request: Request, task_id: UUID, action: str, caller: PageCaller) -> Response:
    values = await form_of(request, caller)
    app = record_access(request)
    try:
        if action == "assign":
            await app.assign_task(caller.principal, task_id, UUID(values.get("assignee_id", "")))
        elif action == "complete":
            note = values.get("note", "").strip() or None
            await app.complete_task(caller.principal, task_id, values.get("outcome", "other"), note)  # type: ignore[arg-type]
        elif action == "reschedule":
            due = form_time(values.get("due_at"), "due_at")
            if due is None:
                raise ValueError("a new due time is required")
            await app.reschedule_task(caller.principal, task_id, due, values.get("reason", "").strip() or "rescheduled")
        else:
            return page(pages.error_page(404, "no such action", caller.principal, None), 404)
    except (Refused, ValueError, ValidationError) as exc:
        return back("/workspace/tasks", error=f"Not {PAST_TENSE[action]}: {exc}"[:300])
    return back("/workspace/tasks", done=f"Task {PAST_TENSE[action]}.")


# ---- metrics and audit ---------------------------------------------------------------------------------------------


def _day(text: str, name: str) -> datetime | None:
    """The start (UTC) of the day ``text`` names; None when empty; InvalidFormValue when it is unusable."""
    if not text:
        return None
    try:
        return within_input_range(datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC))
    except ValueError as exc:
        raise InvalidFormValue(name, str(exc)) from None


@router.get("/metrics")
async def metrics(request: Request, caller: PageCaller, since: str = "", until: str = "") -> HTMLResponse:
    figures = await record_access(request).metrics(caller.principal, _day(since, "since"), _day(until, "until"))
    return page(pages.metrics_page(figures, caller.principal, caller.session.csrf_token, since, until))  # type: ignore[union-attr]


@router.get("/audit")
async def audit(request: Request, caller: PageCaller, subject: str = "", record_id: str = "") -> HTMLResponse:
    rows = await record_access(request).audit_trail(
        caller.principal, subject=subject or None, record_id=record_id or None, limit=1000
    )
    return page(pages.audit_page(rows, caller.principal, caller.session.csrf_token, subject, record_id))  # type: ignore[union-attr]


@router.get("/dead-letters")
async def dead_letters(request: Request, caller: PageCaller) -> HTMLResponse:
    rows = await record_access(request).dead_letters(caller.principal)
    return page(pages.dead_letters_page(rows, caller.principal, caller.session.csrf_token))  # type: ignore[union-attr]


@router.get("/robots.txt")
async def robots() -> PlainTextResponse:
    return PlainTextResponse("User-agent: *\nDisallow: /\n")
