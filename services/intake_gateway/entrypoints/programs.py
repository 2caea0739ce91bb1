"""The treatment-program directory's admin API: programs registered, updated, retired, imported from a CSV, and
their availability reported; each appended as a program event (202 Accepted).

Admin role only (the credential store has no per-program credential; a program reports its own availability
through its signed link, served by the projections). Each route answers through ``Requester.answer_once``: a
retry with the same Idempotency-Key gets the first answer and appends nothing. Reads are the projections'
``GET /v1/programs``.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from services.intake_gateway.entrypoints.auth import AUTH_RESPONSES, require_role
from services.intake_gateway.entrypoints.idempotency import Answer, Requester, requester
from services.intake_gateway.program_commands import (
    Appended,
    ProgramCommands,
    ProgramDetails,
    RegisterProgram,
    ReportAvailability,
)
from services.runtime.credentials import AccessRole
from services.runtime.problems import PROBLEM_JSON, PROBLEM_RESPONSES, Problem, ProblemDocument
from services.runtime.request_ids import RequestIds

router = APIRouter(
    responses=PROBLEM_RESPONSES | AUTH_RESPONSES | {415: {"model": ProblemDocument, "content": {PROBLEM_JSON: {}}}},
    tags=["programs"],
)

AdminRequester = Annotated[Requester, Depends(requester(require_role(AccessRole.ADMIN)))]


class ProgramAccepted(BaseModel):
    """The command is on the stream; the projections add it to the directory."""

    event_type: str
    event_id: UUID
    id: UUID = Field(description="the program the event is about")


class ImportAccepted(BaseModel):
    """Every row is on the stream as ``program.registered``."""

    imported: int
    program_ids: list[UUID]
    ignored_codes: dict[str, list[int]] = Field(
        description="service codes the directory does not map, each with the CSV lines it was on"
    )


async def program_commands(request: Request) -> ProgramCommands:
    return request.app.state.program_commands


Programs = Annotated[ProgramCommands, Depends(program_commands)]


async def _accepted(requester: Requester, body: BaseModel | dict[str, Any], run: Any) -> Response:
    async def append(ids: RequestIds) -> Answer:
        appended: Appended = await run(ids)
        what = ProgramAccepted(event_type=appended.event.type, event_id=appended.event.id, id=appended.entity_id)
        return Answer(202, what.model_dump(mode="json"))

    return await requester.answer_once(body, append)


@router.post("/v1/admin/programs", status_code=202, response_model=ProgramAccepted)
async def register_program(requester: AdminRequester, body: RegisterProgram, app: Programs) -> Response:
    """Add a treatment program to the directory (`program.registered`). The intake phone is stored as E.164."""
    return await _accepted(requester, body, lambda ids: app.register_program(body, ids))


@router.put("/v1/admin/programs/{program_id}", status_code=202, response_model=ProgramAccepted)
async def update_program(requester: AdminRequester, program_id: UUID, body: ProgramDetails, app: Programs) -> Response:
    """Replace a program's whole profile (`program.updated`)."""
    return await _accepted(requester, body, lambda ids: app.update_program(program_id, body, ids))


@router.delete("/v1/admin/programs/{program_id}", status_code=202, response_model=ProgramAccepted)
async def retire_program(
    requester: AdminRequester,
    program_id: UUID,
    app: Programs,
    reason: Annotated[str, Query(min_length=1, max_length=300, description="why (kept on the record)")],
) -> Response:
    """Retire a program (`program.retired`): no longer listed. Its history stays on the stream."""
    return await _accepted(requester, {"reason": reason}, lambda ids: app.retire_program(program_id, reason, ids))


@router.post("/v1/programs/{program_id}/availability", status_code=202, response_model=ProgramAccepted)
async def report_availability(
    requester: AdminRequester, program_id: UUID, body: ReportAvailability, app: Programs
) -> Response:
    """Beds open and/or the next intake slot, as of a time (`program.availability_reported`, channel api).
    Shown as open only while younger than the directory's maximum age."""
    subject = requester.principal.subject
    return await _accepted(requester, body, lambda ids: app.report_availability(program_id, body, subject, ids))


_CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}}


@router.post("/v1/admin/programs/import", status_code=202, response_model=ImportAccepted, openapi_extra=_CSV_BODY)
async def import_programs(requester: AdminRequester, request: Request, app: Programs) -> Response:
    """Import programs from a CSV (FindTreatment.gov columns and service codes; see the README's mapping table).

    All or nothing: a bad row refuses the file (422, naming its line) and records nothing. Unknown service codes
    are ignored and listed in the answer. Each row is a `program.registered` (an existing id is replaced)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "text/csv":
        raise Problem(415, "send the programs as text/csv")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(422, "invalid request: the CSV is not UTF-8 text") from exc

    async def append(ids: RequestIds) -> Answer:
        imported = await app.import_csv(text, ids)
        what = ImportAccepted(
            imported=len(imported.events), program_ids=imported.program_ids, ignored_codes=imported.ignored_codes
        )
        return Answer(202, what.model_dump(mode="json"))

    return await requester.answer_once({"csv": text}, append)
