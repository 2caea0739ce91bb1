"""``/workspace/resting``: who rests after a hard call, and a supervisor's or director's End the rest (issue 19)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.projections.adapters import html_pages as pages
from services.projections.entrypoints.auth import PageCaller
from services.projections.entrypoints.person_pages import back, form_of
from services.projections.errors import Refused
from services.projections.rest_commands import RestCommands
from services.runtime.request_ids import FRESH

router = APIRouter(prefix="/workspace", include_in_schema=False)


def commands(request: Request) -> RestCommands:
    return RestCommands(request.app.state.record_access)


@router.get("/resting")
async def resting(request: Request, caller: PageCaller, done: str | None = None, error: str | None = None) -> Response:
    app = commands(request)
    zone = request.app.state.time_zone
    cap, load = await app.after_hours()
    html = pages.render(
        "resting.html",
        title="Resting",
        who=caller.principal,
        csrf=caller.session.csrf_token if caller.session else "",
        active="resting",
        zone=zone,
        zone_label=str(zone),
        rests=await app.resting(),
        may_end=await app.may_end(caller.principal),
        cap=cap,
        load=load,
        done=done,
        error=error,
    )
    return HTMLResponse(html, headers=pages.PAGE_SECURITY_HEADERS)


@router.post("/resting/end")
async def end_rest(request: Request, caller: PageCaller) -> RedirectResponse:
    values = await form_of(request, caller)
    try:
        responder_id, incident_id = UUID(values.get("responder_id", "")), UUID(values.get("incident_id", ""))
    except ValueError:
        return back("/workspace/resting", error="Not recorded: choose a rest from the list")
    try:
        await commands(request).end(caller.principal, responder_id, incident_id, FRESH)
    except Refused as exc:
        return back("/workspace/resting", error=f"Not recorded: {exc}")
    return back("/workspace/resting", done="Recorded: the rest ended; they are paged again like everyone else.")


def install_rest_pages(app: FastAPI) -> None:
    app.include_router(router)
