"""What the projections' use cases need from storage and exports, as ports; bootstrap.py wires the concrete ones
(the SQL tables in adapters/sql_read_models.py and sql_audit_log.py, the FHIR bundle in adapters/fhir_bundle.py).

Rows come back as dicts of stored values: ids as text, times as fixed-width UTC ISO text (written with ``iso``,
read with ``parse_time``), sealed columns already opened into fields of their own.

What an exception from a store means:
- ``PersistenceError`` (eventsourcing): the database failed, and nothing the call would have written was written.
  Trying again later is safe: the stream consumer does not ack (the event comes again), a person's request is
  answered 503 and may be sent again.
- ``IntegrityError`` (eventsourcing), from ``ReadModelUpdates.recording`` only: that stream position is recorded
  already, so the batch was applied before. Permanent for this batch: skip it, do not retry it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking

from services.projections.domain.audit import AuditEntry
from services.projections.domain.documentation import Documentation
from services.projections.domain.followups import TaskState
from services.projections.domain.progress import Progress, RecordedEvent
from services.projections.domain.responder_view import StaffContact


def iso(at: datetime | None) -> str | None:
    """A UTC timestamp as fixed-width ISO text, so text order is time order (on SQLite and PostgreSQL alike)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds") if at is not None else None


def parse_time(text: str | None) -> datetime | None:
    """A stored time (``iso``'s text) back as a datetime; None for None or empty."""
    return datetime.fromisoformat(text) if text else None


class ReadModelUpdates(Protocol):
    """The read models' tables as ``ReadModels`` changes them: every change inside ``recording``, together with
    the stream position it came from. Methods taking a ``cursor`` run inside that transaction.

    Raises PersistenceError when the database fails; ``recording`` also IntegrityError (see the module)."""

    def recording(self, tracking: Tracking) -> AbstractContextManager[Any]:
        """One transaction (its cursor) that records ``tracking`` first: IntegrityError when that position, or a
        later one, is recorded already. Rolled back on any error."""

    def has_tracking_id(self, application_name: str, notification_id: int | None) -> bool: ...

    def max_tracking_id(self, application_name: str) -> int | None: ...

    def has_event(self, cursor: Any, event_id: UUID) -> bool: ...

    def add_event(self, cursor: Any, recorded: RecordedEvent) -> None: ...

    def events_for_update(self, cursor: Any, incident_id: UUID) -> list[RecordedEvent]:
        """The incident's events in stream order, including those added in this transaction."""

    def save_incident(self, cursor: Any, progress: Progress, doc_status: str, gaps: int, last: RecordedEvent) -> None:
        """The incident's row and the people involved in it, from its folded progress."""

    def save_task(self, cursor: Any, task: TaskState, sequence: int) -> None: ...

    def save_responder(self, cursor: Any, responder_id: UUID, staff: StaffContact, sequence: int) -> None:
        """A responder as the roster names them (name and phone sealed); ``responders`` gives them back."""

    def retire_responder(self, cursor: Any, responder_id: UUID, sequence: int) -> None: ...

    def add_dead_letter(self, cursor: Any, recorded: RecordedEvent, incident_id: UUID | None) -> None: ...

    def add_delivery_status(self, cursor: Any, recorded: RecordedEvent) -> None:
        """A status the phone network reported for a sent text (``sms.status_updated``), kept by message SID."""

    def has_current_layout(self) -> bool:
        """True when the tables exist in this code's layout (False: none yet, or an older layout)."""

    def create_tables(self) -> None:
        """The tables, in this code's layout; tables of an older layout are dropped first (the stream must then be
        replayed into the new ones)."""

    def drop_tables(self) -> None: ...

    def forget_position(self, application_name: str) -> None:
        """Remove the recorded position (a replay then records positions from 1 again)."""

    def incident_events(self, incident_id: UUID) -> list[RecordedEvent]:
        """The incident's events in stream order, as committed."""


class ReadModelQueries(Protocol):
    """The read models' tables as the use cases read them. Each raises PersistenceError when the database fails."""

    def wait(self, application_name: str, notification_id: int | None, timeout: float = 1.0) -> None:
        """Return once the tables have reached stream position ``notification_id``; TimeoutError after ``timeout``
        seconds (the change is on the stream all the same: the tables show it when they catch up)."""

    def incident(self, incident_id: UUID) -> dict[str, Any] | None: ...

    def incidents(
        self, *, status: str | None = None, responder_id: UUID | None = None, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Newest first; only those ``responder_id`` was involved in, when given."""

    def involved(self, incident_id: UUID) -> dict[UUID, str]:
        """Who was involved in the incident, and how (paged, accepted, ...)."""

    def incident_events(self, incident_id: UUID) -> list[RecordedEvent]:
        """The incident's events in stream order; empty when no incident has this id."""

    def tasks(
        self, *, assignee_id: UUID | None = None, incident_id: UUID | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Follow-up tasks by due time."""

    def task(self, task_id: UUID) -> dict[str, Any] | None: ...

    def responders(self) -> list[dict[str, Any]]:
        """Every responder the roster has named, by name."""

    def metric_rows(self, since: datetime | None, until: datetime | None) -> tuple[list[dict], list[dict]]:
        """Incidents reported, and tasks due, in [since, until) (either end open when None)."""

    def kits_left_rows(self, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
        """Naloxone kits left behind (``naloxone.left_behind`` on incidents' timelines) in [since, until): each
        with ``incident_id``, ``occurred_at`` (a datetime), ``count`` and ``zone``."""

    def events_of_types(self, types: Sequence[str]) -> list[dict[str, Any]]:
        """Every incident event of ``types`` (stream order): incident_id, type, occurred_at, data."""

    def dead_letters(self, limit: int) -> list[dict[str, Any]]:
        """The newest dead letters first."""

    def delivery_statuses(self, message_sids: Sequence[str]) -> list[dict[str, Any]]:
        """What the phone network said of these texts (message_sid, status, error_code, occurred_at,
        recorded_at), in stream order."""

    def incident_ids_with_code(self, short_code: str) -> list[str]:
        """Every incident that had this short code (codes are reused over time), newest first."""

    def record_labels(self, record_ids: Sequence[str]) -> dict[str, str]:
        """Record id (an incident's or a follow-up task's) -> what a person calls it ('incident 4821')."""

    def overdue_by_priority(self, now: datetime) -> dict[str, int]:
        """Open follow-up tasks past their due time at ``now``, counted per priority (for the overdue gauge)."""


class ReadModelStore(ReadModelUpdates, ReadModelQueries, Protocol):
    """The read models' tables, both sides: what ``ReadModels`` keeps and hands to the use cases."""


class AuditLog(Protocol):
    """The audit log of clinical records: who read or changed which record, when, with what outcome.

    Raises PersistenceError when the database fails: a read must then be refused (no record leaves without its
    audit entry), a change is not acked (its event comes again; an entry is keyed by its event id)."""

    def record(self, entry: AuditEntry) -> None:
        """Enter a read (``read``, ``denied`` or ``not_found``), in a transaction of its own."""

    def record_write(self, cursor: Any, entry: AuditEntry) -> None:
        """Enter a change (``entry.event_id``: the event that records it) inside the read models' transaction
        (``cursor``); nothing when this event is entered already."""

    def query(
        self,
        *,
        subject: str | None = None,
        record_id: str | None = None,
        record_ids: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """Newest first, filtered by any of the given values (``record_ids``: any of them; empty: none)."""

    def subjects(self) -> list[dict[str, Any]]:
        """Everyone the log names (``subject``, and ``responder_id`` when they are a responder), by subject."""


class OpenStores(Protocol):
    """Opens the read models' tables and the audit log in the database of ``beside`` (the read models' own
    eventsourcing application: its datastore, its tracking table, its cipher), their tables named with ``prefix``.
    Raises PersistenceError when the database cannot be reached (the service does not start)."""

    def __call__(self, beside: Application, prefix: str) -> tuple[ReadModelStore, AuditLog]: ...


class FhirExport(Protocol):
    """The documentation of one incident as an HL7 FHIR R4 Bundle (a JSON-ready dict). Pure: it raises nothing for
    documentation the domain assembled; an exception is a bug, not something to retry."""

    def __call__(
        self,
        doc: Documentation,
        progress: Progress,
        events: Sequence[RecordedEvent],
        tasks: Sequence[TaskState],
        staff_names: dict[UUID, str],
    ) -> dict[str, Any]: ...
