"""Which message goes next: priority, per-sender rate limits, per-recipient flood limits. Pure.

- **Priority.** Among the messages that are due, P1 goes before P2 before P3; within a priority, the
  order they were requested in.
- **Rate limit per sender.** A token bucket per sending channel (the SMS number or Messaging Service,
  the voice number), refilled by the clock: a long code sends 1 SMS per second by default. A message
  waits for its channel's token; a P1 that arrives meanwhile takes the next token.
- **Flood limit per recipient.** At most ``max_messages`` SMS to one phone per window. Only lower-priority
  page traffic (P2/P3 ``page_offer`` and ``page_reminder``) is held or bundled by it: when several such
  messages are queued for a phone that the limit would overflow, they go as one ``open_pages_bundle``
  ("3 open pages (...). Reply STATUS ..."); when the phone is at the limit, they wait until the window
  frees up. P1 messages are never held or bundled (the first text of a P1 page goes at the next token),
  and neither are replies and alerts, which answer something the person did or need a supervisor now.
  Everything sent counts toward the window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

PRIORITY_RANK = {"P1": 1, "P2": 2, "P3": 3}
BUNDLEABLE_TEMPLATES = frozenset({"page_offer", "page_reminder"})
BUNDLE_TEMPLATE = "open_pages_bundle"
MAX_BUNDLE_CODES = 20  # the open_pages_bundle template takes at most 20 codes


class TokenBucket:
    """``rate_per_second`` tokens a second, holding at most ``burst``; one token per message."""

    def __init__(self, rate_per_second: float, burst: int, now: datetime) -> None:
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate_per_second
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    def _refill(self, now: datetime) -> None:
        elapsed = max(0.0, (now - self._updated).total_seconds())
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = max(self._updated, now)

    def ready_at(self, now: datetime) -> datetime:
        """When the next token is available (``now`` if one is)."""
        self._refill(now)
        if self._tokens >= 1:
            return now
        return now + timedelta(seconds=(1 - self._tokens) / self.rate)

    def take(self, now: datetime) -> None:
        """Spend a token; raises ValueError if none is available at ``now``."""
        self._refill(now)
        if self._tokens < 1:
            raise ValueError("no token available")
        self._tokens -= 1


class FloodLimiter:
    """Remembers when each phone was last texted, to cap SMS per phone per window."""

    def __init__(self, max_messages: int, window: timedelta) -> None:
        if max_messages < 1 or window <= timedelta(0):
            raise ValueError("a flood limit needs at least one message per positive window")
        self.max_messages = max_messages
        self.window = window
        self._sent: dict[str, deque[datetime]] = {}

    def _recent(self, phone: str, now: datetime) -> deque[datetime]:
        sent = self._sent.setdefault(phone, deque())
        while sent and sent[0] <= now - self.window:
            sent.popleft()
        return sent

    def sent_in_window(self, phone: str, now: datetime) -> int:
        return len(self._recent(phone, now))

    def frees_at(self, phone: str, now: datetime) -> datetime:
        """When the phone can take one more message (``now`` if it can already)."""
        sent = self._recent(phone, now)
        if len(sent) < self.max_messages:
            return now
        return sent[len(sent) - self.max_messages] + self.window

    def record(self, phone: str, now: datetime) -> None:
        self._recent(phone, now).append(now)


@dataclass(frozen=True)
class QueueEntry:
    """A message waiting to be sent: what the scheduler needs to know, nothing more."""

    notification_id: UUID
    position: int  # where its request sits in the notifier's log: the order within a priority
    to: str
    channel: str  # "sms" or "voice"
    priority: str
    template: str
    code: str | None
    due_at: datetime  # when it was requested, or when its next retry is allowed
    requested_at: datetime | None = None  # when its request was recorded (for the page-latency metric)

    @property
    def rank(self) -> int:
        return PRIORITY_RANK.get(self.priority, 3)

    @property
    def bundleable(self) -> bool:
        return self.channel == "sms" and self.priority != "P1" and self.template in BUNDLEABLE_TEMPLATES


@dataclass(frozen=True)
class SendNow:
    entry: QueueEntry


@dataclass(frozen=True)
class BundleNow:
    """Replace these queued messages (one phone, oldest first) by one open_pages_bundle."""

    entries: tuple[QueueEntry, ...]

    @property
    def codes(self) -> list[str]:
        return list(dict.fromkeys(e.code for e in self.entries if e.code))


@dataclass(frozen=True)
class WaitUntil:
    at: datetime


@dataclass(frozen=True)
class Idle:
    """Nothing is queued."""


Decision = SendNow | BundleNow | WaitUntil | Idle


def choose_next(
    entries: Iterable[QueueEntry],
    now: datetime,
    buckets: Mapping[str, TokenBucket],
    flood: FloodLimiter,
) -> Decision:
    """What the sender should do at ``now``: send one message, bundle some, or wait until a time."""
    queued = list(entries)
    if not queued:
        return Idle()
    due = sorted((e for e in queued if e.due_at <= now), key=lambda e: (e.rank, e.position))
    wake_times = [e.due_at for e in queued if e.due_at > now]
    for entry in due:
        ready = buckets[entry.channel].ready_at(now)
        if ready > now:
            wake_times.append(ready)
            continue
        if entry.bundleable:
            in_window = flood.sent_in_window(entry.to, now)
            if in_window >= flood.max_messages:
                wake_times.append(flood.frees_at(entry.to, now))
                continue
            group = _bundle_group([e for e in due if e.bundleable and e.to == entry.to])
            if len(group) > 1 and in_window + len(group) > flood.max_messages:
                return BundleNow(tuple(group))
        return SendNow(entry)
    return WaitUntil(min(wake_times))


def _bundle_group(candidates: list[QueueEntry]) -> list[QueueEntry]:
    """The oldest candidates whose distinct codes fit one bundle."""
    group: list[QueueEntry] = []
    codes: set[str | None] = set()
    for entry in sorted(candidates, key=lambda e: e.position):
        if entry.code not in codes and len(codes) >= MAX_BUNDLE_CODES:
            break
        codes.add(entry.code)
        group.append(entry)
    return group
