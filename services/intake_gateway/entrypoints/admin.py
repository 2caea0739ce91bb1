"""The admin API: roster and on-call schedule commands, each appended as a roster event (202 Accepted).

Roles: ``admin`` may do everything here; a ``responder`` may report their *own* location and availability.
A director reads the roster through the dispatcher's read model, so there is no GET here. Each route answers
through ``Requester.answer_once`` (``idempotency.py``): a retry with the same Idempotency-Key gets the first
answer, however late, and appends nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from services.intake_gateway.entrypoints.auth import AUTH_RESPONSES, NotAllowed, require_role
from services.intake_gateway.entrypoints.idempotency import Answer, Requester, requester
from services.intake_gateway.roster_commands import (
    AddOverride,
    Appended,
    ChangeAvailability,
    DefineRotation,
    ImportCalendar,
    RegisterResponder,
    ReportLocation,
    ResponderDetails,
    RosterCommands,
)
from services.runtime.credentials import AccessRole
from services.runtime.problems import PROBLEM_JSON, PROBLEM_RESPONSES, Problem, ProblemDocument
from services.runtime.request_ids import RequestIds

UNSUPPORTED_MEDIA_TYPE = {415: {"model": ProblemDocument, "content": {PROBLEM_JSON: {}}}}
router = APIRouter(responses=PROBLEM_RESPONSES | AUTH_RESPONSES | UNSUPPORTED_MEDIA_TYPE)

AdminRequester = Annotated[Requester, Depends(requester(require_role(AccessRole.ADMIN)))]
ResponderOrAdmin = Annotated[Requester, Depends(requester(require_role(AccessRole.RESPONDER, AccessRole.ADMIN)))]


class Accepted(BaseModel):
    """The command is on the stream; the dispatcher applies it to the roster it routes with."""

    event_type: str
    event_id: UUID
    id: UUID = Field(description="the responder, rotation, override or calendar the event is about")
    shifts: int | None = Field(default=None, description="calendar imports: how many shifts were expanded")


async def roster_commands(request: Request) -> RosterCommands:
    return request.app.state.roster_commands


Roster = Annotated[RosterCommands, Depends(roster_commands)]


async def accepted(
    requester: Requester, body: BaseModel | dict[str, Any], command: Callable[[RequestIds], Awaitable[Appended]]
) -> Response:
    """Run a roster command once per Idempotency-Key and answer 202 with what it appended."""

    async def append(ids: RequestIds) -> Answer:
        appended = await command(ids)
        what = Accepted(
            event_type=appended.event.type, event_id=appended.event.id, id=appended.entity_id, shifts=appended.shifts
        )
        return Answer(202, what.model_dump(mode="json"))

    return await requester.answer_once(body, append)


def require_self_or_admin(requester: Requester, responder_id: UUID) -> None:
    principal = requester.principal
    if principal.role is AccessRole.RESPONDER and principal.responder_id != responder_id:
        raise NotAllowed("a responder may only report for themselves", principal)


@router.post("/v1/admin/responders", status_code=202, response_model=Accepted, tags=["roster"])
async def register_responder(requester: AdminRequester, body: RegisterResponder, app: Roster) -> Response:
    """Register a responder (`responder.registered`). The phone is validated and stored as E.164."""
    return await accepted(requester, body, lambda ids: app.register_responder(body, ids))


@router.put("/v1/admin/responders/{responder_id}", status_code=202, response_model=Accepted, tags=["roster"])
async def update_responder(
    requester: AdminRequester, responder_id: UUID, body: ResponderDetails, app: Roster
) -> Response:
    """Replace a responder's profile (`responder.updated`)."""
    return await accepted(requester, body, lambda ids: app.update_responder(responder_id, body, ids))


@router.delete("/v1/admin/responders/{responder_id}", status_code=202, response_model=Accepted, tags=["roster"])
async def retire_responder(
    requester: AdminRequester,
    responder_id: UUID,
    app: Roster,
    reason: Annotated[str, Query(min_length=1, max_length=300, description="why (kept on the record)")],
) -> Response:
    """Retire a responder (`responder.retired`): never paged again. The history stays on the stream."""
    return await accepted(requester, {"reason": reason}, lambda ids: app.retire_responder(responder_id, reason, ids))


@router.post("/v1/responders/{responder_id}/location", status_code=202, response_model=Accepted, tags=["responders"])
async def report_location(
    requester: ResponderOrAdmin, responder_id: UUID, body: ReportLocation, app: Roster
) -> Response:
    """Where a responder is now (`responder.location_reported`, source api). Responders: only themselves."""
    require_self_or_admin(requester, responder_id)
    return await accepted(requester, body, lambda ids: app.report_location(responder_id, body, ids))


@router.post(
    "/v1/responders/{responder_id}/availability", status_code=202, response_model=Accepted, tags=["responders"]
)
async def change_availability(
    requester: ResponderOrAdmin, responder_id: UUID, body: ChangeAvailability, app: Roster
) -> Response:
    """Available or off (`responder.availability_changed`). Responders: only themselves."""
    require_self_or_admin(requester, responder_id)
    return await accepted(requester, body, lambda ids: app.change_availability(responder_id, body, ids))


@router.post("/v1/admin/rotations", status_code=202, response_model=Accepted, tags=["schedules"])
async def define_rotation(requester: AdminRequester, body: DefineRotation, app: Roster) -> Response:
    """Define (or, with an existing rotation_id, redefine) a rotation (`schedule.rotation_defined`)."""
    return await accepted(requester, body, lambda ids: app.define_rotation(body, ids))


@router.delete("/v1/admin/rotations/{rotation_id}", status_code=202, response_model=Accepted, tags=["schedules"])
async def remove_rotation(requester: AdminRequester, rotation_id: UUID, app: Roster) -> Response:
    """Remove a rotation (`schedule.rotation_removed`)."""
    return await accepted(requester, {}, lambda ids: app.remove_rotation(rotation_id, ids))


@router.post("/v1/admin/overrides", status_code=202, response_model=Accepted, tags=["schedules"])
async def add_override(requester: AdminRequester, body: AddOverride, app: Roster) -> Response:
    """Put a responder on call for a window (`schedule.override_added`). Times need an offset."""
    return await accepted(requester, body, lambda ids: app.add_override(body, ids))


@router.delete("/v1/admin/overrides/{override_id}", status_code=202, response_model=Accepted, tags=["schedules"])
async def remove_override(requester: AdminRequester, override_id: UUID, app: Roster) -> Response:
    """Remove an override (`schedule.override_removed`)."""
    return await accepted(requester, {}, lambda ids: app.remove_override(override_id, ids))


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


@router.post(
    "/v1/admin/calendars", status_code=202, response_model=Accepted, tags=["schedules"], openapi_extra=_CALENDAR_BODY
)
async def import_calendar(
    requester: AdminRequester,
    request: Request,
    app: Roster,
    name: Annotated[str | None, Query(max_length=100, description="text/calendar bodies: the calendar's name")] = None,
    zones: Annotated[str | None, Query(description="text/calendar bodies: zones, comma separated")] = None,
    time_zone: Annotated[str | None, Query(description="text/calendar bodies: zone of floating times")] = None,
    calendar_id: Annotated[UUID | None, Query(description="text/calendar bodies: calendar id")] = None,
) -> Response:
    """Import an iCalendar feed as concrete shifts (`schedule.calendar_imported`).

    Send the .ics as `text/calendar` (name and zones in the query) or as JSON (`ImportCalendar`, which can
    also map ATTENDEE emails/phones or SUMMARY names to responder ids). Recurring events are expanded over
    the configured horizon.
    """
    command = await calendar_command(request, name=name, zones=zones, time_zone=time_zone, calendar_id=calendar_id)
    return await accepted(requester, command, lambda ids: app.import_calendar(command, ids))


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
