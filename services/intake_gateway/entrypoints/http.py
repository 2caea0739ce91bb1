"""The gateway's HTTP routes. Each parses, builds a command, calls the application, maps the outcome."""

from __future__ import annotations

import logging
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from twilio.request_validator import RequestValidator

from services.contract.events import E164, Location, OverdoseDetails, Priority, Reporter
from services.intake_gateway.application import IntakeGateway, ReportOverdose
from services.runtime.problems import PROBLEM_RESPONSES, Problem

log = logging.getLogger(__name__)
router = APIRouter()


class OverdoseReport(BaseModel):
    """An overdose report: where, who is reporting, and what is known."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["overdose"]
    location: Location
    reporter: Reporter
    details: OverdoseDetails = OverdoseDetails()


class IncidentAccepted(BaseModel):
    incident_id: UUID
    short_code: str
    priority: Priority
    guidance: list[str] = Field(description="what the reporter must do now")
    timeline_url: str


def gateway(request: Request) -> IntakeGateway:
    return request.app.state.gateway


def validator(request: Request) -> RequestValidator:
    return request.app.state.twilio_validator


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> dict[str, str]:
    connected = request.app.state.broker.config.connection_state.connection.is_connected
    return {"status": "ok" if connected else "degraded", "nats": "connected" if connected else "disconnected"}


@router.post(
    "/v1/incidents",
    status_code=201,
    response_model=IncidentAccepted,
    responses=PROBLEM_RESPONSES,
    tags=["incidents"],
)
async def report_incident(
    report: OverdoseReport, app: Annotated[IntakeGateway, Depends(gateway)], response: Response
) -> IncidentAccepted:
    """Report a crisis. Answers 201 only once the report is on the stream."""
    try:
        event = await app.report_overdose(
            ReportOverdose(location=report.location, reporter=report.reporter, details=report.details)
        )
    except Exception as exc:
        log.error("could not append incident.reported: %s", type(exc).__name__)
        raise Problem(503, "the report could not be recorded; retry, and call 911 if life is at risk") from exc
    data = event.data
    response.headers["Location"] = f"/v1/incidents/{data.incident_id}"
    return IncidentAccepted(
        incident_id=data.incident_id,
        short_code=data.short_code,
        priority=data.priority,
        guidance=data.guidance,
        timeline_url=f"/v1/incidents/{data.incident_id}/timeline",
    )


class InboundSms(BaseModel):
    MessageSid: str = Field(pattern=r"^(SM|MM)[0-9a-fA-F]{32}$")
    From: E164
    To: E164
    Body: str = Field(default="", max_length=1600)


@router.post("/twilio/sms", tags=["twilio"], responses=PROBLEM_RESPONSES)
async def inbound_sms(
    request: Request,
    app: Annotated[IntakeGateway, Depends(gateway)],
    check: Annotated[RequestValidator, Depends(validator)],
) -> Response:
    """Twilio's inbound-SMS webhook. Only requests signed with our auth token for our public URL count."""
    form = await request.form()
    params = {key: str(value) for key, value in form.multi_items()}
    public_url = request.app.state.public_url + request.url.path
    if request.url.query:
        public_url += f"?{request.url.query}"
    if not check.validate(public_url, params, request.headers.get("X-Twilio-Signature", "")):
        raise Problem(403, "X-Twilio-Signature does not match this request")
    try:
        sms = InboundSms.model_validate(params)
    except ValidationError as exc:
        fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
        raise Problem(422, f"inbound SMS fields not accepted: {fields}") from exc
    try:
        await app.receive_sms(sms.MessageSid, sms.From, sms.To, sms.Body)
    except Exception as exc:
        log.error("could not append sms.received: %s", type(exc).__name__)
        raise Problem(503, "could not record the message; Twilio will retry") from exc
    return Response("<Response/>", media_type="application/xml")
