"""Wiring for projections: the stream consumer and the HTTP API in one process; nothing runs at import."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.projections.application import Projections
from services.projections.entrypoints.http import router
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import Clock, SystemClock
from services.runtime.problems import install_problem_handlers
from services.runtime.service import running_processor
from services.runtime.settings import store_env

APPLICATION_NAME = "projections"


def build_projections(settings: ProjectionsSettings, clock: Clock | None = None) -> Projections:
    return Projections(store_env(settings, APPLICATION_NAME), clock=clock or SystemClock())


def build(settings: ProjectionsSettings, clock: Clock | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with build_projections(settings, clock) as projections:
            async with running_processor(settings, projections, durable=APPLICATION_NAME) as service:
                app.state.projections = projections
                app.state.broker = service.broker
                yield

    app = FastAPI(
        title="Crisis projections",
        version="0.1.0",
        description="Incident timelines for clinical directors, built from the CRISIS stream.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(router)
    return app
