"""What the person desk stores (issue 17, section 4): each person's file (the events that made the record, folded
by ``person_record.fold_person``, and each family message decided); per incident, which persons it is linked to,
its caller's callback and the updates already given (``IncidentPersons``); and one directory of the persons' aliases
for a search (``PersonDirectory``, snapshotted). An incident's event loads only that incident's aggregate, so the
cost of an event does not grow with history.

``PersonIndex`` is the one index of earlier versions (every incident in one aggregate, rebuilt per event: 5.5 s to
load at 100,000 incidents). It is kept only so that its stored events still decode; a desk that finds one and no
directory copies it into the new aggregates once, at start (``PersonDesk.migrate_index``).

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


class IncidentPersons(Aggregate):
    """One incident's side of the person desk: the persons linked to it, its caller and the updates given."""

    @staticmethod
    def create_id(incident_id: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"crisis/person-desk/incident/{incident_id}")

    @event("Opened")
    def __init__(
        self,
        incident_id: str,
        linked: list[str] | None = None,
        caller: dict[str, Any] | None = None,
        given: list[str] | None = None,
    ) -> None:
        """Opened empty, or with an incident's part of an earlier version's ``PersonIndex`` (the migration)."""
        self.incident_id = incident_id
        self.linked: list[str] = list(linked or [])
        self.caller: dict[str, Any] | None = caller  # {"phone", "told": [...], "language"}
        self.given: list[str] = list(given or [])

    @event("Linked")
    def link(self, person_id: str) -> None:
        self.linked = [*(p for p in self.linked if p != person_id), person_id]

    @event("Unlinked")
    def unlink(self, person_id: str) -> None:
        self.linked = [p for p in self.linked if p != person_id]

    @event("CallerNoted")
    def note_caller(self, phone: str, language: str = "en") -> None:
        self.caller = {"phone": phone, "told": [], "language": language}

    @event("CallerTold")
    def tell_caller(self, incident_id: str, update: str, phone: str, at: datetime, language: str = "en") -> None:
        """The caller's update (help_on_the_way, responder_with_them), once per incident and kind. The event keeps
        the incident id, the phone and the time: the outbox publishes from it alone."""
        if self.caller is not None:
            self.caller = {**self.caller, "told": [*self.caller["told"], update]}

    @event("UpdateGiven")
    def give_update(self, message: str) -> None:
        self.given = [*self.given, message]


class PersonDirectory(Aggregate):
    """Every person's alias, for the search and the list (grows with persons, not incidents; snapshotted)."""

    @staticmethod
    def create_id() -> UUID:
        return uuid5(NAMESPACE_URL, "crisis/person-desk/directory")

    @event("Opened")
    def __init__(self, aliases: dict[str, str] | None = None) -> None:
        self.aliases: dict[str, str] = dict(aliases or {})  # person id -> alias

    @event("Named")
    def name(self, person_id: str, alias: str) -> None:
        self.aliases[person_id] = alias


class PersonIndex(Aggregate):
    """Earlier versions' one index (see the module's note): read once to migrate, never written."""

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
