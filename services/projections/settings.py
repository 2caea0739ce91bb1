from __future__ import annotations

from pydantic import Field

from services.runtime.settings import RuntimeSettings


class ProjectionsSettings(RuntimeSettings):
    projections_host: str = Field(default="127.0.0.1", description="address the projections API listens on")
    projections_port: int = Field(default=8081, description="projections / director API HTTP port")
