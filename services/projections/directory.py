"""The treatment-program directory: the ports its table fills (``DirectoryTable``, written by ``ReadModels`` in
the read models' transaction) and the use case that reads it (``ProgramDirectory``: programs with what may be
said of their availability now, filtered).

The staleness rule is domain/directory.py's ``availability_now``; its maximum ages are
``CRISIS_AVAILABILITY_MAX_AGE_HOURS`` (beds, default 24) and ``CRISIS_AVAILABILITY_SLOT_MAX_AGE_HOURS`` (a report
of only the next intake slot, default 168), read by ``DirectorySettings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.projections.domain.directory import (
    Availability,
    DirectoryFilter,
    ProgramEntry,
    StalenessRule,
    availability_now,
)
from services.runtime.clock import Clock


class DirectorySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRISIS_", extra="ignore")

    availability_max_age_hours: float = Field(
        default=24.0, gt=0, description="a bed count older than this is shown as unconfirmed, never as open"
    )
    availability_slot_max_age_hours: float = Field(
        default=168.0, gt=0, description="a report of only the next intake slot older than this is unconfirmed"
    )

    program_link_days: float = Field(default=30.0, gt=0, description="how long a program's reporting link works")
    workspace_public_url: str = Field(
        default="", description="the workspace's public URL, for program links; empty: the URL the request came to"
    )

    def staleness_rule(self) -> StalenessRule:
        return StalenessRule(
            beds_max_age=timedelta(hours=self.availability_max_age_hours),
            slots_max_age=timedelta(hours=self.availability_slot_max_age_hours),
        )


class DirectoryTable(Protocol):
    """The directory's table, beside the read models' (same database). ``get`` and ``save`` run inside the read
    models' transaction (``cursor``); the others in their own. Raises PersistenceError when the database fails."""

    def create_table(self) -> None: ...

    def drop_table(self) -> None: ...

    def get(self, cursor: Any, program_id: str) -> ProgramEntry | None: ...

    def save(self, cursor: Any, entry: ProgramEntry, sequence: int) -> None: ...

    def entries(self) -> list[ProgramEntry]:
        """Every program ever listed, by name."""

    def entry(self, program_id: str) -> ProgramEntry | None: ...


class OpenDirectory(Protocol):
    """Opens the directory's table in the database of ``beside`` (the read models' application), named with
    ``prefix``."""

    def __call__(self, beside: Any, prefix: str) -> DirectoryTable: ...


@dataclass(frozen=True)
class Listing:
    entry: ProgramEntry
    availability: Availability


class ProgramDirectory:
    """Reads the directory: each program with what may be said of its availability at the clock's now."""

    def __init__(self, table: DirectoryTable, clock: Clock, rule: StalenessRule) -> None:
        self.table = table
        self.clock = clock
        self.rule = rule

    def listings(self, wanted: DirectoryFilter) -> list[Listing]:
        now = self.clock.now()
        return [
            Listing(entry, availability_now(entry.availability, now, self.rule))
            for entry in self.table.entries()
            if wanted.matches(entry)
        ]

    def listing(self, program_id: str) -> Listing | None:
        entry = self.table.entry(program_id)
        if entry is None:
            return None
        return Listing(entry, availability_now(entry.availability, self.clock.now(), self.rule))


def listing_json(listing: Listing) -> dict[str, Any]:
    """A listing as the JSON API answers it: the profile, and availability as the staleness rule says it (a
    stale report's bed count is not repeated, only its state and as_of)."""
    entry, availability = listing.entry, listing.availability
    return {
        "program_id": entry.program_id,
        **entry.profile,
        "retired": entry.retired,
        "availability": {
            "state": availability.state,
            "offered_as_open": availability.offered_as_open,
            "beds_open": availability.beds_open,
            "next_intake_at": _iso(availability.next_intake_at),
            "as_of": _iso(availability.as_of),
            "age_minutes": int(availability.age.total_seconds() // 60) if availability.age is not None else None,
        },
    }


def listings_json(listings: Sequence[Listing]) -> list[dict[str, Any]]:
    return [listing_json(listing) for listing in listings]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
