"""What roster commands need from an uploaded iCalendar feed: its occurrences in a window, or why it is refused.

The reader itself (``adapters/ics_calendar.py``, iCalendar parsing and recurrence expansion) is wired in
``bootstrap.py``; the roster commands name only this port.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class CalendarError(ValueError):
    """The feed cannot be turned into shifts; the message says which event and why (no personal data).

    Permanent for that feed: the caller gets a 422 naming the field, and retrying the same text fails again."""


@dataclass(frozen=True)
class CalendarEntry:
    """One concrete occurrence of a calendar event."""

    uid: str
    summary: str
    attendees: tuple[str, ...]  # cal-addresses as written: mailto:..., tel:..., urn:uuid:...
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC


class CalendarReader(Protocol):
    def __call__(
        self, text: str, *, window_start: datetime, window_end: datetime, default_time_zone: str | None = None
    ) -> list[CalendarEntry]:
        """Every occurrence in ``text`` overlapping the window, sorted by start. Raises CalendarError only."""
        ...
