from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.runtime.settings import RuntimeSettings


class DispatcherSettings(RuntimeSettings):
    roster_file: Path = Field(
        default=Path("deploy/demo/roster.json"), description="seed roster (JSON) the dispatcher pages from"
    )
    ack_timeout_p1_seconds: int = Field(default=90, ge=10, description="P1 acknowledgement deadline")
    ack_timeout_p2_seconds: int = Field(default=300, ge=10, description="P2 acknowledgement deadline")
    ack_timeout_p3_seconds: int = Field(default=900, ge=10, description="P3 acknowledgement deadline")

    def ack_timeouts(self) -> dict[str, int]:
        return {
            "P1": self.ack_timeout_p1_seconds,
            "P2": self.ack_timeout_p2_seconds,
            "P3": self.ack_timeout_p3_seconds,
        }
