"""What this instance has folded from the store's notification log: roster, on-call schedule and deadlines.

Whatever any instance stored reaches this one through ``catch_up``, which after a restart also rebuilds
everything here from the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from eventsourcing.application import Repository
from eventsourcing.persistence import ApplicationRecorder

from services.dispatcher.domain.incident import IncidentDispatch
from services.dispatcher.domain.roster import ResponderRecord, ResponderView
from services.dispatcher.domain.routing import SpatialIndex
from services.dispatcher.domain.schedule import OnCallSchedule, Rotation, Window, on_call

CATCH_UP_BATCH = 500


@dataclass
class RosterCache:
    position: int = 0
    roster: dict[UUID, ResponderView] = field(default_factory=dict)
    record_ids: dict[UUID, UUID] = field(default_factory=dict)  # responder id -> aggregate id
    by_phone: dict[str, UUID] = field(default_factory=dict)
    index: SpatialIndex = field(default_factory=SpatialIndex)
    rotations: list[Rotation] = field(default_factory=list)
    shifts: list[Window] = field(default_factory=list)
    overrides: list[Window] = field(default_factory=list)
    deadlines: dict[UUID, datetime] = field(default_factory=dict)  # incident id -> next deadline

    def catch_up(self, recorder: ApplicationRecorder, repository: Repository) -> None:
        """Fold everything stored since the last look (by this instance or another)."""
        while True:
            notifications = recorder.select_notifications(start=self.position + 1, limit=CATCH_UP_BATCH)
            if not notifications:
                return
            changed = dict.fromkeys(notification.originator_id for notification in notifications)
            for aggregate_id in changed:
                self._refresh(repository.get(aggregate_id))
            self.position = notifications[-1].id

    def _refresh(self, aggregate: object) -> None:
        if isinstance(aggregate, ResponderRecord):
            self._refresh_responder(aggregate)
        elif isinstance(aggregate, OnCallSchedule):
            self.rotations = aggregate.rotations()
            self.shifts = aggregate.shifts()
            self.overrides = aggregate.overrides()
        elif isinstance(aggregate, IncidentDispatch):
            deadline = aggregate.next_deadline()
            if deadline is None or aggregate.is_closed:
                self.deadlines.pop(aggregate.id, None)
            else:
                self.deadlines[aggregate.id] = deadline

    def _refresh_responder(self, record: ResponderRecord) -> None:
        view = record.view()
        old = self.roster.get(view.responder_id)
        if old is not None and self.by_phone.get(old.phone) == view.responder_id:
            del self.by_phone[old.phone]
        self.roster[view.responder_id] = view
        self.record_ids[view.responder_id] = record.id
        if view.active:
            self.by_phone[view.phone] = view.responder_id
            self.index.place(view)
        else:
            self.index.remove(view.responder_id)

    def on_call(self, zone: str | None, at: datetime) -> frozenset[UUID]:
        """Who is on call for ``zone`` (None: anywhere) at ``at``."""
        return on_call(self.rotations, self.shifts, self.overrides, at, zone)

    def active_with_role(self, role: str, among: Iterable[UUID] | None = None) -> list[ResponderView]:
        """Active responders of ``role`` (among ``among``, or the whole roster), in the order given."""
        views = self.roster.values() if among is None else (v for r in among if (v := self.roster.get(r)))
        return [view for view in views if view.role == role and view.active]

    def on_duty(self, at: datetime) -> list[ResponderView]:
        """Everyone on call anywhere at ``at``, in a stable order."""
        return [view for r in sorted(self.on_call(None, at), key=str) if (view := self.roster.get(r))]

    def next_deadline(self) -> datetime | None:
        return min(self.deadlines.values(), default=None)

    def due_incidents(self, now: datetime) -> list[UUID]:
        return [incident_id for incident_id, deadline in self.deadlines.items() if deadline <= now]
