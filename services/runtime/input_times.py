"""Times and dates that clients send, checked at the edge: every service's request bodies, query strings and
workspace forms use these types (or ``within_input_range``), so a time the code cannot compute with is a 422
naming the field, never a 500 deeper in.

A time needs a UTC offset (query strings and workspace forms, whose fields carry none, are read as UTC) and
must fall, once converted to UTC, within the years ``EARLIEST_YEAR`` to ``LATEST_YEAR``. Python's datetime
spans the years 1 to 9999 only: year 1 at +14:00 or year 9999 at -14:00 cannot be converted to UTC, and a
time near either end overflows as soon as a duration is added to it. Valid times come back in UTC.

The event contract's ``UtcDatetime`` is deliberately not bounded: events already on the stream are read as
they were written.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator

EARLIEST_YEAR = 1900
LATEST_YEAR = 2200
RANGE_MESSAGE = f"must fall between the years {EARLIEST_YEAR} and {LATEST_YEAR} (in UTC)"


def within_input_range(value: datetime) -> datetime:
    """``value`` converted to UTC. Raises ValueError when it has no UTC offset or, in UTC, falls outside
    ``EARLIEST_YEAR``..``LATEST_YEAR`` (including times that cannot be converted at all)."""
    if value.utcoffset() is None:
        raise ValueError("needs a UTC offset, e.g. 2026-11-23T10:00:00Z or 2026-11-23T03:00:00-07:00")
    try:
        in_utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(RANGE_MESSAGE) from None
    if not EARLIEST_YEAR <= in_utc.year <= LATEST_YEAR:
        raise ValueError(RANGE_MESSAGE)
    return in_utc


def naive_as_utc(value: datetime) -> datetime:
    """A time without an offset read as UTC; one with an offset unchanged."""
    return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)


def _date_within_range(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must fall between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


InputDatetime = Annotated[datetime, AfterValidator(within_input_range)]
"""A time in a request body: ISO 8601 with an offset, within the years above; the value is in UTC."""

QueryDatetime = Annotated[datetime, AfterValidator(naive_as_utc), AfterValidator(within_input_range)]
"""A time in a query string: as ``InputDatetime``, but one without an offset is read as UTC."""

InputDate = Annotated[date, AfterValidator(_date_within_range)]
"""A calendar date in a request body, within the years above."""
