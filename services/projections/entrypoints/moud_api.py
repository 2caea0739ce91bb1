"""MOUD continuity over HTTP (issue 19 section 3): ``POST /v1/incidents/{id}/moud-bridges`` and
``POST /v1/incidents/{id}/moud-bridges/{bridge_id}/kept``, once per Idempotency-Key like every command."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.contract.treatment import Medication
from services.projections.adapters import html_pages as pages
from services.projections.entrypoints.auth import PageCaller
from services.projections.entrypoints.form_values import InvalidFormValue, form_time, refusal_reason
from services.projections.entrypoints.http import AUTH, CommandCall
from services.projections.entrypoints.person_forms import form_ids
from services.projections.entrypoints.person_pages import form_of
from services.projections.entrypoints.requester import WorkspaceRequester
from services.projections.errors import Refused
from services.projections.moud_commands import MoudCommands
from services.runtime.idempotency import Answer
from services.runtime.input_times import InputDatetime
from services.runtime.request_ids import RequestIds

router = APIRouter(tags=["moud"])


class Bridge(BaseModel):
    """A bridge: the dose given now (both or neither), the prescription's days, the clinic appointment."""

    model_config = ConfigDict(extra="forbid")
    medication: Medication = Medication.BUPRENORPHINE
    dose_mg: float | None = Field(default=None, gt=0, le=64)
    dose_given_at: InputDatetime | None = None
    prescription_days: int | None = Field(default=None, ge=1, le=30)
    appointment_at: InputDatetime
    program_id: UUID | None = None

    @model_validator(mode="after")
    def _dose(self) -> Bridge:
        if (self.dose_mg is None) != (self.dose_given_at is None):
            raise ValueError("a dose needs both dose_mg and dose_given_at")
        return self


class Kept(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kept_at: InputDatetime | None = None


@router.post("/v1/incidents/{incident_id}/moud-bridges", status_code=202, responses=AUTH)
async def record_bridge(incident_id: UUID, body: Bridge, call: CommandCall) -> JSONResponse:
    """A prescriber, nurse or clinician on the incident (or a director) records an MOUD bridge."""
    access = MoudCommands(call.request.app.state.record_access)
    call.caller.check_csrf(call.csrf)

    async def use_case(ids: RequestIds) -> Answer:
        bridge = body.model_dump()
        sequence = await access.record_bridge(call.caller.principal, incident_id, bridge, ids)
        return Answer(202, {"stream_sequence": sequence})

    return await WorkspaceRequester(call.caller.principal, call.key, call.request).answer_once(body, use_case)


@router.post("/v1/incidents/{incident_id}/moud-bridges/{bridge_id}/kept", status_code=202, responses=AUTH)
async def appointment_kept(incident_id: UUID, bridge_id: UUID, body: Kept, call: CommandCall) -> JSONResponse:
    """The bridge clinic appointment was kept: the outreach for a missed one is cancelled."""
    access = MoudCommands(call.request.app.state.record_access)
    call.caller.check_csrf(call.csrf)

    async def use_case(ids: RequestIds) -> Answer:
        principal = call.caller.principal
        sequence = await access.appointment_kept(principal, incident_id, bridge_id, body.kept_at, ids)
        return Answer(202, {"stream_sequence": sequence})

    return await WorkspaceRequester(call.caller.principal, call.key, call.request).answer_once(body, use_case)


# ---- the incident page's form ------------------------------------------------------------------------------------


@router.post("/workspace/incidents/{incident_id}/moud-bridge", include_in_schema=False)
async def bridge_form(request: Request, incident_id: UUID, caller: PageCaller) -> Response:
    """The MOUD bridge form on the incident page: recorded, then the page again (its timeline shows it)."""
    values = await form_of(request, caller)
    zone = request.app.state.time_zone
    try:
        given = form_time(values.get("dose_given_at"), "dose_given_at", zone)
        dose = float(values["dose_mg"]) if values.get("dose_mg") else None
        days = int(values["prescription_days"]) if values.get("prescription_days") else None
        bridge = Bridge(
            medication=values.get("medication") or "buprenorphine",
            dose_mg=dose,
            dose_given_at=given,
            prescription_days=days,
            appointment_at=form_time(values.get("appointment_at"), "appointment_at", zone),
        )
    except (ValueError, ValidationError, InvalidFormValue) as exc:
        message = f"Not recorded; nothing was recorded: {refusal_reason(exc)}"
        return HTMLResponse(pages.error_page(422, message, caller.principal, None), 422)
    ids = form_ids(caller.principal, values, request.url.path)
    await MoudCommands(request.app.state.record_access).record_bridge(
        caller.principal, incident_id, bridge.model_dump(), ids
    )
    return RedirectResponse(f"/workspace/incidents/{incident_id}#moud-bridge", status_code=303)


@router.post("/workspace/incidents/{incident_id}/moud-bridge/{bridge_id}/kept", include_in_schema=False)
async def kept_form(request: Request, incident_id: UUID, bridge_id: UUID, caller: PageCaller) -> Response:
    values = await form_of(request, caller)
    ids = form_ids(caller.principal, values, request.url.path)
    try:
        await MoudCommands(request.app.state.record_access).appointment_kept(
            caller.principal, incident_id, bridge_id, None, ids
        )
    except Refused as exc:
        return HTMLResponse(pages.error_page(409, f"Not recorded: {exc}", caller.principal, None), 409)
    return RedirectResponse(f"/workspace/incidents/{incident_id}#moud-bridge", status_code=303)


def install_moud_api(app: FastAPI) -> None:
    app.include_router(router)
