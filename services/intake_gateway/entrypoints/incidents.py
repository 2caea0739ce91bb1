"""Crisis intake routes: ``POST /v1/incidents`` (a report) and, for an open incident, ``/naloxone``,
``/ems-arrived``, ``/relocated`` and ``/cancel``. Each parses, calls the use case through
``Requester.answer_once`` (``idempotency.py``: once per Idempotency-Key) and shapes the answer.
``GET /v1/incidents/{incident_id}`` (where a report's ``Location`` points) reads the incident's state back.

Every error is an RFC 9457 problem document; a 422 lists each offending field as ``errors[].field`` (e.g.
``body.details.cows_score``). The bodies are in ``incident_bodies.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from services.contract.events import CrisisKind, Envelope
from services.intake_gateway.domain.access import Caller
from services.intake_gateway.entrypoints.auth import AUTH_RESPONSES, NotAllowed, require_role
from services.intake_gateway.entrypoints.idempotency import Answer, Requester, requester
from services.intake_gateway.entrypoints.incident_bodies import (
    CancellationIn,
    EmsArrivalIn,
    IncidentAccepted,
    IncidentReport,
    IncidentStateOut,
    NaloxoneDoseIn,
    PossibleDuplicateOut,
    RelocationIn,
    RelocationRecorded,
    UpdateBody,
    UpdateRecorded,
)
from services.intake_gateway.incident_reads import IncidentReads
from services.intake_gateway.intake import IncidentIntake, ReportIncident
from services.intake_gateway.refusals import IncidentNotFound, NotYours
from services.runtime.credentials import AccessRole, Principal
from services.runtime.json_logs import bind_log_fields, log_fields
from services.runtime.problems import PROBLEM_RESPONSES, Problem
from services.runtime.request_ids import RequestIds

_KINDS = tuple(kind.value for kind in CrisisKind)


class _IntakeRoute(APIRoute):
    """Names fields as clients wrote them: ``body.details.x``, not pydantic's ``body.<kind>.details.x``."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def renaming_handler(request: Request) -> Response:
            # log lines written while handling an incident's request name it (a new report binds its id)
            incident = request.path_params.get("incident_id")
            with log_fields(incident_id=incident, correlation_id=incident):
                try:
                    return await handler(request)
                except RequestValidationError as exc:
                    raise RequestValidationError([_renamed(e) for e in exc.errors()], body=exc.body) from None

        return renaming_handler


def _renamed(error: dict[str, Any]) -> dict[str, Any]:
    loc = tuple(error.get("loc", ()))
    if loc[:1] == ("body",) and str(error.get("type", "")).startswith("union_tag_"):
        return {**error, "loc": ("body", "kind"), "msg": f"kind must be one of {', '.join(_KINDS)}"}
    if len(loc) >= 2 and loc[0] == "body" and loc[1] in _KINDS:
        return {**error, "loc": ("body", *loc[2:])}
    return error


router = APIRouter(route_class=_IntakeRoute, tags=["incidents"], responses=PROBLEM_RESPONSES | AUTH_RESPONSES)

Reporter = Annotated[
    Requester, Depends(requester(require_role(AccessRole.INTAKE, AccessRole.RESPONDER, AccessRole.ADMIN)))
]
# clinical facts come from people on the incident: intake, responders, directors (not roster admins)
RELATED_ROLES = (AccessRole.INTAKE, AccessRole.RESPONDER, AccessRole.DIRECTOR)
Updater = Annotated[Requester, Depends(requester(require_role(*RELATED_ROLES)))]
Reader = Annotated[Principal, Depends(require_role(*RELATED_ROLES))]
READ_REFUSED = "you may read only incidents you reported (intake), were paged for (responders), or any (directors)"


async def incident_intake(request: Request) -> IncidentIntake:
    # async (it never blocks): FastAPI runs a plain ``def`` dependency in its thread pool, a hop per request
    return request.app.state.intake


async def incident_reads(request: Request) -> IncidentReads:
    return request.app.state.incident_reads


Intake = Annotated[IncidentIntake, Depends(incident_intake)]
Reads = Annotated[IncidentReads, Depends(incident_reads)]


def timeline_url(request: Request, incident_id: UUID) -> str:
    """The incident's timeline on the projections service (absolute: another service's route)."""
    return f"{request.app.state.workspace_url}/v1/incidents/{incident_id}/timeline"


@router.post("/v1/incidents", status_code=201, response_model=IncidentAccepted)
async def report_incident(report: IncidentReport, app: Intake, requester: Reporter) -> Response:
    """Report a crisis: overdose, withdrawal (CIWA-Ar or COWS) or self_harm_risk (C-SSRS screener).

    Answers 201 only once the report is on the stream, with the triage (priority, needs), what the reporter
    must do now, where responders will go, and any possible duplicates."""

    async def report_it(ids: RequestIds) -> Answer:
        accepted = await app.report(
            ReportIncident(
                kind=CrisisKind(report.kind),
                location=report.location.given(),
                reporter=report.reporter,
                details=report.details,
                caller=requester.caller,
                ids=ids,
            )
        )
        data = accepted.event.data
        bind_log_fields(incident_id=data.incident_id, correlation_id=accepted.event.correlation_id)
        body = IncidentAccepted(
            incident_id=data.incident_id,
            short_code=data.short_code,
            kind=data.kind,
            priority=data.priority,
            needs=data.needs,
            guidance=data.guidance,
            risk_level=accepted.triage.risk_level,
            location=data.location,
            zone=data.zone,
            outside_service_area=data.outside_service_area,
            possible_duplicates=[PossibleDuplicateOut(**d.__dict__) for d in accepted.duplicates],
            timeline_url=timeline_url(requester.request, data.incident_id),
        )
        return Answer(201, body.model_dump(mode="json"), {"Location": f"/v1/incidents/{data.incident_id}"})

    return await requester.answer_once(report, report_it)


@router.get("/v1/incidents/{incident_id}", response_model=IncidentStateOut)
async def incident_state(incident_id: UUID, request: Request, reads: Reads, principal: Reader) -> IncidentStateOut:
    """The incident as the gateway knows it: open, cancelled or completed, since when, how many responders were
    paged; and where its timeline is. For those who may change it: the caller who reported it (intake), the
    responders paged for it, directors. Anyone else gets 403, entered in the audit log, whether the id exists or not."""
    caller = Caller(principal.subject, principal.role.value, principal.responder_id)
    try:
        state = await reads.state(incident_id, caller)
    except NotYours:
        raise NotAllowed(READ_REFUSED, principal) from None
    except IncidentNotFound:
        raise Problem(404, "no such incident") from None
    return IncidentStateOut.of(state, timeline_url(request, incident_id))


async def update_recorded(
    requester: Requester,
    incident_id: UUID,
    body: UpdateBody,
    update: Callable[..., Awaitable[Envelope]],
    answer: type[UpdateRecorded] = UpdateRecorded,
) -> Response:
    """Run an incident update (an ``IncidentIntake`` method taking the incident, the body's arguments, the caller
    and the ids to record under) once per Idempotency-Key, and answer 201 with the event it appended."""

    async def record(ids: RequestIds) -> Answer:
        event = await update(incident_id, caller=requester.caller, ids=ids, **body.arguments())
        return Answer(201, answer.of(event).model_dump(mode="json"))

    return await requester.answer_once(body, record)


@router.post("/v1/incidents/{incident_id}/naloxone", status_code=201, response_model=UpdateRecorded)
async def record_naloxone(incident_id: UUID, dose: NaloxoneDoseIn, app: Intake, requester: Updater) -> Response:
    """A naloxone dose was given: when, which product, route, by whom, and the response."""
    return await update_recorded(requester, incident_id, dose, app.record_naloxone)


@router.post("/v1/incidents/{incident_id}/ems-arrived", status_code=201, response_model=UpdateRecorded)
async def record_ems_arrived(incident_id: UUID, arrival: EmsArrivalIn, app: Intake, requester: Updater) -> Response:
    """EMS arrived on scene (send ``{}`` for "now", unknown agency)."""
    return await update_recorded(requester, incident_id, arrival, app.record_ems_arrived)


@router.post("/v1/incidents/{incident_id}/relocated", status_code=201, response_model=RelocationRecorded)
async def record_relocation(incident_id: UUID, relocation: RelocationIn, app: Intake, requester: Updater) -> Response:
    """The person moved: responders go to the new location (coordinates, address or named place)."""
    return await update_recorded(requester, incident_id, relocation, app.relocate, RelocationRecorded)


@router.post("/v1/incidents/{incident_id}/cancel", status_code=201, response_model=UpdateRecorded)
async def cancel_incident(incident_id: UUID, cancellation: CancellationIn, app: Intake, requester: Updater) -> Response:
    """Cancel as a false alarm, with the reason. Closes the incident: later updates get 409."""
    return await update_recorded(requester, incident_id, cancellation, app.cancel)
