"""What the person desk stores (issue 17, section 4): each person's file (the events that made the record, folded
by ``person_record.fold_person``, and each family message decided), and one index: which persons each incident is
linked to, each incident's caller callback, the updates already given, and the aliases for a search.

Each event stores what it applied as JSON, so a replay rebuilds the same view; a decision is an event of its own,
recorded once; the outbox publishes what it says (person_outbox.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from services.contract.events import decode_event
from services.projections.domain.person_record import PersonView, fold_person


class PersonFile(Aggregate):
    @staticmethod
    def create_id(person_id: UUID, event_json: str) -> UUID:
        return person_id

    @event("Registered")
    def __init__(self, person_id: UUID, event_json: str) -> None:
        self.view: PersonView | None = fold_person(None, decode_event(event_json.encode()))
        self.decided: list[str] = []

    @event("Applied")
    def apply(self, event_json: str) -> None:
        self.view = fold_person(self.view, decode_event(event_json.encode()))

    @event("MessageDecided")
    def decide_message(
        self,
        request_id: UUID,
        contact_id: UUID,
        message: str,
        incident_id: UUID | None,
        consent_id: UUID | None,
        scope: str | None,
        reason: str | None,
        at: datetime,
    ) -> None:
        """A family message: sent under ``consent_id`` (covering ``scope``), or blocked for ``reason``; once per
        request."""
        self.decided = [*self.decided, str(request_id)]


class PersonIndex(Aggregate):
    @staticmethod
    def create_id() -> UUID:
        return uuid5(NAMESPACE_URL, "crisis/person-desk/index")

    @event("Opened")
    def __init__(self) -> None:
        self.linked: dict[str, list[str]] = {}  # incident id -> person ids
        self.callers: dict[str, dict[str, Any]] = {}  # incident id -> {"phone", "told": [...]}
        self.given: dict[str, list[str]] = {}  # incident id -> automatic family updates given
        self.aliases: dict[str, str] = {}  # person id -> alias

    @event("Named")
    def name(self, person_id: str, alias: str) -> None:
        self.aliases[person_id] = alias

    @event("Linked")
    def link(self, incident_id: str, person_id: str) -> None:
        self.linked[incident_id] = [*(p for p in self.linked.get(incident_id, []) if p != person_id), person_id]

    @event("Unlinked")
    def unlink(self, incident_id: str, person_id: str) -> None:
        self.linked[incident_id] = [p for p in self.linked.get(incident_id, []) if p != person_id]

    @event("CallerNoted")
    def note_caller(self, incident_id: str, phone: str, language: str = "en") -> None:
        self.callers[incident_id] = {"phone": phone, "told": [], "language": language}

    @event("CallerTold")
    def tell_caller(self, incident_id: str, update: str, phone: str, at: datetime, language: str = "en") -> None:
        """The caller's update (help_on_the_way, responder_with_them), once per incident and kind."""
        self.callers[incident_id]["told"] = [*self.callers[incident_id]["told"], update]

    @event("UpdateGiven")
    def give_update(self, incident_id: str, message: str) -> None:
        self.given[incident_id] = [*self.given.get(incident_id, []), message]
