"""Caring contacts (issue 19 section 2): when the next text of a series is due, and the desk's stored state.

``next_text`` is the rule: the n-th text is due ``schedule_days[n-1]`` days after the consent; it is sent only in
the organisation's daytime (``CaringPolicy``: 09:00-20:00 local by default) and never within ``min_gap`` of the
previous one. So a series is never doubled and never skipped: after a stop of the service, or a clock moved
forward past several due times, the texts missed are sent one a day, in order, from the next morning on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

DEFAULT_SCHEDULE = (1, 7, 14, 21, 28, 60, 90, 120, 180, 270, 365)
"""Days after the consent (eleven texts in twelve months, most in the first weeks, as in DOMAIN.md's trial)."""


@dataclass(frozen=True)
class CaringPolicy:
    day_starts: int = 9  # local hour: no text before it
    day_ends: int = 20  # local hour: no text from it on
    min_gap: timedelta = timedelta(hours=20)


def due_at(consented_at: datetime, schedule_days: list[int], number: int) -> datetime:
    return consented_at + timedelta(days=schedule_days[number - 1])


def next_text(
    schedule_days: list[int],
    consented_at: datetime,
    sent: int,
    last_sent_at: datetime | None,
    now: datetime,
    zone: tzinfo,
    policy: CaringPolicy,
) -> int | None:
    """The number of the text to send at ``now`` (1-based), or None: nothing due, too soon after the last one, or
    night in ``zone``."""
    if sent >= len(schedule_days) or due_at(consented_at, schedule_days, sent + 1) > now:
        return None
    if last_sent_at is not None and now - last_sent_at < policy.min_gap:
        return None
    hour = now.astimezone(zone).hour
    return sent + 1 if policy.day_starts <= hour < policy.day_ends else None


def earliest_send(due: datetime, last_sent_at: datetime | None, zone: tzinfo, policy: CaringPolicy) -> datetime:
    """When the text due at ``due`` goes out at the earliest (what the person's page shows): not before ``min_gap``
    after the last one, and in the day's window in ``zone``; ``next_text`` answers it from then on."""
    at = max(due, last_sent_at + policy.min_gap) if last_sent_at is not None else due
    local = at.astimezone(zone)
    if local.hour >= policy.day_ends:
        local = datetime.combine(local.date() + timedelta(days=1), time(policy.day_starts), tzinfo=zone)
    elif local.hour < policy.day_starts:
        local = datetime.combine(local.date(), time(policy.day_starts), tzinfo=zone)
    return local.astimezone(UTC)


def reply_code(message_sid: str) -> str:
    """A 4-digit code for a reply (what the clinician texts Y with), from its message sid."""
    return f"{int(uuid5(NAMESPACE_URL, message_sid).hex[:8], 16) % 9000 + 1000}"


class CaringSeries(Aggregate):
    """One person's series of caring texts (id: the enrolment id)."""

    @staticmethod
    def create_id(enrolment_id: UUID) -> UUID:
        return enrolment_id

    @event("Enrolled")
    def __init__(
        self,
        enrolment_id: UUID,
        person_id: UUID,
        phone: str,
        language: str,
        schedule_days: list[int],
        consented_at: datetime,
    ) -> None:
        self.person_id = person_id
        self.phone = phone
        self.language = language
        self.schedule_days = schedule_days
        self.consented_at = consented_at
        self.sent = 0
        self.last_sent_at: datetime | None = None
        self.ended: str | None = None  # "withdrawn" | "completed"
        self.replies: list[dict[str, Any]] = []

    @event("Sent")
    def send(self, number: int, at: datetime) -> None:
        self.sent = number
        self.last_sent_at = at

    @event("Completed")
    def complete(self, at: datetime) -> None:
        self.ended = "completed"

    @event("Withdrawn")
    def withdraw(self, reason: str, message_sid: str | None, publish: bool, at: datetime) -> None:
        """``publish``: the desk saw a STOP and says so on the stream (a staff withdrawal is on it already)."""
        self.ended = "withdrawn"
        self.ended_why = reason

    @event("Replied")
    def reply(self, code: str, message_sid: str, at: datetime) -> None:
        self.replies.append({"code": code, "message_sid": message_sid, "at": at.isoformat()})

    def next_due(self) -> datetime | None:
        if self.ended is not None or self.sent >= len(self.schedule_days):
            return None
        return due_at(self.consented_at, self.schedule_days, self.sent + 1)

    def view(self) -> dict[str, Any]:
        """What the person's page shows."""
        due = self.next_due()
        return {
            "enrolment_id": str(self.id),
            "sent": self.sent,
            "of": len(self.schedule_days),
            "next_due": due,
            "ended": self.ended,
            "why": getattr(self, "ended_why", None),  # stop | staff
            "consented_at": self.consented_at,
            "replies": list(self.replies),
        }


class CaringBook(Aggregate):
    """The open series: enrolment id -> phone (texts from it are the person's replies), and each person's series."""

    @staticmethod
    def create_id() -> UUID:
        return uuid5(NAMESPACE_URL, "crisis/caring-desk/book")

    @event("Opened")
    def __init__(self) -> None:
        self.open: dict[str, str] = {}
        self.people: dict[str, list[str]] = {}

    @event("SeriesOpened")
    def open_series(self, enrolment_id: str, person_id: str, phone: str) -> None:
        self.open[enrolment_id] = phone
        self.people[person_id] = [*self.people.get(person_id, []), enrolment_id]

    @event("Closed")
    def close(self, enrolment_id: str) -> None:
        self.open.pop(enrolment_id, None)

    def by_phone(self, phone: str) -> list[str]:
        return [e for e, p in self.open.items() if p == phone]
