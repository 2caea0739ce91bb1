"""Wiring for the gateway: build(settings) returns the ASGI app; nothing runs at import."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import partial

from fastapi import FastAPI
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from twilio.request_validator import RequestValidator

from services.intake_gateway.application import IntakeGateway
from services.intake_gateway.entrypoints.http import router
from services.intake_gateway.settings import GatewaySettings
from services.runtime.clock import Clock, SystemClock
from services.runtime.problems import install_problem_handlers, problem_response
from services.runtime.service import connect_stream, make_broker
from services.runtime.stream import publish_event


def build(settings: GatewaySettings, clock: Clock | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = make_broker(settings)
        js = await connect_stream(broker, settings)
        app.state.broker = broker
        app.state.gateway = IntakeGateway(partial(publish_event, js), clock or SystemClock())
        app.state.twilio_validator = RequestValidator(settings.twilio_auth_token)
        app.state.public_url = settings.gateway_public_url.rstrip("/")
        try:
            yield
        finally:
            await broker.stop()

    app = FastAPI(
        title="Crisis intake gateway",
        version="0.1.0",
        description="Crisis reports, roster commands and Twilio webhooks in; events on the CRISIS stream out.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(BaseHTTPMiddleware, dispatch=partial(limit_body_size, settings.max_request_bytes))
    app.include_router(router)
    return app


async def limit_body_size(limit: int, request: Request, call_next):  # noqa: ANN201 - starlette middleware
    """Refuse bodies over ``limit`` bytes before reading them (413 problem+json)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return problem_response(413, f"request bodies are limited to {limit} bytes", instance=request.url.path)
    return await call_next(request)
