"""The projections' JSON API: timelines, documentation and its exports, follow-up tasks, metrics, audit log.

Every route but /healthz, /asyncapi.json and the ops routes (/livez, /readyz, /metrics: from
``services.runtime.observability``, included by bootstrap) needs a bearer token or a workspace session. Each
handler parses, calls ``ClinicalRecordAccess`` and maps the answer; errors become problem documents (see bootstrap).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.contract.events import DocumentationFields, FollowUpOutcome, NaloxoneDoseRecord, Part2Disclosure
from services.contract.outreach import OutreachChannel, OutreachOffer, SeriesOutcome, attempt_problem
from services.contract.schemagen import asyncapi_document
from services.projections.adapters.html_pages import PRINT_SECURITY_HEADERS, print_documentation
from services.projections.adapters.outcome_csv import FigureName, outcome_csv
from services.projections.adapters.pdf_report import documentation_pdf
from services.projections.application import ClinicalRecordAccess, TaskScope
from services.projections.entrypoints.auth import ApiCaller, Caller
from services.projections.entrypoints.person_pages import person_commands
from services.projections.entrypoints.requester import Change, answer_command
from services.runtime.idempotency import IdempotencyKey
from services.runtime.input_times import InputDatetime, QueryDatetime
from services.runtime.nats_connection import is_connected
from services.runtime.problems import PROBLEM_RESPONSES

router = APIRouter()
AUTH = {**PROBLEM_RESPONSES, 401: PROBLEM_RESPONSES[403]}
Handler = TypeVar("Handler", bound=Callable[..., Any])


def record_access(request: Request) -> ClinicalRecordAccess:
    return request.app.state.record_access


class TimelineEntry(BaseModel):
    occurred_at: datetime
    recorded_at: datetime | None = Field(description="when the stream stored it; None for computed marks")
    type: str
    actor: str
    channel: str
    summary: str
    event_id: UUID | None
    stream_sequence: int | None
    sla_breach: bool = Field(description="a computed mark: the on-scene target passed")
    details: dict[str, Any]
    time_local: str = Field(description="occurred_at in the organisation's time zone, e.g. '02:00:12 MST'")
    clock_local: str = Field(description="the same time without the zone, e.g. '02:00:12'")
    day_local: str = Field(description="its day there, e.g. 'Monday 23 November 2026'")
    how: str = Field(description="the channel in words: text, voice call, incident page, workspace, system, ...")
    folded_into: UUID | None = Field(
        description="a message's report (sent, call placed, failed, dropped): the event id of that message's entry, "
        "whose summary and outcomes already say it"
    )
    outcomes: list[dict[str, Any]] = Field(
        description="a message's entry: what became of it (status, at, time_local, failed), delivery statuses included"
    )


class Timeline(BaseModel):
    incident_id: UUID
    as_of: datetime | None
    status: str
    short_code: str | None
    kind: str | None
    priority: str | None
    zone: str | None
    location: str | None = Field(description="the address given, else the named place, else the coordinates")
    dispatch: dict[str, str] = Field(
        description="how far the response got: stage (waiting, paging, unfilled, accepted, en_route, on_scene, "
        "nobody_went, done, cancelled) and words ('accepted by Cleo Clinician')"
    )
    time_zone: str = Field(description="the organisation's time zone abbreviation the *_local fields are in")
    milestones: dict[str, datetime | None]
    durations_seconds: dict[str, float | None] = Field(description="from the report to each milestone")
    escalations: int
    sla: dict[str, Any] | None
    entries: list[TimelineEntry]


class Accepted(BaseModel):
    stream_sequence: int = Field(description="where the change was recorded on the CRISIS stream")


class SignOff(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approved", "returned"] = "approved"
    comment: str | None = Field(default=None, max_length=1000)


class TaskCommand(BaseModel):
    """A follow-up command: its incident is the task's own; one that names another is refused (409)."""

    model_config = ConfigDict(extra="forbid")
    incident_id: UUID | None = Field(default=None, description="optional; if given, it must be the task's incident")


class Assign(TaskCommand):
    assignee_id: UUID


class Complete(TaskCommand):
    outcome: FollowUpOutcome
    note: str | None = Field(default=None, max_length=2000)


class Attempt(TaskCommand):
    """An outreach attempt (issue 19): by which channel, whether the person was reached, what was offered and
    accepted, whether the safety plan was reviewed and further contact agreed."""

    channel: OutreachChannel
    reached: bool
    offered: list[OutreachOffer] = Field(default_factory=list, max_length=5)
    accepted: list[OutreachOffer] = Field(default_factory=list, max_length=5)
    safety_plan_reviewed: bool | None = None
    further_contact: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Attempt:
        if problem := attempt_problem(self.reached, self.offered, self.accepted, self.further_contact):
            raise ValueError(problem)
        return self


class EndSeries(TaskCommand):
    outcome: SeriesOutcome


class Reschedule(TaskCommand):
    due_at: InputDatetime
    reason: str = Field(min_length=1, max_length=300)


# The contract's models, with every time a client sends bounded (services.runtime.input_times) and read in UTC
# whatever its offset. Converted to the contract's DocumentationFields before anything is recorded.


class NaloxoneDoseIn(NaloxoneDoseRecord):
    given_at: InputDatetime


class Part2DisclosureIn(Part2Disclosure):
    disclosed_at: InputDatetime


class DocumentationFieldsIn(DocumentationFields):
    handed_off_at: InputDatetime | None = None
    cleared_at: InputDatetime | None = None
    acknowledged_at: InputDatetime | None = Field(default=None, description="when the page was not answered by SMS")
    en_route_at: InputDatetime | None = None
    on_scene_at: InputDatetime | None = None
    naloxone_doses: list[NaloxoneDoseIn] = Field(default_factory=list, max_length=20)
    part2_disclosure: Part2DisclosureIn | None = None

    def recorded(self) -> DocumentationFields:
        """The same fields as the contract's model (only those given count as given)."""
        return DocumentationFields.model_validate(self.model_dump(exclude_unset=True))


CsrfHeader = Annotated[str | None, Header(alias="X-CSRF-Token", include_in_schema=False)]


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> dict[str, Any]:
    connected = is_connected(request.app.state.broker)
    position = await asyncio.to_thread(request.app.state.read_models.processed_position)
    return {"status": "ok" if connected else "degraded", "stream_position": position}


@router.get("/asyncapi.json", tags=["docs"])
async def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the CRISIS stream (event schemas are in schemas/events/)."""
    return asyncapi_document()


@router.get("/v1/incidents", responses=AUTH, tags=["incidents"])
async def incidents(
    request: Request, caller: ApiCaller, status: Literal["open", "closed", "cancelled", "all"] = "open"
) -> list[dict[str, Any]]:
    """The incidents the caller may see (directors: all; responders: those they were paged for), newest first."""
    return await record_access(request).board(caller.principal, None if status == "all" else status)


@router.get("/v1/incidents/{incident_id}/timeline", response_model=Timeline, responses=AUTH, tags=["incidents"])
async def incident_timeline(
    request: Request, incident_id: UUID, caller: ApiCaller, as_of: QueryDatetime | None = None
) -> dict[str, Any]:
    """Every recorded event of one incident, in order, with actor, channel and time; durations from the report
    to each milestone; the on-scene SLA. With ``as_of``: as the system knew it then. The read is audited."""
    return await record_access(request).timeline(caller.principal, incident_id, as_of)


@router.get("/v1/incidents/{incident_id}/documentation", responses=AUTH, tags=["documentation"])
async def documentation(
    request: Request, incident_id: UUID, caller: ApiCaller, as_of: QueryDatetime | None = None
) -> dict[str, Any]:
    """The crisis documentation assembled from the events, with its gaps. Audited."""
    doc, _ = await record_access(request).documentation(caller.principal, incident_id, as_of)
    return doc.as_dict()


def _title(doc: Any, short_code: str | None) -> str:
    return f"Crisis documentation, incident {short_code or doc.incident_id}"


@router.get(
    "/v1/incidents/{incident_id}/documentation.html",
    response_class=HTMLResponse,
    responses=AUTH,
    tags=["documentation"],
)
async def documentation_html(request: Request, incident_id: UUID, caller: ApiCaller) -> HTMLResponse:
    """Print-ready HTML. Audited as an export."""
    app = record_access(request)
    doc, progress = await app.documentation(caller.principal, incident_id, action="export:html")
    page = print_documentation(doc, _title(doc, progress.short_code), app.clock.now(), request.app.state.time_zone)
    return HTMLResponse(page, headers=PRINT_SECURITY_HEADERS)


@router.get(
    "/v1/incidents/{incident_id}/documentation.pdf",
    responses=AUTH | {200: {"content": {"application/pdf": {}}}},
    tags=["documentation"],
)
async def documentation_pdf_export(request: Request, incident_id: UUID, caller: ApiCaller) -> Response:
    """The documentation as a PDF. Audited as an export."""
    app = record_access(request)
    doc, progress = await app.documentation(caller.principal, incident_id, action="export:pdf")
    title, zone = _title(doc, progress.short_code), request.app.state.time_zone
    pdf = await asyncio.to_thread(documentation_pdf, doc, title, app.clock.now(), zone)
    await person_commands(request).record_export(caller.principal, incident_id, "pdf_export")
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="incident-{incident_id}.pdf"', "Cache-Control": "no-store"},
    )


@router.get(
    "/v1/incidents/{incident_id}/fhir",
    responses=AUTH | {200: {"content": {"application/fhir+json": {}}}},
    tags=["documentation"],
)
async def documentation_fhir(request: Request, incident_id: UUID, caller: ApiCaller) -> JSONResponse:
    """An HL7 FHIR R4 Bundle: Encounter, Observation, QuestionnaireResponse, MedicationAdministration, Task,
    Communication (and CarePlan). Audited as an export."""
    bundle = await record_access(request).fhir_bundle(caller.principal, incident_id)
    await person_commands(request).record_export(caller.principal, incident_id)  # each linked person's disclosures
    return JSONResponse(bundle, media_type="application/fhir+json", headers={"Cache-Control": "no-store"})


def command_route(path: str, tag: str) -> Callable[[Handler], Handler]:
    """A POST route that records a change: answered 202 with where the stream recorded it."""
    return router.post(path, status_code=202, response_model=Accepted, responses=AUTH, tags=[tag])


@dataclass(frozen=True)
class Command:
    """A command route's caller, CSRF header and Idempotency-Key, and the one way it is answered."""

    request: Request
    caller: Caller
    csrf: str | None
    key: str | None

    @property
    def access(self) -> ClinicalRecordAccess:
        return record_access(self.request)

    async def run(self, body: BaseModel | dict[str, Any], change: Change) -> JSONResponse:
        """The change made as the caller (a cookie session must send its CSRF token first), once per
        Idempotency-Key, answered 202 with its place on the stream (``requester.py``)."""
        self.caller.check_csrf(self.csrf)
        return await answer_command(self.request, self.caller.principal, self.key, body, change)


async def command(request: Request, caller: ApiCaller, csrf: CsrfHeader = None, key: IdempotencyKey = None) -> Command:
    return Command(request, caller, csrf, key)


CommandCall = Annotated[Command, Depends(command)]


@command_route("/v1/incidents/{incident_id}/documentation/fields", "documentation")
async def complete_fields(incident_id: UUID, fields: DocumentationFieldsIn, call: CommandCall) -> JSONResponse:
    """Fill in missing documentation (recorded as documentation.fields_completed)."""
    recorded = fields.recorded()
    return await call.run(fields, lambda who, ids: call.access.complete_fields(who, incident_id, recorded, ids=ids))


@command_route("/v1/incidents/{incident_id}/documentation/attestation", "documentation")
async def attest(incident_id: UUID, call: CommandCall) -> JSONResponse:
    """The responding clinician attests (documentation.attested); refused (409) while gaps remain."""
    return await call.run({}, lambda who, ids: call.access.attest(who, incident_id, ids=ids))


@command_route("/v1/incidents/{incident_id}/documentation/sign-off", "documentation")
async def sign_off(incident_id: UUID, body: SignOff, call: CommandCall) -> JSONResponse:
    """A director approves or returns attested documentation (documentation.signed_off)."""
    return await call.run(
        body, lambda who, ids: call.access.sign_off(who, incident_id, body.decision, body.comment, ids=ids)
    )


@router.get("/v1/followups", responses=AUTH, tags=["follow-ups"])
async def followups(
    request: Request,
    caller: ApiCaller,
    mine: bool = False,
    status: Literal["open", "done", "cancelled"] | None = None,
) -> list[dict[str, Any]]:
    """Directors: every task (``mine=true``: theirs); responders: the tasks assigned to them."""
    return await record_access(request).tasks(caller.principal, mine=mine, status=status)


@router.get("/v1/followups/{task_id}", responses=AUTH, tags=["follow-ups"])
async def followup(request: Request, task_id: UUID, caller: ApiCaller) -> dict[str, Any]:
    return await record_access(request).task(caller.principal, task_id)


@command_route("/v1/followups/{task_id}/assign", "follow-ups")
async def assign(task_id: UUID, body: Assign, call: CommandCall) -> JSONResponse:
    scope = partial(TaskScope, body.incident_id)
    return await call.run(body, lambda who, ids: call.access.assign_task(who, task_id, body.assignee_id, scope(ids)))


@command_route("/v1/followups/{task_id}/complete", "follow-ups")
async def complete(task_id: UUID, body: Complete, call: CommandCall) -> JSONResponse:
    scope = partial(TaskScope, body.incident_id)
    return await call.run(
        body, lambda who, ids: call.access.complete_task(who, task_id, body.outcome, body.note, scope(ids))
    )


@command_route("/v1/followups/{task_id}/attempts", "follow-ups")
async def record_attempt(task_id: UUID, body: Attempt, call: CommandCall) -> JSONResponse:
    """One outreach attempt (the assignee or a director); the next is then due by the rule's policy."""
    scope = partial(TaskScope, body.incident_id)
    attempt = body.model_dump(exclude={"incident_id"})
    return await call.run(body, lambda who, ids: call.access.record_attempt(who, task_id, attempt, scope(ids)))


@command_route("/v1/followups/{task_id}/end", "follow-ups")
async def end_series(task_id: UUID, body: EndSeries, call: CommandCall) -> JSONResponse:
    """The outreach series ends: engaged in care, declined, unreachable, moved, deceased."""
    scope = partial(TaskScope, body.incident_id)
    return await call.run(body, lambda who, ids: call.access.end_series(who, task_id, body.outcome, scope(ids)))


@command_route("/v1/followups/{task_id}/reschedule", "follow-ups")
async def reschedule(task_id: UUID, body: Reschedule, call: CommandCall) -> JSONResponse:
    scope = partial(TaskScope, body.incident_id)
    return await call.run(
        body, lambda who, ids: call.access.reschedule_task(who, task_id, body.due_at, body.reason, scope(ids))
    )


@router.get("/v1/metrics", responses=AUTH, tags=["metrics"])
async def metrics(
    request: Request, caller: ApiCaller, since: QueryDatetime | None = None, until: QueryDatetime | None = None
) -> dict[str, Any]:
    """Median and p90 time to acknowledge and to arrive by priority, zone and ISO week (UTC); escalation rate;
    on-scene SLA compliance; follow-ups done on time; naloxone kits left behind by zone and month
    (``kits_left_behind``, the month in the organisation's zone). Directors only."""
    return await record_access(request).metrics(caller.principal, since, until)


@router.get("/v1/outcomes", responses=AUTH, tags=["metrics"])
async def outcomes(request: Request, caller: ApiCaller) -> dict[str, Any]:
    """The outcome figures (issue 19): contact within 72 h after an overdose, MOUD within 30 days, outreach series
    by outcome, repeat crisis at 30/90/365 days, unmet demand by zone and hour, responder load; each ratio with
    numerator, denominator and the incidents behind both. Directors only."""
    return await record_access(request).outcomes(caller.principal)


@router.get("/v1/outcomes.csv", responses=AUTH | {200: {"content": {"text/csv": {}}}}, tags=["metrics"])
async def outcomes_csv(request: Request, caller: ApiCaller, figure: FigureName = "contacted_72h") -> Response:
    """One figure's rows as CSV (``figure``: contacted_72h, moud_30d, repeat_crisis, series_outcomes, unmet_demand,
    responder_load)."""
    body = outcome_csv(await record_access(request).outcomes(caller.principal), figure)
    disposition = f'attachment; filename="outcomes-{figure}.csv"'
    return Response(
        body, media_type="text/csv", headers={"Content-Disposition": disposition, "Cache-Control": "no-store"}
    )


@router.get("/v1/dead-letters", responses=AUTH, tags=["operations"])
async def dead_letters(
    request: Request, caller: ApiCaller, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[dict[str, Any]]:
    """Messages a service gave up on, newest first: the service, the original message's stream sequence (the
    DL-<n> reference in the supervisor's SMS), its incident if readable, the reason and the message. Directors
    only; audited."""
    return await record_access(request).dead_letters(caller.principal, limit)


@router.get("/v1/audit", responses=AUTH, tags=["audit"])
async def audit(
    request: Request,
    caller: ApiCaller,
    subject: str | None = None,
    record_id: str | None = None,
    since: QueryDatetime | None = None,
    until: QueryDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict[str, Any]]:
    """Who read which clinical record, when, and whether it was allowed. Directors only."""
    return await record_access(request).audit_trail(
        caller.principal, subject=subject, record_id=record_id, since=since, until=until, limit=limit
    )
