"""The gateway's HTTP routes. Each parses, builds a command, calls the application, maps the outcome.

Crisis intake: ``POST /v1/incidents`` (a report) and, for an open incident, ``/naloxone``, ``/ems-arrived``,
``/relocated`` and ``/cancel``. Every error is an RFC 9457 problem document; a 422 lists each offending
field as ``errors[].field`` (e.g. ``body.details.cows_score``).

``Idempotency-Key``: a POST retried with the same key (same caller, same route) gets the first answer again,
with its original status (201) and body and the header ``Idempotent-Replayed: true``, however much later
(up to ``idempotency_retention_days``) and without appending anything. The same key with a different body
is a 422; while the first request with that key is still being handled, a 409.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictFloat

from services.contract.events import (
    CrisisKind,
    DoseResponse,
    GivenBy,
    Location,
    NaloxoneRoute,
    OverdoseDetails,
    Priority,
    Reporter,
    SelfHarmRiskDetails,
    WithdrawalDetails,
    derived_id,
)
from services.intake_gateway.adapters.idempotency_kv import KeyInFlight, KeyReused, StoredAnswer
from services.intake_gateway.application import (
    IncidentClosed,
    IncidentNotFound,
    IntakeGateway,
    InvalidInput,
    LocationGiven,
    NotYours,
    ReportIncident,
)
from services.intake_gateway.domain.access import Caller
from services.intake_gateway.domain.places import GeocoderUnavailable
from services.intake_gateway.entrypoints.auth import AUTH_RESPONSES, require_role
from services.runtime.credentials import AccessRole, Principal
from services.runtime.input_times import InputDatetime
from services.runtime.observability import bind_log_fields, log_fields
from services.runtime.problems import PROBLEM_RESPONSES, Problem
from services.runtime.stream import ANSWER_BY, NEVER_HANDED_OVER, NotRecorded

log = logging.getLogger(__name__)
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


router = APIRouter(route_class=_IntakeRoute)

reporters = require_role(AccessRole.INTAKE, AccessRole.RESPONDER, AccessRole.ADMIN)
# clinical facts come from people on the incident: intake, responders, directors (not roster admins)
updaters = require_role(AccessRole.INTAKE, AccessRole.RESPONDER, AccessRole.DIRECTOR)
RESPONSES = PROBLEM_RESPONSES | AUTH_RESPONSES

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="send the same key when retrying: the first answer is returned again, nothing is recorded twice",
    ),
]


# ---- request and response bodies ------------------------------------------------------------------------


class LocationIn(BaseModel):
    """Coordinates (lat and lon), or a street address, or a named place; coordinates win when given."""

    model_config = ConfigDict(extra="forbid")
    # JSON numbers only: true or "39.7" is refused, not read as 1.0 or 39.7
    lat: StrictFloat | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: StrictFloat | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    address: str | None = Field(default=None, max_length=300, examples=["1701 Wynkoop St"])
    place: str | None = Field(default=None, max_length=200, examples=["Union Station"])
    access_notes: str | None = Field(default=None, max_length=500)

    def given(self) -> LocationGiven:
        return LocationGiven(self.lat, self.lon, self.address, self.place, self.access_notes)


class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location: LocationIn
    reporter: Reporter


class OverdoseReport(_Report):
    kind: Literal["overdose"]
    details: OverdoseDetails = OverdoseDetails()


class WithdrawalReport(_Report):
    kind: Literal["withdrawal"]
    details: WithdrawalDetails


class SelfHarmRiskReport(_Report):
    kind: Literal["self_harm_risk"]
    details: SelfHarmRiskDetails


IncidentReport = Annotated[OverdoseReport | WithdrawalReport | SelfHarmRiskReport, Field(discriminator="kind")]


class PossibleDuplicateOut(BaseModel):
    incident_id: UUID
    short_code: str
    distance_m: float
    minutes_before: float


class IncidentAccepted(BaseModel):
    incident_id: UUID
    short_code: str
    kind: CrisisKind
    priority: Priority
    needs: list[str]
    guidance: list[str] = Field(description="what the reporter must do now, most urgent first")
    risk_level: str | None = Field(description="C-SSRS risk, withdrawal band or complicated; None if not scored")
    location: Location = Field(description="where responders go: as given, or as geocoded")
    zone: str | None
    outside_service_area: bool = Field(description="in no service zone: the supervisor decides who goes")
    possible_duplicates: list[PossibleDuplicateOut] = Field(
        description="reports of the same kind close by and shortly before; linked, never merged"
    )
    timeline_url: str


class NaloxoneDoseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    given_at: InputDatetime | None = Field(default=None, description="default: now")
    product: str = Field(min_length=1, max_length=100, examples=["naloxone 4 mg nasal spray"])
    dose_mg: StrictFloat | None = Field(default=None, gt=0, le=20, allow_inf_nan=False)
    route: NaloxoneRoute
    given_by_role: GivenBy | None = None
    response: DoseResponse | None = Field(default=None, description="improved, unchanged or worse; omit if unknown")


class EmsArrivalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arrived_at: InputDatetime | None = Field(default=None, description="default: now")
    agency: str | None = Field(default=None, max_length=100)


class RelocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location: LocationIn
    reason: str | None = Field(default=None, max_length=300)


class CancellationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=300, examples=["false alarm: the person was asleep"])


class UpdateRecorded(BaseModel):
    incident_id: UUID
    event_type: str
    event_id: UUID
    occurred_at: datetime


class RelocationRecorded(UpdateRecorded):
    location: Location
    zone: str | None
    outside_service_area: bool


# ---- plumbing ---------------------------------------------------------------------------------------------


def gateway(request: Request) -> IntakeGateway:
    return request.app.state.gateway


def caller_of(principal: Principal) -> Caller:
    return Caller(principal.subject, principal.role.value, principal.responder_id)


Answer = tuple[int, dict[str, Any], dict[str, str]]


async def answer(
    request: Request,
    principal: Principal,
    key: str | None,
    body: BaseModel,
    run: Callable[[UUID | None], Awaitable[Answer]],
) -> JSONResponse:
    """Run the use case once per Idempotency-Key. ``run`` gets a seed for the ids of what it records (None: no
    key); with a key the seed is random, kept with the key, and the same on every retry."""
    if key is None:
        status, content, headers = await _mapped(run(None))
        return JSONResponse(content, status_code=status, headers=headers)
    store = request.app.state.idempotency
    scope = f"{principal.subject}\n{request.method} {request.url.path}\n{key}"
    fingerprint = hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request.app.state.answer_deadline_seconds
    while True:  # while NATS is unreachable, wait for it until the answer deadline, as publishing does
        try:
            claim = await store.begin(scope, fingerprint)
            break
        except KeyReused:
            raise Problem(422, "this Idempotency-Key was used with a different request; use a new key") from None
        except KeyInFlight:
            raise Problem(409, "a request with this Idempotency-Key is still being handled; retry shortly") from None
        except NEVER_HANDED_OVER as exc:
            if loop.time() >= deadline:
                raise NotRecorded(uuid4()) from exc
            await asyncio.sleep(0.05)
        except Exception as exc:
            log.error("idempotency store unavailable: %s", type(exc).__name__)
            raise NotRecorded(uuid4()) from exc  # nothing of this request was sent to the stream
    if isinstance(claim, StoredAnswer):
        headers = {**claim.headers, "Idempotent-Replayed": "true"}
        return JSONResponse(claim.body, status_code=claim.status, headers=headers)
    # the claim lasts as long as this request may take to answer (and a margin): then a retry may take it over
    answer_by = ANSWER_BY.set(deadline)
    try:
        status, content, headers = await _mapped(run(claim.seed))
    except BaseException as failure:
        await _free(store, scope, fingerprint, claim, failure)
        raise
    finally:
        ANSWER_BY.reset(answer_by)
    try:
        await store.complete(scope, fingerprint, StoredAnswer(status, content, headers))
    except Exception as exc:  # noqa: BLE001 - recorded anyway; a retry after the claim ends re-runs, same ids
        log.warning("could not store an idempotent answer: %s", type(exc).__name__)
    return JSONResponse(content, status_code=status, headers=headers)


async def _free(store: Any, scope: str, fingerprint: str, claim: Any, failure: BaseException) -> None:
    """Let a retry run at once: a fresh claim refused before anything was sent is deleted (the key may then
    come with a corrected request); otherwise the claim is kept as retryable, with its seed."""
    refused = isinstance(failure, Problem) and failure.status < 500
    try:
        if refused and claim.fresh:
            await store.release(scope)
        else:
            await store.give_up(scope, fingerprint, claim)
    except Exception as exc:  # noqa: BLE001 - the claim then ends at its deadline
        log.warning("could not free an idempotency key: %s", type(exc).__name__)


async def _mapped(outcome: Awaitable[Answer]) -> Answer:
    """The use case's answer, or its refusal as a problem document. ``NotRecorded`` (503) and
    ``OutcomeUnknown`` (504) pass through to the handlers installed by ``install_problem_handlers``."""
    try:
        return await outcome
    except InvalidInput as exc:
        errors = [{"field": f"body.{name}", "message": message} for name, message in exc.errors]
        raise Problem(
            422, f"invalid request: {', '.join(e['field'] for e in errors)}", errors=errors, **exc.extensions
        ) from None
    except IncidentNotFound:
        raise Problem(404, "no such incident") from None
    except NotYours:
        raise Problem(
            403,
            "you may change only incidents you reported (intake), were paged for (responders), or any (directors)",
        ) from None
    except IncidentClosed as exc:
        raise Problem(
            409, f"the incident is {exc.status}: it takes no more updates", incident_status=exc.status
        ) from None
    except GeocoderUnavailable:
        raise Problem(503, "the geocoder is not answering: retry, or give coordinates (lat, lon)") from None


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidInput([(name, "is out of range")]) from None


# ---- routes -------------------------------------------------------------------------------------------------


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> dict[str, str]:
    connected = request.app.state.broker.config.connection_state.connection.is_connected
    return {"status": "ok" if connected else "degraded", "nats": "connected" if connected else "disconnected"}


@router.post(
    "/v1/incidents",
    status_code=201,
    response_model=IncidentAccepted,
    responses=RESPONSES,
    tags=["incidents"],
)
async def report_incident(
    report: IncidentReport,
    request: Request,
    app: Annotated[IntakeGateway, Depends(gateway)],
    principal: Annotated[Principal, Depends(reporters)],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Report a crisis: overdose, withdrawal (CIWA-Ar or COWS) or self_harm_risk (C-SSRS screener).

    Answers 201 only once the report is on the stream, with the triage (priority, needs), what the reporter
    must do now, where responders will go, and any possible duplicates."""

    async def run(seed: UUID | None) -> Answer:
        accepted = await app.report(
            ReportIncident(
                kind=CrisisKind(report.kind),
                location=report.location.given(),
                reporter=report.reporter,
                details=report.details,
                caller=caller_of(principal),
                incident_id=derived_id("incident", seed) if seed else None,
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
            timeline_url=f"/v1/incidents/{data.incident_id}/timeline",
        )
        return 201, body.model_dump(mode="json"), {"Location": f"/v1/incidents/{data.incident_id}"}

    return await answer(request, principal, idempotency_key, report, run)


def _recorded(event) -> dict[str, Any]:  # noqa: ANN001 - any intake update envelope
    return UpdateRecorded(
        incident_id=event.incident_id, event_type=event.type, event_id=event.id, occurred_at=event.occurred_at
    ).model_dump(mode="json")


def _event_id(seed: UUID | None, event_type: str) -> UUID | None:
    return derived_id(event_type, seed) if seed else None


@router.post(
    "/v1/incidents/{incident_id}/naloxone",
    status_code=201,
    response_model=UpdateRecorded,
    responses=RESPONSES,
    tags=["incidents"],
)
async def record_naloxone(
    incident_id: UUID,
    dose: NaloxoneDoseIn,
    request: Request,
    app: Annotated[IntakeGateway, Depends(gateway)],
    principal: Annotated[Principal, Depends(updaters)],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A naloxone dose was given: when, which product, route, by whom, and the response."""

    async def run(seed: UUID | None) -> Answer:
        event = await app.record_naloxone(
            incident_id,
            given_at=_utc(dose.given_at, "given_at"),
            product=dose.product,
            dose_mg=dose.dose_mg,
            route=dose.route,
            given_by_role=dose.given_by_role,
            response=dose.response,
            caller=caller_of(principal),
            event_id=_event_id(seed, "incident.naloxone_administered"),
        )
        return 201, _recorded(event), {}

    return await answer(request, principal, idempotency_key, dose, run)


@router.post(
    "/v1/incidents/{incident_id}/ems-arrived",
    status_code=201,
    response_model=UpdateRecorded,
    responses=RESPONSES,
    tags=["incidents"],
)
async def record_ems_arrived(
    incident_id: UUID,
    arrival: EmsArrivalIn,
    request: Request,
    app: Annotated[IntakeGateway, Depends(gateway)],
    principal: Annotated[Principal, Depends(updaters)],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """EMS arrived on scene (send ``{}`` for "now", unknown agency)."""

    async def run(seed: UUID | None) -> Answer:
        event = await app.record_ems_arrived(
            incident_id,
            arrived_at=_utc(arrival.arrived_at, "arrived_at"),
            agency=arrival.agency,
            caller=caller_of(principal),
            event_id=_event_id(seed, "incident.ems_arrived"),
        )
        return 201, _recorded(event), {}

    return await answer(request, principal, idempotency_key, arrival, run)


@router.post(
    "/v1/incidents/{incident_id}/relocated",
    status_code=201,
    response_model=RelocationRecorded,
    responses=RESPONSES,
    tags=["incidents"],
)
async def record_relocation(
    incident_id: UUID,
    relocation: RelocationIn,
    request: Request,
    app: Annotated[IntakeGateway, Depends(gateway)],
    principal: Annotated[Principal, Depends(updaters)],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The person moved: responders go to the new location (coordinates, address or named place)."""

    async def run(seed: UUID | None) -> Answer:
        event = await app.relocate(
            incident_id,
            location=relocation.location.given(),
            reason=relocation.reason,
            caller=caller_of(principal),
            event_id=_event_id(seed, "incident.relocated"),
        )
        data = event.data
        body = RelocationRecorded(
            incident_id=incident_id,
            event_type=event.type,
            event_id=event.id,
            occurred_at=event.occurred_at,
            location=data.location,
            zone=data.zone,
            outside_service_area=data.outside_service_area,
        )
        return 201, body.model_dump(mode="json"), {}

    return await answer(request, principal, idempotency_key, relocation, run)


@router.post(
    "/v1/incidents/{incident_id}/cancel",
    status_code=201,
    response_model=UpdateRecorded,
    responses=RESPONSES,
    tags=["incidents"],
)
async def cancel_incident(
    incident_id: UUID,
    cancellation: CancellationIn,
    request: Request,
    app: Annotated[IntakeGateway, Depends(gateway)],
    principal: Annotated[Principal, Depends(updaters)],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Cancel as a false alarm, with the reason. Closes the incident: later updates get 409."""

    async def run(seed: UUID | None) -> Answer:
        event = await app.cancel(incident_id, reason=cancellation.reason, caller=caller_of(principal))
        return 201, _recorded(event), {}

    return await answer(request, principal, idempotency_key, cancellation, run)
