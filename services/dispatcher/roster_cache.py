"""What this instance has folded from the store's notification log: roster, on-call schedule and deadlines.

Whatever any instance stored reaches this one through ``catch_up``. A start does not fold the whole log:
``restore`` reads the last snapshot of this cache (its state at a log position, saved every
``SNAPSHOT_EVERY`` notifications folded and on a clean shutdown) and ``catch_up`` then folds only what was
stored after that position, so a start costs the open work (the roster, the open incidents), not the
history. The snapshot is a cache of a deterministic fold, not a record: it is written in its own
transaction, may lag the log by any amount, and a missing, unreadable or other-version snapshot is ignored
(the log is folded from the start, as before, and a new snapshot written).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.persistence import ApplicationRecorder, PersistenceError, Recording
from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict

from services.dispatcher.domain.incident import IncidentDispatch
from services.dispatcher.domain.referral_alert import ReferralAlert
from services.dispatcher.domain.roster import ResponderRecord, ResponderView
from services.dispatcher.domain.routing import SpatialIndex
from services.dispatcher.domain.schedule import OnCallSchedule, Rotation, Window, on_call

log = logging.getLogger(__name__)

CATCH_UP_BATCH = 1000
SNAPSHOT_EVERY = 1000
"""Notifications folded between two snapshots: the most a start after a crash folds beyond open work."""
SNAPSHOT_FORMAT = 1
"""Bump when the meaning of a saved field changes without its shape changing (the shape is fingerprinted)."""
TRANSIENT = {"snapshot": False}
"""Field metadata: not saved in a snapshot (derived from the saved fields, or this instance's own)."""


class SavedSnapshot(NamedTuple):
    version: str
    position: int
    state: str


class RosterSnapshots(Protocol):
    """Where the cache's snapshot is kept: one row, in the dispatcher's own store."""

    def load(self) -> SavedSnapshot | None: ...

    def save(self, snapshot: SavedSnapshot) -> None:
        """Keep ``snapshot`` unless a snapshot further along the log is kept already."""
        ...


@dataclass
class RosterCache:
    position: int = 0
    roster: dict[UUID, ResponderView] = field(default_factory=dict)
    record_ids: dict[UUID, UUID] = field(default_factory=dict)  # responder id -> aggregate id
    by_phone: dict[str, UUID] = field(default_factory=dict)
    index: SpatialIndex = field(default_factory=SpatialIndex, metadata=TRANSIENT)  # rebuilt from ``roster``
    rotations: list[Rotation] = field(default_factory=list)
    shifts: list[Window] = field(default_factory=list)
    overrides: list[Window] = field(default_factory=list)
    open_incidents: set[UUID] = field(default_factory=set)  # not closed (cancelled or done), and referral alarms
    deadlines: dict[UUID, datetime] = field(default_factory=dict, metadata=TRANSIENT)  # open incident -> next one
    referral_alerts: dict[str, list[UUID]] = field(default_factory=dict, metadata=TRANSIENT)  # code -> open alarms
    snapshots: RosterSnapshots | None = field(default=None, repr=False, compare=False, metadata=TRANSIENT)
    saved_position: int = field(default=0, repr=False, compare=False, metadata=TRANSIENT)

    def restore(self, repository: Repository) -> bool:
        """Start from the last snapshot, if there is a readable one of this version; True if there was.

        The deadlines are not in the snapshot: every open incident is read again from the store (open work: there
        are few), so a deadline is what this version's code computes from the incident, whichever version wrote
        the snapshot (a new kind of deadline on an incident that had none before included).
        """
        if self.snapshots is None:
            return False
        try:
            saved = self.snapshots.load()
        except PersistenceError:
            log.warning("the roster snapshot could not be read: folding the whole log", exc_info=True)
            return False
        if saved is None:
            return False
        if saved.version != snapshot_version():
            log.info("the roster snapshot is of another version: folding the whole log")
            return False
        try:
            state = _snapshot_adapter().validate_json(saved.state)
        except ValidationError:
            log.warning("the roster snapshot is unreadable: folding the whole log")
            return False
        for name, value in state.items():
            setattr(self, name, value)
        self.index = SpatialIndex()
        for view in self.roster.values():
            if view.active:
                self.index.place(view)
        self.saved_position = self.position
        self.deadlines, self.referral_alerts = {}, {}
        for incident_id in list(self.open_incidents):
            try:
                self._refresh(repository.get(incident_id))
            except AggregateNotFoundError:
                self.open_incidents.discard(incident_id)
        log.info(
            "roster restored from its snapshot at log position %s: %s open incidents",
            self.position,
            len(self.open_incidents),
        )
        return True

    def catch_up(self, recorder: ApplicationRecorder, repository: Repository, stop: int | None = None) -> None:
        """Fold everything stored since the last look (by this instance or another; up to ``stop``, if given); every
        ``SNAPSHOT_EVERY`` notifications folded, save a snapshot (during a long fold too: a start stopped halfway
        keeps its progress)."""
        while stop is None or self.position < stop:
            notifications = recorder.select_notifications(start=self.position + 1, limit=CATCH_UP_BATCH, stop=stop)
            if not notifications:
                return
            changed = dict.fromkeys(notification.originator_id for notification in notifications)
            for aggregate_id in changed:
                self._refresh(repository.get(aggregate_id))
            self.position = notifications[-1].id
            if self.position - self.saved_position >= SNAPSHOT_EVERY:
                self.save_snapshot()

    def fold_stored(
        self,
        recordings: Sequence[Recording],
        aggregates: Mapping[Any, object],
        store: tuple[ApplicationRecorder, Repository] | None = None,
    ) -> bool:
        """Fold what this instance has just stored from the aggregates in hand, instead of reading them back from the
        store at the next ``catch_up`` (issue 16: a store read per changed aggregate per message). Only when the
        recordings are one run of notifications and every aggregate they are of is in hand; what was stored before
        them since the last fold (by another instance sharing the store: partitions) is folded from ``store`` first
        (it is committed: notification ids are given out in commit order); without ``store``, only when they directly
        follow what is folded. Else nothing is folded and ``catch_up`` reads them as before. True if folded."""
        ids = [recording.notification.id for recording in recordings]
        if not ids or ids != list(range(ids[0], ids[0] + len(ids))) or ids[0] <= self.position:
            return False
        if ids[0] > self.position + 1 and store is not None:
            self.catch_up(*store, stop=ids[0] - 1)
        if ids[0] != self.position + 1:
            return False
        originators = dict.fromkeys(recording.domain_event.originator_id for recording in recordings)
        if any(originator not in aggregates for originator in originators):
            return False
        for originator in originators:
            self._refresh(aggregates[originator])
        self.position = ids[-1]
        if self.position - self.saved_position >= SNAPSHOT_EVERY:
            self.save_snapshot()
        return True

    def save_snapshot(self) -> None:
        """Save what is folded so far (a failure is logged: the next start then folds a longer tail)."""
        if self.snapshots is None or self.position == self.saved_position:
            return
        state = {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("snapshot", True)}
        snapshot = SavedSnapshot(snapshot_version(), self.position, _snapshot_adapter().dump_json(state).decode())
        try:
            self.snapshots.save(snapshot)
        except PersistenceError:
            log.warning("the roster snapshot could not be saved; the next start folds more of the log", exc_info=True)
            return
        self.saved_position = self.position

    def _refresh(self, aggregate: object) -> None:
        if isinstance(aggregate, ResponderRecord):
            self._refresh_responder(aggregate)
        elif isinstance(aggregate, OnCallSchedule):
            self.rotations = aggregate.rotations()
            self.shifts = aggregate.shifts()
            self.overrides = aggregate.overrides()
        elif isinstance(aggregate, IncidentDispatch | ReferralAlert):
            if isinstance(aggregate, ReferralAlert) and aggregate.code is not None:
                self._refresh_alert_code(aggregate)
            if aggregate.is_closed:
                self.open_incidents.discard(aggregate.id)
            else:
                self.open_incidents.add(aggregate.id)
            deadline = aggregate.next_deadline()
            if deadline is None or aggregate.is_closed:
                self.deadlines.pop(aggregate.id, None)
            else:
                self.deadlines[aggregate.id] = deadline

    def _refresh_alert_code(self, alert: ReferralAlert) -> None:
        """``Y <code>`` finds the open alarms of a referral code (codes may repeat across referrals over time)."""
        ids = [i for i in self.referral_alerts.get(alert.code, []) if i != alert.id]
        if not alert.is_closed:
            ids.append(alert.id)
        if ids:
            self.referral_alerts[alert.code] = ids
        else:
            self.referral_alerts.pop(alert.code, None)

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
        """The open incidents and referral alarms with a deadline passed."""
        return [incident_id for incident_id, deadline in self.deadlines.items() if deadline <= now]


def _snapshot_fields() -> dict[str, Any]:
    hints = typing.get_type_hints(RosterCache)
    return {f.name: hints[f.name] for f in fields(RosterCache) if f.metadata.get("snapshot", True)}


@functools.cache
def _snapshot_adapter() -> TypeAdapter[Any]:
    """Reads and writes the saved fields as JSON, whatever they are: a field added to the cache, or to a view
    it keeps (``ResponderView``, ``Rotation``, ``Window``), is saved without a change here."""
    return TypeAdapter(TypedDict("RosterSnapshotState", _snapshot_fields()))


@functools.cache
def snapshot_version() -> str:
    """``SNAPSHOT_FORMAT`` and a fingerprint of the saved fields' shape: adding, removing or retyping a field
    anywhere in them makes every older snapshot another version, which is ignored."""
    schema = json.dumps(_snapshot_adapter().json_schema(), sort_keys=True)
    return f"{SNAPSHOT_FORMAT}:{hashlib.sha256(schema.encode()).hexdigest()[:16]}"


class FoldsWhatItStores:
    """For the dispatcher: every store of its (a message's policy, a deadline fired) is folded into its roster cache
    from the aggregates it just saved (``RosterCache.fold_stored``), so the next ``catch_up`` has nothing to read."""

    known: RosterCache

    def _record(self, processing_event: Any) -> list[Recording]:
        recordings = super()._record(processing_event)  # type: ignore[misc]
        self.known.fold_stored(recordings, processing_event.aggregates, (self.recorder, self.repository))  # type: ignore[attr-defined]
        return recordings
