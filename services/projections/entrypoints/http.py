"""The projections' HTTP routes: read models for clinical directors."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from services.contract.schemagen import asyncapi_document
from services.projections.application import Projections, UnknownIncident
from services.runtime.problems import PROBLEM_RESPONSES, Problem

router = APIRouter()


class TimelineEntry(BaseModel):
    occurred_at: datetime
    type: str
    actor: str
    channel: str
    summary: str
    event_id: UUID
    stream_sequence: int
    details: dict[str, Any]


class Timeline(BaseModel):
    incident_id: UUID
    entries: list[TimelineEntry]


def projections(request: Request) -> Projections:
    return request.app.state.projections


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> dict[str, Any]:
    connected = request.app.state.broker.config.connection_state.connection.is_connected
    app: Projections = request.app.state.projections
    position = await asyncio.to_thread(app.processed_position)
    return {"status": "ok" if connected else "degraded", "stream_position": position}


@router.get("/asyncapi.json", tags=["docs"])
async def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the CRISIS stream (event schemas are in schemas/events/)."""
    return asyncapi_document()


@router.get(
    "/v1/incidents/{incident_id}/timeline",
    response_model=Timeline,
    responses=PROBLEM_RESPONSES,
    tags=["incidents"],
)
async def incident_timeline(incident_id: UUID, app: Annotated[Projections, Depends(projections)]) -> Timeline:
    """Every recorded event of one incident, in stream order, with its time, actor and channel."""
    try:
        entries = await asyncio.to_thread(app.timeline, incident_id)
    except UnknownIncident as exc:
        raise Problem(404, f"no incident {incident_id} is known here (yet)") from exc
    return Timeline(incident_id=incident_id, entries=[TimelineEntry(**e) for e in entries])
