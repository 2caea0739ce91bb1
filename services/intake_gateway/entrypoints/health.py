"""``GET /healthz``: open, for load balancers; whether this gateway is connected to NATS."""

from __future__ import annotations

from fastapi import APIRouter, Request

from services.runtime.nats_connection import is_connected

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, str]:
    connected = is_connected(request.app.state.broker)
    return {"status": "ok" if connected else "degraded", "nats": "connected" if connected else "disconnected"}
