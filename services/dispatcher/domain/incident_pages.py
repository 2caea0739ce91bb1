"""The incident's value types: a page, a slot's state, and what is due (read from ``IncidentDispatch``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

OPEN = "open"


class PageStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TIMED_OUT = "timed_out"
    UNREACHABLE = "unreachable"
    WITHDRAWN = "withdrawn"


class PageNotOpen(Exception):
    """The page was already answered or closed."""


@dataclass(frozen=True)
class Page:
    """One page as callers see it. The aggregate stores each as a dict of these fields (so stored
    snapshots keep loading); this is a read-only view of one."""

    page_id: UUID
    slot: str
    responder_id: UUID
    phone: str
    language: str
    code: str
    step: int
    status: PageStatus
    deadline: datetime
    reminder_at: datetime | None
    voice_at: datetime | None

    @classmethod
    def of(cls, page_id: str, stored: dict[str, Any]) -> Page:
        return cls(
            page_id=UUID(page_id),
            slot=stored["slot"],
            responder_id=UUID(stored["responder_id"]),
            phone=stored["phone"],
            language=stored["language"],
            code=stored["code"],
            step=stored["step"],
            status=PageStatus(stored["status"]),
            deadline=stored["deadline"],
            reminder_at=stored["reminder_at"],
            voice_at=stored["voice_at"],
        )


@dataclass(frozen=True)
class SlotState:
    """One slot of an incident (primary, or a team's peer) and where it stands on the ladder: a view of the
    stored dict."""

    name: str
    step: int
    rung: str
    tried: tuple[UUID, ...]
    covered_by: UUID | None
    active: bool
    from_step: int | None

    @classmethod
    def of(cls, name: str, stored: dict[str, Any]) -> SlotState:
        covered_by = stored["covered_by"]
        return cls(
            name=name,
            step=stored["step"],
            rung=stored["rung"],
            tried=tuple(UUID(r) for r in stored["tried"]),
            covered_by=UUID(covered_by) if covered_by is not None else None,
            active=stored["active"],
            from_step=stored.get("from_step"),
        )


@dataclass(frozen=True)
class FieldDue:
    action: str  # "prompt" or "missed" (a check-in), "eta_overdue", "ems_overdue"
    responder_id: UUID | None


@dataclass(frozen=True)
class DueAction:
    page_id: UUID
    action: str  # "remind", "call" or "time_out"
