"""The admin API: roster and on-call schedule commands, each appended as a roster event (202 Accepted).

Roles: ``admin`` may do everything here; a ``responder`` may report their *own* location and availability.
A director reads the roster through the dispatcher's read model, so there is no GET here.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field, ValidationError

from services.intake_gateway.entrypoints.auth import AUTH_RESPONSES, NotAllowed, require_role
from services.intake_gateway.roster_admin import (
    AddOverride,
    Appended,
    Caller,
    ChangeAvailability,
    DefineRotation,
    ImportCalendar,
    InvalidCommand,
    RegisterResponder,
    ReportLocation,
    ResponderDetails,
    RosterAdmin,
)
from services.runtime.credentials import AccessRole, Principal
from services.runtime.problems import PROBLEM_JSON, PROBLEM_RESPONSES, Problem, ProblemDocument

log = logging.getLogger(__name__)
UNSUPPORTED_MEDIA_TYPE = {415: {"model": ProblemDocument, "content": {PROBLEM_JSON: {}}}}
router = APIRouter(responses=PROBLEM_RESPONSES | AUTH_RESPONSES | UNSUPPORTED_MEDIA_TYPE)

admin_only = require_role(AccessRole.ADMIN)
responder_or_admin = require_role(AccessRole.RESPONDER, AccessRole.ADMIN)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="send the same key when retrying: the retry is the same event and is stored once",
    ),
]


class Accepted(BaseModel):
    """The command is on the stream; the dispatcher applies it to the roster it routes with."""

    event_type: str
    event_id: UUID
    id: UUID = Field(description="the responder, rotation, override or calendar the event is about")
    shifts: int | None = Field(default=None, description="calendar imports: how many shifts were expanded")


async def roster_admin(request: Request) -> RosterAdmin:
    return request.app.state.roster_admin


Admin = Annotated[RosterAdmin, Depends(roster_admin)]


async def run(command: Any) -> Accepted:
    """Await a use case; domain refusals become 422 naming the field. A stream outage raises NotRecorded (503)
    or OutcomeUnknown (504), answered by the handlers of ``install_problem_handlers``."""
    try:
        appended: Appended = await command
    except InvalidCommand as exc:
        raise Problem(
            422, f"invalid request: {exc.field}", errors=[{"field": exc.field, "message": exc.message}]
        ) from exc
    return Accepted(
        event_type=appended.event.type, event_id=appended.event.id, id=appended.entity_id, shifts=appended.shifts
    )


def caller(principal: Principal, key: str | None) -> Caller:
    return Caller(subject=principal.subject, idempotency_key=key)


def require_self_or_admin(principal: Principal, responder_id: UUID) -> None:
    if principal.role is AccessRole.RESPONDER and principal.responder_id != responder_id:
        raise NotAllowed("a responder may only report for themselves", principal)


@router.post("/v1/admin/responders", status_code=202, tags=["roster"])
async def register_responder(
    principal: Annotated[Principal, Depends(admin_only)],
    body: RegisterResponder,
    app: Admin,
    key: IdempotencyKey = None,
) -> Accepted:
    """Register a responder (`responder.registered`). The phone is validated and stored as E.164."""
    return await run(app.register_responder(caller(principal, key), body))


@router.put("/v1/admin/responders/{responder_id}", status_code=202, tags=["roster"])
async def update_responder(
    principal: Annotated[Principal, Depends(admin_only)],
    responder_id: UUID,
    body: ResponderDetails,
    app: Admin,
    key: IdempotencyKey = None,
) -> Accepted:
    """Replace a responder's profile (`responder.updated`)."""
    return await run(app.update_responder(caller(principal, key), responder_id, body))


@router.delete("/v1/admin/responders/{responder_id}", status_code=202, tags=["roster"])
async def retire_responder(
    principal: Annotated[Principal, Depends(admin_only)],
    responder_id: UUID,
    app: Admin,
    reason: Annotated[str, Query(min_length=1, max_length=300, description="why (kept on the record)")],
    key: IdempotencyKey = None,
) -> Accepted:
    """Retire a responder (`responder.retired`): never paged again. The history stays on the stream."""
    return await run(app.retire_responder(caller(principal, key), responder_id, reason))


@router.post("/v1/responders/{responder_id}/location", status_code=202, tags=["responders"])
async def report_location(
    principal: Annotated[Principal, Depends(responder_or_admin)],
    responder_id: UUID,
    body: ReportLocation,
    app: Admin,
    key: IdempotencyKey = None,
) -> Accepted:
    """Where a responder is now (`responder.location_reported`, source api). Responders: only themselves."""
    require_self_or_admin(principal, responder_id)
    return await run(app.report_location(caller(principal, key), responder_id, body))


@router.post("/v1/responders/{responder_id}/availability", status_code=202, tags=["responders"])
async def change_availability(
    principal: Annotated[Principal, Depends(responder_or_admin)],
    responder_id: UUID,
    body: ChangeAvailability,
    app: Admin,
    key: IdempotencyKey = None,
) -> Accepted:
    """Available or off (`responder.availability_changed`). Responders: only themselves."""
    require_self_or_admin(principal, responder_id)
    return await run(app.change_availability(caller(principal, key), responder_id, body))


@router.post("/v1/admin/rotations", status_code=202, tags=["schedules"])
async def define_rotation(
    principal: Annotated[Principal, Depends(admin_only)],
    body: DefineRotation,
    app: Admin,
    key: IdempotencyKey = None,
) -> Accepted:
    """Define (or, with an existing rotation_id, redefine) a rotation (`schedule.rotation_defined`)."""
    return await run(app.define_rotation(caller(principal, key), body))


@router.delete("/v1/admin/rotations/{rotation_id}", status_code=202, tags=["schedules"])
async def remove_rotation(
    principal: Annotated[Principal, Depends(admin_only)],
    rotation_id: UUID,
    app: Admin,
    key: IdempotencyKey = None,
) -> Accepted:
    """Remove a rotation (`schedule.rotation_removed`)."""
    return await run(app.remove_rotation(caller(principal, key), rotation_id))


@router.post("/v1/admin/overrides", status_code=202, tags=["schedules"])
async def add_override(
    principal: Annotated[Principal, Depends(admin_only)],
    body: AddOverride,
    app: Admin,
    key: IdempotencyKey = None,
) -> Accepted:
    """Put a responder on call for a window (`schedule.override_added`). Times need an offset."""
    return await run(app.add_override(caller(principal, key), body))


@router.delete("/v1/admin/overrides/{override_id}", status_code=202, tags=["schedules"])
async def remove_override(
    principal: Annotated[Principal, Depends(admin_only)],
    override_id: UUID,
    app: Admin,
    key: IdempotencyKey = None,
) -> Accepted:
    """Remove an override (`schedule.override_removed`)."""
    return await run(app.remove_override(caller(principal, key), override_id))


_CALENDAR_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": ImportCalendar.model_json_schema(ref_template="#/components/schemas/{model}")
            },
            "text/calendar": {"schema": {"type": "string"}},
        },
    }
}


@router.post("/v1/admin/calendars", status_code=202, tags=["schedules"], openapi_extra=_CALENDAR_BODY)
async def import_calendar(
    principal: Annotated[Principal, Depends(admin_only)],
    request: Request,
    app: Admin,
    key: IdempotencyKey = None,
    name: Annotated[str | None, Query(max_length=100, description="text/calendar bodies: the calendar's name")] = None,
    zones: Annotated[str | None, Query(description="text/calendar bodies: zones, comma separated")] = None,
    time_zone: Annotated[str | None, Query(description="text/calendar bodies: zone of floating times")] = None,
    calendar_id: Annotated[UUID | None, Query(description="text/calendar bodies: calendar id")] = None,
) -> Accepted:
    """Import an iCalendar feed as concrete shifts (`schedule.calendar_imported`).

    Send the .ics as `text/calendar` (name and zones in the query) or as JSON (`ImportCalendar`, which can
    also map ATTENDEE emails/phones or SUMMARY names to responder ids). Recurring events are expanded over
    the configured horizon.
    """
    command = await calendar_command(request, name=name, zones=zones, time_zone=time_zone, calendar_id=calendar_id)
    return await run(app.import_calendar(caller(principal, key), command))


async def calendar_command(request: Request, **query: Any) -> ImportCalendar:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    try:
        if content_type == "text/calendar":
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Problem(
                    422, "invalid request: body is not UTF-8 text", errors=[_error("body", "not UTF-8")]
                ) from exc
            zones = [z.strip() for z in (query.pop("zones") or "").split(",") if z.strip()]
            fields = {k: v for k, v in query.items() if v is not None}
            return ImportCalendar(ics=text, zones=zones, **fields)
        if content_type in ("application/json", ""):
            return ImportCalendar.model_validate_json(raw or b"null")
    except ValidationError as exc:
        errors = [_error(_field(content_type, e["loc"]), e["msg"]) for e in exc.errors()]
        raise Problem(422, f"invalid request: {', '.join(e['field'] for e in errors)}", errors=errors) from exc
    raise Problem(415, "send the calendar as text/calendar or application/json")


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _field(content_type: str, loc: tuple) -> str:
    """Where the bad value was: in the JSON body, or (text/calendar) in the query or the body itself."""
    if content_type != "text/calendar":
        return ".".join(["body", *(str(p) for p in loc)])
    return "body" if loc[:1] == ("ics",) else ".".join(["query", *(str(p) for p in loc)])
