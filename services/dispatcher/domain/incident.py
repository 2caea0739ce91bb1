"""The dispatcher's aggregates. Every command is its own event; times and ids come in as arguments."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

PAGES_NAMESPACE = UUID("0d6a7d8e-39c4-4f0f-8a3e-5f2b9b1c7e11")


class IncidentDispatch(Aggregate):
    """One incident as the dispatcher sees it: who was paged, and who accepted."""

    @event("Opened")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - the incident id, given by the reporter-facing gateway
        short_code: str,
        priority: str,
        lat: float,
        lon: float,
        place: str,
        needs: list[str],
        advise_911: bool,
        caused_by: UUID,
        at: datetime,
    ) -> None:
        self.short_code = short_code
        self.priority = priority
        self.lat, self.lon, self.place = lat, lon, place
        self.needs = needs
        self.advise_911 = advise_911
        self.pages: dict[str, dict[str, Any]] = {}  # page_id -> page
        self.accepted_by: UUID | None = None
        self.unfilled_reason: str | None = None

    @event("PageOffered")
    def offer(
        self,
        page_id: UUID,
        responder_id: UUID,
        responder_role: str,
        phone: str,
        code: str,
        ack_deadline: datetime,
        step: int,
        reason: dict[str, Any],
        sms_body: str,
        caused_by: UUID,
        at: datetime,
    ) -> None:
        self.pages[str(page_id)] = {"responder_id": responder_id, "code": code, "status": "open"}

    @event("Unfilled")
    def record_unfilled(self, reason: str, caused_by: UUID, at: datetime) -> None:
        self.unfilled_reason = reason

    def open_page_for(self, responder_id: UUID) -> UUID | None:
        for page_id, page in self.pages.items():
            if page["responder_id"] == responder_id and page["status"] == "open":
                return UUID(page_id)
        return None

    @event("PageAccepted")
    def accept(
        self,
        page_id: UUID,
        responder_id: UUID,
        phone: str,
        code: str,
        message_sid: str,
        caused_by: UUID,
        at: datetime,
    ) -> None:
        self._close_page(page_id, "accepted")
        self.accepted_by = responder_id

    @event("PageDeclined")
    def decline(
        self,
        page_id: UUID,
        responder_id: UUID,
        phone: str,
        code: str,
        message_sid: str,
        caused_by: UUID,
        at: datetime,
    ) -> None:
        self._close_page(page_id, "declined")

    def _close_page(self, page_id: UUID, status: str) -> None:
        page = self.pages[str(page_id)]
        if page["status"] != "open":
            raise PageNotOpen(page_id)
        page["status"] = status


class PageNotOpen(Exception):
    """The page was already answered or closed."""


class ResponderPages(Aggregate):
    """A responder's open pages by reply code, so "Y 4821" finds its incident."""

    @staticmethod
    def create_id(responder_id: UUID) -> UUID:
        return uuid5(PAGES_NAMESPACE, f"responder-pages/{responder_id}")

    @event("Started")
    def __init__(self, responder_id: UUID) -> None:
        self.responder_id = responder_id
        self.open_pages: dict[str, UUID] = {}  # code -> incident id

    @event("PageOpened")
    def open_page(self, code: str, incident_id: UUID) -> None:
        self.open_pages[code] = incident_id

    @event("PageClosed")
    def close_page(self, code: str) -> None:
        self.open_pages.pop(code, None)

    @event("ReplyAnswered")
    def answer(self, phone: str, text: str, caused_by: UUID, at: datetime) -> None:
        """A reply that changed nothing still gets an answer, so nobody is left wondering."""
