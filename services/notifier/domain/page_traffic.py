"""Which queued messages an incident's answers make moot, so that they are dropped instead of sent.

The dispatcher asks for up to three messages to reach a responder with a page (``PAGE_TRAFFIC``): the offer, the
reminder SMS and the voice call. Each waits in the send queue for its channel's token, and a P2/P3 page for its
phone's flood window. Once the page is answered or closed (accepted, declined, timed out, unreachable, withdrawn)
or its incident is cancelled or completed, one still waiting would ask the responder to answer a page that no
longer waits for them: it is dropped, and the drop is on the stream (``notification.dropped``) with its reason.

An accept closes more than its own page: the other pages of the same slot (everyone paged for the primary
response, or for a team's peer) are covered by it. The dispatcher withdraws them as covered right after the
accept; the notifier drops their queued messages at the accept already, so no call or reminder goes out in
between. The slot of a page is read from its ``dispatch.offered``: the peer slot is the page of a team's peer
(``team_role`` "peer"), every other page (candidates, supervisor, director) answers for the primary response.

A notice that a page was withdrawn (``PAGE_NOTICES``) is moot too when nothing of that page reached the phone.
The NOBODY ACCEPTED alarm's queued texts and calls (``ALARM``) are dropped when the alarm stops.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

PAGE_TRAFFIC = frozenset({"page_offer", "page_reminder", "voice_page"})
PAGE_NOTICES = frozenset({"page_covered", "page_withdrawn"})
ALARM = frozenset({"nobody_accepted", "nobody_accepted_call"})
ALARM_KEY = "alarm"  # where an incident's alarm messages are kept, beside its pages

_NAMESPACE = uuid5(NAMESPACE_URL, "https://crisis-dispatch.invalid/notifier/page-traffic")


class DropReason(StrEnum):
    """Why a requested message was not sent (``notification.dropped``)."""

    PAGE_ACCEPTED = "page_accepted"
    PAGE_COVERED = "page_covered"
    PAGE_DECLINED = "page_declined"
    PAGE_TIMED_OUT = "page_timed_out"
    PAGE_UNREACHABLE = "page_unreachable"
    INCIDENT_CANCELLED = "incident_cancelled"
    INCIDENT_CLOSED = "incident_closed"
    ALARM_STOPPED = "alarm_stopped"
    NOTHING_TO_WITHDRAW = "nothing_to_withdraw"


WITHDRAWN_BECAUSE = {
    "covered": DropReason.PAGE_COVERED,
    "cancelled": DropReason.INCIDENT_CANCELLED,
    "completed": DropReason.INCIDENT_CLOSED,
}
"""dispatch.withdrawn's reason -> why the page's queued messages are dropped."""


def is_tracked(template: str) -> bool:
    """Whether a request with this template is kept in its incident's ``IncidentTraffic`` (to be dropped later)."""
    return template in PAGE_TRAFFIC or template in ALARM


def slot_of(team_role: str) -> str:
    return "peer" if team_role == "peer" else "primary"


class IncidentTraffic(Aggregate):
    """One incident's page messages as the notifier knows them: which requested notifications carry which page,
    the slot of each page, and which pages (or the whole incident) need none of them any more."""

    @staticmethod
    def create_id(incident_id: UUID) -> UUID:
        return uuid5(_NAMESPACE, str(incident_id))

    @event("Started")
    def __init__(self, incident_id: UUID) -> None:
        self.incident_id = incident_id
        self.messages: dict[str, list[str]] = {}  # page id (or ALARM_KEY) -> notification ids, in request order
        self.slots: dict[str, str] = {}  # page id -> "primary" or "peer"
        self.closed_pages: dict[str, str] = {}  # page id -> DropReason
        self.closed: str | None = None  # DropReason, once the incident was cancelled or completed

    @event("Tracked")
    def track(self, key: str, notification_id: UUID) -> None:
        """A page's (or the alarm's) message was requested."""
        self.messages.setdefault(key, []).append(str(notification_id))

    @event("PageOffered")
    def note_offer(self, page_id: UUID, slot: str) -> None:
        self.slots[str(page_id)] = slot

    @event("PageClosed")
    def _close_page(self, page_id: UUID, reason: str, at: datetime) -> None:
        self.closed_pages[str(page_id)] = reason

    @event("Closed")
    def _close(self, reason: str, at: datetime) -> None:
        self.closed = reason

    def close_page(self, page_id: UUID, reason: DropReason, at: datetime) -> list[str]:
        """Close a page (once: the first reason stays); the notification ids its closing makes moot."""
        if str(page_id) not in self.closed_pages:
            self._close_page(page_id, reason.value, at)
        return list(self.messages.get(str(page_id), ()))

    def accept(self, page_id: UUID, at: datetime) -> list[tuple[str, DropReason]]:
        """A page was accepted: it and the other open pages of its slot are closed. Every notification that makes
        moot, with why; a page whose slot is not known is left for its own closing."""
        slot = self.slots.get(str(page_id))
        covered = [p for p, s in self.slots.items() if slot is not None and s == slot and p != str(page_id)]
        covered = [p for p in covered if p not in self.closed_pages]
        moot = [(n, DropReason.PAGE_ACCEPTED) for n in self.close_page(page_id, DropReason.PAGE_ACCEPTED, at)]
        for other in covered:
            moot += [(n, DropReason.PAGE_COVERED) for n in self.close_page(UUID(other), DropReason.PAGE_COVERED, at)]
        return moot

    def close(self, reason: DropReason, at: datetime) -> list[str]:
        """The incident needs no page or alarm messages any more (once); every notification id it ever tracked."""
        if self.closed is None:
            self._close(reason.value, at)
        return [n for ids in self.messages.values() for n in ids]

    def alarm_messages(self) -> list[str]:
        return list(self.messages.get(ALARM_KEY, ()))

    def moot(self, page_id: UUID | None) -> DropReason | None:
        """Why a message of ``page_id`` (None: of the alarm) is no longer needed, or None while it still is."""
        if self.closed is not None:
            return DropReason(self.closed)
        reason = self.closed_pages.get(str(page_id)) if page_id is not None else None
        return DropReason(reason) if reason is not None else None

    def page_messages(self, page_id: UUID) -> list[str]:
        return list(self.messages.get(str(page_id), ()))
