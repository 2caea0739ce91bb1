"""The read models: a stream processor whose every event updates the read-model tables and the stream position
in one transaction (exactly once in effect, like the other services' processors).

The tables and the position are one eventsourcing ``TrackingRecorder``, the ``ReadModelStore`` port (stores.py;
in SQL: adapters/sql_read_models.py, opened by the ``OpenStores`` that bootstrap.py passes in), as in
eventsourcing's projection examples: a batch of events is applied inside ``store.recording(tracking)``, which
records the position first, so a batch applied before changes nothing.
The time the stream stored each event comes with it (``handle(..., stored_at)``), so "as known at time T" is
answered by the stream's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import IntegrityError, Tracking

from services.contract.events import (
    REFERRAL_TRANSITIONS,
    AccessRefused,
    Envelope,
    MessageDeadLettered,
    ProgramAvailabilityReported,
    ProgramRegistered,
    ProgramRetired,
    ProgramUpdated,
    ResponderRegistered,
    ResponderRetired,
    ResponderUpdated,
    SmsStatusUpdated,
)
from services.projections.answers import entry_dicts, task_summary
from services.projections.directory import OpenDirectory
from services.projections.domain.audit import AuditEntry, record_written
from services.projections.domain.directory import fold_program
from services.projections.domain.documentation import assemble_documentation
from services.projections.domain.followups import fold_tasks, refused_commands, task_id_of
from services.projections.domain.progress import RecordedEvent, incident_progress
from services.projections.domain.referral import TransitionRefused, fold_referral
from services.projections.domain.responder_view import StaffContact
from services.projections.errors import UnknownIncident
from services.projections.referrals import OpenReferrals
from services.projections.stores import OpenStores
from services.runtime.clock import Clock
from services.runtime.processor import StreamProcessor
from services.runtime.stream import STREAM_NAME

log = logging.getLogger(__name__)
PRODUCER = "projections"

RoleOf = Callable[[str], str | None]
"""The role of a credential's subject, entered with each write in the audit log; None: 'unknown'."""


def no_known_roles(subject: str) -> str | None:
    return None


class ReadModels(StreamProcessor):
    """Read models kept from the stream: timelines, incidents, people involved, tasks, responders, dead letters.

    What it keeps is in ``store`` (tables and position together) and, for people's changes, in the audit log
    ``audit``: both opened by ``open_stores`` in its own database. Its own event store stays empty. It is a
    ``StreamProcessor`` so that the runtime's consumer, probes and tools take it like every other processor.
    """

    producer = PRODUCER
    batches = True  # its consumer hands it up to CRISIS_CONSUMER_BATCH messages at a time (handle_batch)

    @classmethod
    def handled_types(cls) -> None:
        """Every event: any of them can name an incident, and then it is an entry on that incident's timeline
        (its durable also dead-letters an unreadable message on a subject no other service reads)."""
        return None

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock,
        open_stores: OpenStores,
        open_directory: OpenDirectory,
        open_referrals: OpenReferrals,
        prefix: str = "projections",
        role_of: RoleOf = no_known_roles,
    ) -> None:
        super().__init__(env, clock=clock)
        self.store, self.audit = open_stores(self, prefix)
        self.directory = open_directory(self, prefix)  # the treatment-program directory (directory.py)
        self.referrals = open_referrals(self, prefix)  # one row per referral (referrals.py)
        self.role_of = role_of
        current = self.store.has_current_layout()
        self.store.create_tables()
        self.needs_replay = not current and self.processed_position() > 0
        """True when the tables are new or of an older schema but the position is not (an upgrade): the stream
        must be replayed into fresh tables."""
        self.listeners: list[Callable[[int], None]] = []
        """Called (from the processing thread) with the new position after each committed change."""

    def handle(self, event: Envelope, stream_sequence: int, stored_at: datetime | None = None) -> bool:
        """Apply one stream message, which the stream stored at ``stored_at`` (when not known: the event's own
        time). True if it changed the read models, False if it was applied before.

        Raises IntegrityError only for a real conflict (another writer recorded the same position).
        """
        recorded = RecordedEvent(stream_sequence, stored_at or event.occurred_at, event)
        with self.processing_lock:
            try:
                self.apply_batch([recorded])
            except IntegrityError:
                if self.store.has_tracking_id(STREAM_NAME, stream_sequence):
                    return False
                raise
            return True

    def handle_batch(self, items: Sequence[tuple[Envelope, int, datetime | None]]) -> list[bool]:
        """Apply stream messages (stream order) in one transaction; for each, True if it changed the read models,
        False if it was applied before (at or below the recorded position)."""
        with self.processing_lock:
            position = self.processed_position()
            fresh = [RecordedEvent(seq, at or event.occurred_at, event) for event, seq, at in items if seq > position]
            self.apply_batch(fresh)
        return [seq > position for _, seq, _ in items]

    def apply_batch(self, batch: Sequence[RecordedEvent]) -> None:
        """Apply events (stream order) and record the last one's position, all in one transaction.

        Each incident (and task) the batch touches is folded and saved once, after its last event in the batch.
        Raises IntegrityError when that position is already recorded (the batch was applied before).
        """
        if not batch:
            return
        last = batch[-1].sequence
        with self.store.recording(Tracking(STREAM_NAME, last)) as cursor:
            touched: dict[UUID, RecordedEvent] = {}
            tasks: dict[UUID, tuple[UUID, int]] = {}
            for recorded in batch:
                if self._apply(cursor, recorded):
                    incident_id = recorded.event.incident_id
                    touched[incident_id] = recorded
                    if (task_id := task_id_of(recorded.event.data)) is not None:
                        tasks[task_id] = (incident_id, recorded.sequence)
            for incident_id, latest in touched.items():
                self._save_incident(cursor, incident_id, latest)
            for task_id, (incident_id, sequence) in tasks.items():
                self._save_task(cursor, incident_id, task_id, sequence)
        for listener in self.listeners:
            try:
                listener(last)
            except Exception:  # a closed event loop at shutdown: the change is committed, nobody is waiting
                log.debug("change listener failed", exc_info=True)

    def _apply(self, cursor: Any, recorded: RecordedEvent) -> bool:
        """Record one event; True if it belongs to an incident's timeline (and that incident must be saved)."""
        event = recorded.event
        _beside_timeline(type(event))(self, event, recorded, cursor)  # record_beside_timeline(event, ...)
        if event.incident_id is None or self.store.has_event(cursor, event.id):
            return False  # not about an incident, or the same event re-published after the de-duplication window
        self.store.add_event(cursor, recorded)
        self._audit_write(cursor, event)
        return True

    # ---- what an event records besides its incident's timeline (registered in the list below) ----------------

    @singledispatchmethod
    def record_beside_timeline(self, event: Envelope, recorded: RecordedEvent, cursor: Any) -> None:
        """Most events are only entries on their incident's timeline."""

    def save_responder(
        self, event: ResponderRegistered | ResponderUpdated, recorded: RecordedEvent, cursor: Any
    ) -> None:
        data = event.data
        staff = StaffContact(data.name, data.role.value, data.phone, data.supervisor_id)
        self.store.save_responder(cursor, data.responder_id, staff, recorded.sequence)

    def retire_responder(self, event: ResponderRetired, recorded: RecordedEvent, cursor: Any) -> None:
        self.store.retire_responder(cursor, event.data.responder_id, recorded.sequence)

    def keep_dead_letter(self, event: MessageDeadLettered, recorded: RecordedEvent, cursor: Any) -> None:
        self.store.add_dead_letter(cursor, recorded, event.data.original_incident_id())

    def keep_delivery_status(self, event: SmsStatusUpdated, recorded: RecordedEvent, cursor: Any) -> None:
        """No incident on it: kept by its message's SID, for the timeline to fold into that message's row."""
        self.store.add_delivery_status(cursor, recorded)

    def audit_refusal(self, event: AccessRefused, recorded: RecordedEvent, cursor: Any) -> None:
        """A refusal by another service (the gateway's write scopes) enters the audit log as denied."""
        data = event.data
        entry = AuditEntry(
            at=event.occurred_at,
            subject=data.subject,
            role=data.role,
            responder_id=data.responder_id,
            action=data.action,
            record_type=data.record_type,
            record_id=data.record_id,
            outcome="denied",
            event_id=event.id,
        )
        self.audit.record_write(cursor, entry)

    record_beside_timeline.register(ResponderRegistered, save_responder)
    record_beside_timeline.register(ResponderUpdated, save_responder)
    record_beside_timeline.register(ResponderRetired, retire_responder)
    record_beside_timeline.register(MessageDeadLettered, keep_dead_letter)
    record_beside_timeline.register(SmsStatusUpdated, keep_delivery_status)
    record_beside_timeline.register(AccessRefused, audit_refusal)

    def keep_program(self, event: Envelope, recorded: RecordedEvent, cursor: Any) -> None:
        """A program's profile, retirement or availability report, folded into its directory row."""
        program_id = str(event.data.program_id)
        entry = fold_program(self.directory.get(cursor, program_id), event.type, event.data.model_dump(mode="json"))
        if entry is not None:
            self.directory.save(cursor, entry, recorded.sequence)

    record_beside_timeline.register(ProgramRegistered, keep_program)
    record_beside_timeline.register(ProgramUpdated, keep_program)
    record_beside_timeline.register(ProgramRetired, keep_program)
    record_beside_timeline.register(ProgramAvailabilityReported, keep_program)

    def keep_referral(self, event: Envelope, recorded: RecordedEvent, cursor: Any) -> None:
        """A referral's transition, folded into its row; one the state machine refuses changes nothing here."""
        referral_id = str(event.data.referral_id)
        try:
            view = fold_referral(self.referrals.get(cursor, referral_id), event)
        except TransitionRefused as refused:
            log.info("%s %s not applied to referral %s: %s", event.type, event.id, referral_id, refused)
            return
        self.referrals.save(cursor, view, recorded.sequence)

    for _referral_event in REFERRAL_TRANSITIONS:
        record_beside_timeline.register(_referral_event, keep_referral)

    # ---- an incident's rows, folded from its events ----------------------------------------------------------

    def _audit_write(self, cursor: Any, event: Envelope) -> None:
        """A person's change to a record enters the audit log with the event that records it (same transaction).

        A follow-up command its task refused (folded with the incident's earlier events, as the timeline does)
        is entered as ``refused``, never as ``recorded``.
        """
        written = record_written(event.type, event.data, event.incident_id)
        if written is None:
            return
        refused = False
        if written.record_type == "followup":
            events = [r.event for r in self.store.events_for_update(cursor, event.incident_id)]
            refused = event.id in refused_commands(events)
        entry = AuditEntry(
            at=event.occurred_at,
            subject=written.subject,
            role=self.role_of(written.subject) or "unknown",
            responder_id=written.responder_id,
            action=written.action,
            record_type=written.record_type,
            record_id=written.record_id,
            outcome="refused" if refused else "recorded",
            event_id=event.id,
        )
        self.audit.record_write(cursor, entry)

    def _save_incident(self, cursor: Any, incident_id: UUID, latest: RecordedEvent) -> None:
        events = self.store.events_for_update(cursor, incident_id)
        progress = incident_progress(events)
        if progress is None:
            return
        tasks = fold_tasks([r.event for r in events])
        doc = assemble_documentation(events, progress, {}, [task_summary(t) for t in tasks.values()])
        self.store.save_incident(cursor, progress, doc.status, len(doc.gaps), latest)

    def _save_task(self, cursor: Any, incident_id: UUID, task_id: UUID, sequence: int) -> None:
        events = self.store.events_for_update(cursor, incident_id)
        task = fold_tasks([r.event for r in events if task_id_of(r.event.data) == task_id])
        if task_id in task:
            self.store.save_task(cursor, task[task_id], sequence)

    # ---- position, rebuild, and a look for tools -------------------------------------------------------------

    def processed_position(self) -> int:
        return self.store.max_tracking_id(STREAM_NAME) or 0

    def reset(self) -> None:
        """Empty read models at position 0, ready for a replay from sequence 1. The audit log is kept."""
        with self.processing_lock:
            self.store.drop_tables()
            self.directory.drop_table()
            self.directory.create_table()
            self.referrals.drop_table()
            self.referrals.create_table()
            self.store.forget_position(STREAM_NAME)
            self.store.create_tables()
            self.needs_replay = False

    def timeline(self, incident_id: UUID) -> list[dict[str, Any]]:
        """The incident's entries in stream order (unaudited: for tests and tools, not for people)."""
        events = self.store.incident_events(incident_id)
        if not events:
            raise UnknownIncident(incident_id)
        return entry_dicts(events)


_beside_timeline = vars(ReadModels)["record_beside_timeline"].dispatcher.dispatch
"""Event class -> its ``record_beside_timeline`` function (called with the read models first): the registered
method, found without binding it for every event."""
