"""Provider failures on demand, so each retry class can be tested through the real SDK.

``POST /sandbox/api/faults`` arms a fault: the next ``count`` creates (of messages, calls or either, to one
phone or to any) fail that way instead of succeeding. Kinds:

- ``http_429``: Twilio's "Too Many Requests" (code 20429).
- ``http_500`` / ``http_503``: a server error (code 20500 / 20503).
- ``timeout``: no answer until the client gives up (or ``hold_seconds`` pass); nothing is created.
- ``timeout_after_create``: the message or call is created, then the answer is held back the same way,
  the case where a client cannot know that its request went through.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.contract.events import E164

FaultKind = Literal["http_429", "http_500", "http_503", "timeout", "timeout_after_create"]
Resource = Literal["messages", "calls"]

HTTP_FAULTS: dict[str, tuple[int, int]] = {"http_429": (429, 20429), "http_500": (500, 20500), "http_503": (503, 20503)}


class FaultRequest(BaseModel):
    """A fault to arm: how the next ``count`` matching creates fail."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    count: int = Field(default=1, ge=1, le=10_000, description="how many creates fail this way")
    to: E164 | None = Field(default=None, description="only creates to this phone; default: any")
    resource: Literal["messages", "calls", "any"] = "any"
    hold_seconds: float = Field(default=5.0, gt=0, le=30, description="timeouts: longest time the answer is held back")


@dataclass
class ArmedFault:
    id: int
    request: FaultRequest
    remaining: int
    triggered: int = 0

    def as_json(self) -> dict[str, object]:
        return self.request.model_dump() | {"id": self.id, "remaining": self.remaining, "triggered": self.triggered}


class FaultInjector:
    """Armed faults, oldest first; safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[ArmedFault] = []
        self._next_id = 1

    def arm(self, request: FaultRequest) -> ArmedFault:
        with self._lock:
            fault = ArmedFault(self._next_id, request, remaining=request.count)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def take(self, resource: Resource, to: str) -> FaultRequest | None:
        """The fault the next create of ``resource`` to ``to`` runs into, spending one of its count."""
        with self._lock:
            for fault in self._faults:
                if fault.request.resource in (resource, "any") and fault.request.to in (None, to):
                    fault.remaining -= 1
                    fault.triggered += 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault.request
        return None

    def armed(self) -> list[ArmedFault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
