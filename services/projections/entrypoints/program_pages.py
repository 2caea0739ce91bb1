"""The treatment-program directory on the projections service: ``GET /v1/programs`` (JSON), the workspace page
``/workspace/programs``, a program's reporting link (``POST /v1/programs/{id}/report-link``, admin or director),
and the page that link opens, ``/p/<token>``, where the program reports beds open or its next intake slot
(``program.availability_reported``, channel ``link``).

Staff roles read the directory (director, responder, admin); intake credentials do not. What a page or the JSON
says of availability is the staleness rule's (domain/directory.py): a report older than the maximum age is
"unconfirmed (as of ...)", never open.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.contract.events import (
    LevelOfCare,
    Medication,
    Payer,
    Population,
    ProgramAvailabilityReported,
    ProgramAvailabilityReportedData,
    new_event,
)
from services.projections.adapters import html_pages as pages
from services.projections.directory import DirectorySettings, ProgramDirectory, listings_json
from services.projections.domain.directory import DirectoryFilter, availability_words
from services.projections.entrypoints.auth import ApiCaller, Caller, PageCaller
from services.projections.entrypoints.form_values import InvalidFormValue, form_time
from services.projections.program_links import PROGRAM_LINK_PATH, ProgramLinks
from services.runtime.form_csrf import FIELD, FormTokenCookie
from services.runtime.problems import Problem
from services.runtime.stream import STREAM_NAME, NotRecorded, OutcomeUnknown

log = logging.getLogger(__name__)
router = APIRouter()
STAFF_ROLES = frozenset({"director", "responder", "admin"})
LINK_ISSUER_ROLES = frozenset({"director", "admin"})
REPORT_FORM = FormTokenCookie("crisis_program_report", path="/p", max_age=3600)
PRODUCER = "projections"
VOCABULARIES: dict[str, frozenset[str]] = {
    "level": frozenset(v.value for v in LevelOfCare),
    "medication": frozenset(v.value for v in Medication),
    "payer": frozenset(v.value for v in Payer),
    "population": frozenset(v.value for v in Population),
    "language": frozenset(),  # any code: a language no program lists matches none
}


def install_program_directory(app: FastAPI, settings: Any) -> None:
    """The routes, the staleness rule and the program links (signed with the responder links' key: install after
    ``install_responder_page``)."""
    directory_settings = DirectorySettings()
    app.state.staleness_rule = directory_settings.staleness_rule()
    app.state.program_links = ProgramLinks(
        app.state.responder_links.key,
        lifetime=timedelta(days=directory_settings.program_link_days),
        base_url=directory_settings.workspace_public_url,
    )
    app.include_router(router)


def directory(request: Request) -> ProgramDirectory:
    state = request.app.state
    return ProgramDirectory(state.read_models.directory, state.clock, state.staleness_rule)


def require_staff(caller: Caller) -> None:
    if caller.principal.role.value not in STAFF_ROLES:
        raise Problem(403, "the program directory is for staff (director, responder, admin)")


def chosen_filter(values: dict[str, str | None], *, problem: bool) -> DirectoryFilter:
    """The filter from query values; an unknown value is a 422 (a problem on the API, a page in the workspace)."""
    chosen: dict[str, str] = {}
    for name, allowed in VOCABULARIES.items():
        value = (values.get(name) or "").strip()
        if not value:
            continue
        if allowed and value not in allowed:
            message = f"not one of {', '.join(sorted(allowed))}"
            if problem:
                raise Problem(
                    422, f"invalid request: query.{name}", errors=[{"field": f"query.{name}", "message": message}]
                )
            raise InvalidFormValue(name, message)
        chosen[name] = value.lower() if name == "language" else value
    return DirectoryFilter(**chosen)


Filter = Annotated[str | None, Query(max_length=40)]


@router.get("/v1/programs", tags=["programs"])
async def list_programs(
    request: Request,
    caller: ApiCaller,
    level: Filter = None,
    medication: Filter = None,
    payer: Filter = None,
    population: Filter = None,
    language: Filter = None,
) -> JSONResponse:
    """The treatment programs, each with its availability as the staleness rule says it now (`state`: open,
    intake_slot, full, unconfirmed, not_reported; `offered_as_open` is never true for a stale report). Filters:
    level (ASAM, e.g. 2.1, 3.7-WM, OTP), medication, payer, population, language (ISO 639)."""
    require_staff(caller)
    wanted = chosen_filter(
        {"level": level, "medication": medication, "payer": payer, "population": population, "language": language},
        problem=True,
    )
    listings = await asyncio.to_thread(directory(request).listings, wanted)
    return JSONResponse({"filter": wanted.said(), "programs": listings_json(listings)})


@router.post("/v1/programs/{program_id}/report-link", tags=["programs"])
async def issue_report_link(request: Request, caller: ApiCaller, program_id: UUID) -> JSONResponse:
    """A signed link the program reports its availability with (give it to the program's intake desk)."""
    if caller.principal.role.value not in LINK_ISSUER_ROLES:
        raise Problem(403, "only an admin or a director may issue a program's link")
    listing = await asyncio.to_thread(directory(request).listing, str(program_id))
    if listing is None or listing.entry.retired:
        raise Problem(404, "no such program in the directory")
    links: ProgramLinks = request.app.state.program_links
    url, expires_at = links.url(program_id, request.app.state.clock.now())
    if url.startswith(PROGRAM_LINK_PATH):
        url = str(request.base_url).rstrip("/") + url
    return JSONResponse({"url": url, "expires_at": expires_at.isoformat()})


# ---- the workspace page -----------------------------------------------------------------------------------------


@router.get("/workspace/programs", include_in_schema=False)
async def programs_page(request: Request, caller: PageCaller) -> HTMLResponse:
    require_staff(caller)
    values = {name: request.query_params.get(name) for name in VOCABULARIES}
    wanted = chosen_filter(values, problem=False)
    listings = await asyncio.to_thread(directory(request).listings, wanted)
    now, zone = request.app.state.clock.now(), request.app.state.time_zone
    rows = [
        {
            "entry": item.entry,
            "state": item.availability.state,
            "words": availability_words(item.availability, now, zone),
        }
        for item in listings
    ]
    html = pages.render(
        "programs.html",
        title="Treatment programs",
        who=caller.principal,
        csrf=caller.session.csrf_token if caller.session else "",
        active="programs",
        rows=rows,
        said=wanted.said(),
        values={k: v or "" for k, v in values.items()},
        options={name: sorted(allowed) for name, allowed in VOCABULARIES.items() if allowed},
    )
    return HTMLResponse(html, headers=pages.PAGE_SECURITY_HEADERS)


# ---- the program's own reporting page -----------------------------------------------------------------------------


def _report_page(request: Request, token: str, status: int = 200, **context: Any) -> HTMLResponse:
    csrf = REPORT_FORM.token_for(request)
    shown = {"invalid": None, "error": None, "saved": False, "typed": {}, "name": "", "words": "", "action": ""}
    html = pages.render("program_report.html", title="Report availability", who=None, csrf=csrf, **shown | context)
    response = HTMLResponse(html, status_code=status, headers=pages.PAGE_SECURITY_HEADERS)
    REPORT_FORM.set_on(response, csrf)
    return response


def _linked_program(request: Request, token: str) -> UUID | None:
    links: ProgramLinks = request.app.state.program_links
    return links.program(token, request.app.state.clock.now())


_NOT_VALID = "This link is not valid or has expired. Ask the crisis team for a new one."


@router.get(PROGRAM_LINK_PATH + "{token}", include_in_schema=False)
async def report_form(request: Request, token: str, saved: str | None = None) -> HTMLResponse:
    program_id = _linked_program(request, token)
    listing = await asyncio.to_thread(directory(request).listing, str(program_id)) if program_id else None
    if listing is None or listing.entry.retired:
        return _report_page(request, token, 404, invalid=_NOT_VALID)
    now, zone = request.app.state.clock.now(), request.app.state.time_zone
    return _report_page(
        request,
        token,
        name=listing.entry.profile["name"],
        words=availability_words(listing.availability, now, zone),
        saved=saved == "1",
        action=f"{PROGRAM_LINK_PATH}{token}",
    )


@router.post(PROGRAM_LINK_PATH + "{token}", include_in_schema=False)
async def report_availability(request: Request, token: str) -> Response:
    program_id = _linked_program(request, token)
    listing = await asyncio.to_thread(directory(request).listing, str(program_id)) if program_id else None
    if program_id is None or listing is None or listing.entry.retired:
        return _report_page(request, token, 404, invalid=_NOT_VALID)
    form = {k: str(v) for k, v in (await request.form()).items()}
    now, zone = request.app.state.clock.now(), request.app.state.time_zone
    shown = {
        "name": listing.entry.profile["name"],
        "words": availability_words(listing.availability, now, zone),
        "action": f"{PROGRAM_LINK_PATH}{token}",
        "typed": form,
    }
    if not REPORT_FORM.accepts(request, form.get(FIELD)):
        return _report_page(request, token, 403, error="The form expired; please send it again.", **shown)
    try:
        data = _report(program_id, form, now, zone)
    except InvalidFormValue as exc:
        return _report_page(request, token, 422, error=f"{exc.field}: {exc.message}", **shown)
    event = new_event(
        ProgramAvailabilityReported,
        data,
        event_id=uuid4(),
        occurred_at=now,
        producer=PRODUCER,
    )
    try:
        sequence = await request.app.state.record_access.publish(event)
    except (NotRecorded, OutcomeUnknown):
        return _report_page(request, token, 503, error="Not saved: the system did not answer. Try again.", **shown)
    try:
        await asyncio.to_thread(request.app.state.read_models.store.wait, STREAM_NAME, sequence, 5.0)
    except Exception:  # on the stream: the directory shows it when it catches up
        log.warning("the directory did not reach %s within 5 s", sequence)
    return RedirectResponse(f"{PROGRAM_LINK_PATH}{token}?saved=1", status_code=303)


def _report(program_id: UUID, form: dict[str, str], now: datetime, zone: tzinfo) -> ProgramAvailabilityReportedData:
    """The report the form describes, as of ``now``; InvalidFormValue naming the field it cannot use."""
    beds_text = form.get("beds_open", "").strip()
    full = form.get("full") == "1"
    beds = 0 if full else None
    if beds_text and not full:
        if not re.fullmatch(r"[0-9]{1,5}", beds_text) or int(beds_text) > 10000:
            raise InvalidFormValue("beds open", "a whole number from 0")
        beds = int(beds_text)
    next_intake = form_time(form.get("next_intake_at", "").strip(), "next intake", zone)
    if next_intake is not None and next_intake <= now:
        raise InvalidFormValue("next intake", "must be in the future")
    if beds is None and next_intake is None:
        raise InvalidFormValue("beds open", "give the beds open, the next intake slot, or press Full")
    return ProgramAvailabilityReportedData(
        program_id=program_id,
        beds_open=beds,
        next_intake_at=next_intake.astimezone(UTC) if next_intake else None,
        as_of=now,
        reported_by="program link",
        channel="link",
    )
