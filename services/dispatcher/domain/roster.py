"""Responders as the dispatcher knows them: profile, availability, whereabouts, open pages and load.

``ResponderRecord`` is the aggregate (one per responder, folded from roster events and from pages);
``ResponderView`` is the frozen snapshot routing works on.

Naloxone in the bag: the record keeps the responder's kits by lot (count, lot, expiry), changed only by events
(a dose given, kits left behind, a restock). Never recorded (``None``) is not the same as none left (an empty
list): a responder whose stock was never recorded is routed by skill as before, so a deployment does not lose
every carrier the day it upgrades; once recorded, a carrier with no usable kit is not routed as one. A kit is
usable through its expiry day (``expires_on`` on or after the day, UTC); a kit without a recorded expiry counts
as usable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

RESPONDER_NAMESPACE = UUID("0d6a7d8e-39c4-4f0f-8a3e-5f2b9b1c7e11")


@dataclass(frozen=True)
class HeldCode:
    """The page a reply code names (open, or closed lately): a view of the record's stored dict."""

    code: str
    incident_id: UUID
    page_id: UUID


@dataclass(frozen=True)
class NaloxoneLot:
    """Kits of one lot in a responder's bag. ``expires_on`` None: not recorded (counted as usable)."""

    count: int
    lot: str | None = None
    expires_on: date | None = None

    def usable_on(self, day: date) -> bool:
        return self.expires_on is None or self.expires_on >= day


def usable_kits(kits: Iterable[NaloxoneLot], day: date) -> int:
    """Kits not expired on ``day``."""
    return sum(k.count for k in kits if k.usable_on(day))


def take_kits(kits: Sequence[NaloxoneLot], count: int, day: date, lot: str | None = None) -> list[NaloxoneLot]:
    """The bag after ``count`` kits were taken out on ``day``: from ``lot`` first when it is named, then the usable
    kits that expire first, then expired ones (a kit used is gone, whatever its date). Never below zero."""

    def order(k: NaloxoneLot) -> tuple[bool, bool, date]:
        return (lot is None or k.lot != lot, not k.usable_on(day), k.expires_on or date.max)

    left = count
    after: dict[int, int] = {}
    for i, k in sorted(enumerate(kits), key=lambda pair: order(pair[1])):
        taken = min(left, k.count)
        after[i] = k.count - taken
        left -= taken
    return [NaloxoneLot(after[i], k.lot, k.expires_on) for i, k in enumerate(kits) if after[i] > 0]


def add_kits(kits: Sequence[NaloxoneLot], added: Iterable[NaloxoneLot], day: date) -> list[NaloxoneLot]:
    """The bag after a restock on ``day``: expired kits are taken out (a restock is when the bag is checked), the
    new kits added, kits of the same lot and expiry counted together."""
    merged: dict[tuple[str | None, date | None], int] = {}
    for k in (*(k for k in kits if k.usable_on(day)), *added):
        merged[(k.lot, k.expires_on)] = merged.get((k.lot, k.expires_on), 0) + k.count
    return [NaloxoneLot(n, lot, exp) for (lot, exp), n in merged.items() if n > 0]


def stored_kits(kits: Iterable[NaloxoneLot]) -> list[dict[str, Any]]:
    """Kits as a stored event keeps them (the expiry as ISO text)."""
    return [
        {"count": k.count, "lot": k.lot, "expires_on": k.expires_on.isoformat() if k.expires_on else None} for k in kits
    ]


def kits_from_stored(stored: Iterable[dict[str, Any]]) -> tuple[NaloxoneLot, ...]:
    """Kits as ``stored_kits`` wrote them, back as values."""
    return tuple(
        NaloxoneLot(s["count"], s.get("lot"), date.fromisoformat(s["expires_on"]) if s.get("expires_on") else None)
        for s in stored
    )


@dataclass(frozen=True)
class ResponderView:
    responder_id: UUID
    name: str
    role: str
    phone: str
    home: tuple[float, float]
    skills: frozenset[str] = frozenset()
    languages: tuple[str, ...] = ("en",)
    zones: frozenset[str] = frozenset()
    supervisor_id: UUID | None = None
    active: bool = True
    available: bool = True
    opted_out: bool = False
    reported_location: tuple[float, float] | None = None
    reported_at: datetime | None = None
    load: int = 0
    naloxone: tuple[NaloxoneLot, ...] | None = None  # None: stock never recorded
    resting_until: datetime | None = None  # after a death or a reversal (issue 19)
    after_hours_pages: tuple[datetime, ...] = ()  # pages offered after hours in the last 7 days (issue 19)

    def resting(self, at: datetime) -> bool:
        return self.resting_until is not None and at < self.resting_until

    @property
    def language(self) -> str:
        return self.languages[0] if self.languages else "en"

    def naloxone_usable(self, day: date) -> int | None:
        """Usable naloxone kits on ``day`` (UTC); None when the stock was never recorded."""
        return None if self.naloxone is None else usable_kits(self.naloxone, day)

    def whereabouts(self, now: datetime, stale_after: timedelta) -> tuple[tuple[float, float], str, int | None]:
        """Where to measure from: the reported location while fresh, else the home base (and the age)."""
        if self.reported_location is not None and self.reported_at is not None:
            age = now - self.reported_at
            if age <= stale_after:
                return self.reported_location, "reported", max(0, int(age.total_seconds() // 60))
            return self.home, "home_base", max(0, int(age.total_seconds() // 60))
        return self.home, "home_base", None


class ResponderRecord(Aggregate):
    """One responder: what the roster says, and the pages and incidents they hold right now."""

    @staticmethod
    def create_id(responder_id: UUID) -> UUID:
        return uuid5(RESPONDER_NAMESPACE, f"responder/{responder_id}")

    @event("Registered")
    def __init__(self, responder_id: UUID, profile: dict[str, Any]) -> None:
        self.responder_id = responder_id
        self.profile = profile
        self.active = True
        self.available = True
        self.opted_out = False
        self.location: dict[str, Any] | None = None  # {"lat", "lon", "at", "label"}
        self.open_codes: dict[str, dict[str, str]] = {}  # code -> {"incident_id", "page_id"}
        self.recent_codes: dict[str, dict[str, Any]] = {}  # closed code -> {"incident_id", "page_id", "closed_at"}
        self.assignments: dict[str, str] = {}  # incident id -> code, accepted and not done
        self.quiet_replies: list[datetime] = []  # answers to replies that changed nothing

    @event("ProfileUpdated")
    def update_profile(self, profile: dict[str, Any]) -> None:
        self.profile = profile
        self.active = True

    @event("Retired")
    def retire(self, reason: str) -> None:
        self.active = False

    @event("LocationReported")
    def report_location(self, lat: float, lon: float, at: datetime, label: str | None, source: str) -> None:
        self.location = {"lat": lat, "lon": lon, "at": at, "label": label}

    @event("AvailabilityChanged")
    def change_availability(self, available: bool, reason: str | None) -> None:
        self.available = available

    @event("OptOutChanged")
    def change_opt_out(self, opted_out: bool, at: datetime) -> None:
        self.opted_out = opted_out

    # ---- rest after a hard call (issue 19): old records have none of it, read through ``rest`` ----

    @event("RestStarted")
    def start_rest(self, until: datetime, what: str, incident_id: UUID, caused_by: UUID | None, at: datetime) -> None:
        """``what``: 'a death' or 'an overdose reversal' on ``incident_id``: passed over in routing until ``until``
        while anyone else can be paged."""
        self.rest = {"until": until, "what": what, "incident_id": str(incident_id)}
        self.rested_for = [*getattr(self, "rested_for", []), str(incident_id)]

    @event("RestEnded")
    def end_rest(self, by: str, caused_by: UUID | None, at: datetime) -> None:
        """A supervisor ended the rest early (explicitly, by name)."""
        self.rest = None

    @event("PagedAfterHours")
    def note_after_hours_page(self, at: datetime) -> None:
        """A page offered after hours (issue 19: the weekly cap); only the last 7 days are kept."""
        week = at - timedelta(days=7)
        self.after_hours_pages = [t for t in getattr(self, "after_hours_pages", []) if t > week] + [at]

    def resting_until(self) -> datetime | None:
        rest = getattr(self, "rest", None)
        return rest["until"] if rest else None

    @event("CodeOpened")
    def open_code(self, code: str, incident_id: UUID, page_id: UUID) -> None:
        self.open_codes[code] = {"incident_id": str(incident_id), "page_id": str(page_id)}

    @event("CodeClosed")
    def close_code(self, code: str, at: datetime) -> None:
        page = self.open_codes.pop(code, None)
        # a closed code is remembered for a week: long enough for any late reply, short enough to stay small
        self.recent_codes = {c: p for c, p in self.recent_codes.items() if at - p["closed_at"] < timedelta(days=7)}
        if page is not None:
            self.recent_codes[code] = {**page, "closed_at": at}

    @event("Assigned")
    def assign(self, incident_id: UUID, code: str) -> None:
        self.assignments[str(incident_id)] = code

    @event("Released")
    def release(self, incident_id: UUID) -> None:
        self.assignments.pop(str(incident_id), None)

    @event("QuietReplyAnswered")
    def count_quiet_reply(self, at: datetime, window_seconds: int) -> None:
        window = timedelta(seconds=window_seconds)
        self.quiet_replies = [t for t in self.quiet_replies if at - t < window] + [at]

    @event("NoticeRequested")
    def notify(
        self,
        to: str,
        language: str,
        template: str,
        params: dict[str, Any],
        priority: str,
        incident_id: UUID | None,
        caused_by: UUID,
        at: datetime,
    ) -> None:
        """A message for this responder (an answer to a reply), or about them (to their supervisor)."""

    # ---- naloxone in the bag (old records and snapshots have none of it: read through ``naloxone_kits``) ----

    @event("NaloxoneStockChanged")
    def change_naloxone(
        self,
        reason: str,
        change: int,
        kits: list[dict[str, Any]],
        incident_id: UUID | None,
        channel: str | None,
        message_sid: str | None,
        caused_by: UUID | None,
        at: datetime,
    ) -> None:
        """The bag after a change (``kits`` as ``stored_kits`` writes them): a dose, kits left, a restock."""
        self.naloxone = kits

    @event("NaloxoneLeftBehind")
    def leave_naloxone(
        self,
        incident_id: UUID,
        count: int,
        lot: str | None,
        zone: str | None,
        channel: str,
        message_sid: str | None,
        caused_by: UUID | None,
        at: datetime,
    ) -> None:
        """Kits left with the person or family at an incident (the stock change is its own event)."""

    @event("NaloxoneStockLow")
    def note_naloxone_low(
        self, usable: int, threshold: int, supervisor_id: UUID | None, caused_by: UUID | None, at: datetime
    ) -> None:
        """The supervisor was told the usable kits fell to the threshold: not again until restocked above it."""
        self.naloxone_low_told = True

    @event("NaloxoneStockRecovered")
    def note_naloxone_recovered(self, usable: int, caused_by: UUID | None, at: datetime) -> None:
        self.naloxone_low_told = False

    def naloxone_kits(self) -> list[NaloxoneLot] | None:
        """The kits in the bag; None when the stock was never recorded."""
        stored = getattr(self, "naloxone", None)
        return None if stored is None else list(kits_from_stored(stored))

    def naloxone_low_was_told(self) -> bool:
        return getattr(self, "naloxone_low_told", False)

    def tell(
        self,
        person: ResponderView,
        template: str,
        params: dict[str, Any],
        priority: str,
        caused_by: UUID | None,
        at: datetime,
        incident_id: UUID | None = None,
    ) -> None:
        """``notify`` ``person`` (this responder, or someone about them) at their phone, in their language."""
        self.notify(
            to=person.phone,
            language=person.language,
            template=template,
            params=params,
            priority=priority,
            incident_id=incident_id,
            caused_by=caused_by,
            at=at,
        )

    def held_code(self, code: str) -> HeldCode | None:
        """The page ``code`` names: an open one, else one closed lately (a late reply still finds it)."""
        held = self.open_codes.get(code) or self.recent_codes.get(code)
        return _held(code, held) if held is not None else None

    def open_held_codes(self) -> list[HeldCode]:
        """Every open page this responder holds, in the order they were offered."""
        return [_held(code, held) for code, held in self.open_codes.items()]

    def may_answer_quiet_reply(self, at: datetime, window: timedelta, limit: int) -> bool:
        """Answers to replies that change nothing are capped, so two auto-responders can't loop forever."""
        return sum(1 for t in self.quiet_replies if at - t < window) < limit

    def codes_in_use(self, at: datetime, reuse_after: timedelta) -> set[str]:
        """Open codes, and codes closed too recently to hand out again (a late reply must not hit a new page)."""
        recent = {code for code, page in self.recent_codes.items() if at - page["closed_at"] < reuse_after}
        return set(self.open_codes) | recent

    def view(self) -> ResponderView:
        p = self.profile
        location = self.location
        return ResponderView(
            responder_id=self.responder_id,
            name=p["name"],
            role=p["role"],
            phone=p["phone"],
            home=(p["home_base"]["lat"], p["home_base"]["lon"]),
            skills=frozenset(p.get("skills", ())),
            languages=tuple(p.get("languages") or ("en",)),
            zones=frozenset(p.get("zones", ())),
            supervisor_id=UUID(p["supervisor_id"]) if p.get("supervisor_id") else None,
            active=self.active,
            available=self.available,
            opted_out=self.opted_out,
            reported_location=(location["lat"], location["lon"]) if location else None,
            reported_at=location["at"] if location else None,
            load=len(self.assignments),
            naloxone=kits_from_stored(stored) if (stored := getattr(self, "naloxone", None)) is not None else None,
            resting_until=self.resting_until(),
            after_hours_pages=tuple(getattr(self, "after_hours_pages", ())),
        )


def _held(code: str, stored: dict[str, Any]) -> HeldCode:
    return HeldCode(code, UUID(stored["incident_id"]), UUID(stored["page_id"]))
