"""``GET /healthz``: open, for load balancers; whether this gateway is connected to NATS."""

from __future__ import annotations

from fastapi import APIRouter, Request

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, str]:
    connected = request.app.state.broker.config.connection_state.connection.is_connected
    return {"status": "ok" if connected else "degraded", "nats": "connected" if connected else "disconnected"}
