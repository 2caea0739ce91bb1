"""How a page tells times and people: times in the organisation's time zone with the zone's abbreviation, and
people by name and role from the roster, never by id or phone number.

Pure: the zone and the roster's names are handed in (settings and the read models), nothing is looked up here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from uuid import UUID

from services.projections.domain.documentation import StaffInfo


def role_words(role: str | None) -> str:
    return (role or "responder").replace("_", " ")


@dataclass(frozen=True)
class Telling:
    """The organisation's time zone and who is who: what a timeline or the board needs besides the events."""

    zone: tzinfo = UTC
    people: Mapping[UUID, StaffInfo] = field(default_factory=dict)
    phones: Mapping[str, UUID] = field(default_factory=dict)
    """A staff phone number -> whose it is: a message is said to be to a person, never to a number."""

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def clock(self, at: datetime) -> str:
        """'09:01:30 MST': the time of day in the organisation's zone."""
        return self.local(at).strftime("%H:%M:%S %Z")

    def short_clock(self, at: datetime) -> str:
        """'09:01:30': the time of day, for a row that shows its zone elsewhere."""
        return self.local(at).strftime("%H:%M:%S")

    def day(self, at: datetime) -> str:
        """'Monday 23 November 2026' in the organisation's zone."""
        local = self.local(at)
        return f"{local.strftime('%A')} {local.day} {local.strftime('%B %Y')}"

    def moment(self, at: datetime, near: datetime | None = None) -> str:
        """The time of day when ``at`` is on the same local day as ``near``; else with its date
        ('Thu 26 Nov 09:00 MST')."""
        if near is not None and self.local(at).date() == self.local(near).date():
            return self.clock(at)
        return self.dated(at)

    def brief(self, at: datetime, near: datetime) -> str:
        """'02:50 MST' on the same local day as ``near``, else 'Sun 22 Nov 02:50 MST': for a board's cell."""
        if self.local(at).date() == self.local(near).date():
            return self.local(at).strftime("%H:%M %Z")
        return self.dated(at)

    def dated(self, at: datetime) -> str:
        local = self.local(at)
        return f"{local.strftime('%a')} {local.day} {local.strftime('%b %H:%M %Z')}"

    def zone_name(self, at: datetime) -> str:
        """The zone's abbreviation at ``at`` (MST or MDT for America/Denver)."""
        return self.local(at).strftime("%Z")

    def person(self, responder_id: UUID | None, role: str | None = None) -> str:
        """'Cleo Clinician (clinician)'; 'a clinician' when the roster has no name for them."""
        info = self.people.get(responder_id) if responder_id is not None else None
        if info is not None:
            return f"{info.name} ({role_words(info.role)})"
        return f"a {role_words(role)} not on the roster" if role else "someone not on the roster"

    def name(self, responder_id: UUID) -> str:
        """Only the name ('Cleo Clinician'), for the board's short cells."""
        info = self.people.get(responder_id)
        return info.name if info is not None else "someone not on the roster"

    def recipient(self, phone: str | None) -> str:
        """Whom a message went to, by the roster's name for the number."""
        owner = self.phones.get(phone) if phone else None
        return self.person(owner) if owner is not None else "a number not on the roster"
