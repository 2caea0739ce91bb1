"""Who can be paged: responders as plain values (the roster as events arrives with the dispatcher issue)."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID


@dataclass(frozen=True)
class Responder:
    responder_id: UUID
    display_name: str
    role: str  # clinician, nurse, prescriber, peer_coach, supervisor, director
    phone: str  # E.164
    home_lat: float
    home_lon: float
    skills: frozenset[str] = field(default_factory=frozenset)
    on_call: bool = True
    language: str = "en"


@dataclass(frozen=True)
class Roster:
    responders: tuple[Responder, ...]

    def by_phone(self, phone: str) -> Responder | None:
        return next((r for r in self.responders if r.phone == phone), None)
