"""History for ``bench/restart_services.py``: the projections service's five stores (read models and the four desks)
holding N closed incidents, one open follow-up task long overdue, and every position at the end.

Built once per size and cached under ``bench/.cache`` (git ignores it), like ``bench/restart.py``'s dispatcher stores:

1. the roster, then ``TEMPLATE`` incidents through the dispatcher's own use cases in process (bench/restart.py's
   ``Feeder``: reported, two paged, accepted by SMS, en route, on scene, done), keeping the events fed in and the
   contract events its outbox makes of what it stored;
2. those events fed in stream order, each with the next stream sequence, to the projections' own processors in
   process (``ReadModels.handle`` and each desk's ``handle``; a desk only the types its durable's filter sends it),
   the desks' outbox events (``followup.created``, ``notification.requested``, ...) going back on the same stream
   as their relays would put them, and each follow-up task completed by a director (``followup.completed``) once it
   is created, so nothing of the history is open;
3. the rows those incidents added to every table of every store copied ``N / TEMPLATE - 1`` times, every UUID (text
   or hex) and message SID in them renamed per copy, stream sequences shifted by the template's span, and the
   versions of the desks' one-per-desk aggregates (due index, staff directory, person directory, the referral and
   caring desks' books) continued; then each of them is folded from all its events and snapshotted, as the desk
   would have (every desk snapshots them every 50 events);
4. one open incident reported ten days ago (its outreach task due 72 h after, long overdue), fed through the
   processors like the rest; every stream position and every outbox position put at the end.

Stores are SQLite without the event cipher (bodies and event states are JSON, so ids can be renamed in place).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import Tracking

from bench.restart import COPIES, report_data
from bench.restart_projections import template_events
from services.contract.events import (
    Envelope,
    FollowUpCompleted,
    FollowUpCompletedData,
    FollowUpCreated,
    IncidentReported,
    new_event,
)
from services.projections.bootstrap import (
    build_caring_desk,
    build_desk,
    build_person_desk,
    build_projections,
    build_referral_desk,
)
from services.projections.domain.caring import CaringBook
from services.projections.domain.followup_aggregates import DueIndex, StaffDirectory
from services.projections.domain.person_file import PersonDirectory
from services.projections.domain.referral_case import DeadlineBook, ProgramBook
from services.projections.referral_links import ReferralLinks
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from services.runtime.processor import OUTBOX_TRACKING_NAME
from services.runtime.stream import STREAM_NAME

TEMPLATE = 100  # incidents through the real code, copied to make the rest (sizes are multiples of this)
STORES = ("projections", "followups", "referrals", "persons", "caring")
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
SEQUENCE_COLUMNS = {"seq", "last_seq", "original_sequence"}  # stream sequences in the read models' tables
NOT_COPIED = {"tracking", "sqlite_sequence"}


class Processors:
    """The projections service's five processors on one var dir, fed as their durables would feed them."""

    def __init__(self, var_dir: Path, clock: ManualClock) -> None:
        settings = ProjectionsSettings(var_dir=var_dir, credentials_file=None)
        self.read_models = build_projections(settings, clock)
        links = ReferralLinks(b"restart-bench-referral-key-0000")
        self.desks = [
            build_desk(settings, clock),
            build_referral_desk(settings, clock, links),
            build_person_desk(settings, clock),
            build_caring_desk(settings, clock),
        ]
        self.sequence = self.read_models.processed_position()

    def close(self) -> None:
        for app in (self.read_models, *self.desks):
            app.close()

    def feed(self, events: list[Envelope], *, complete_tasks: bool) -> None:
        """Each event (and every event a desk's outbox makes of what it stored) with the next stream sequence."""
        queue = deque(events)
        while queue:
            event = queue.popleft()
            self.sequence += 1
            self.read_models.handle(event, self.sequence)
            for desk in self.desks:
                handled = desk.handled_types()
                if handled is not None and type(event) not in handled:
                    continue
                before = desk.recorder.max_notification_id() or 0
                desk.handle(event, self.sequence)
                for stored in desk.recorder.select_notifications(start=before + 1, limit=10_000):
                    queue.extend(desk.outbox(desk.mapper.to_domain_event(stored)))
            if complete_tasks and isinstance(event, FollowUpCreated):
                queue.append(completed(event))

    def positions_at_end(self) -> None:
        """Every stream position at the last sequence fed, every outbox at its store's last event."""
        for app in (self.read_models, *self.desks):
            if app.processed_position() < self.sequence:
                app.recorder.insert_tracking(Tracking(STREAM_NAME, self.sequence))
        for desk in self.desks:
            last = desk.recorder.max_notification_id() or 0
            if last and (desk.recorder.max_tracking_id(OUTBOX_TRACKING_NAME) or 0) < last:
                desk.recorder.insert_tracking(Tracking(OUTBOX_TRACKING_NAME, last))


def completed(created: FollowUpCreated) -> Envelope:
    data = FollowUpCompletedData(
        task_id=created.data.task_id,
        incident_id=created.data.incident_id,
        outcome="contact_made",
        completed_by="director (benchmark history)",
    )
    at = created.data.due_at - timedelta(hours=1)
    return new_event(
        FollowUpCompleted, data, event_id=uuid4(), occurred_at=at, producer="bench", incident_id=data.incident_id
    )


def open_incident() -> Envelope:
    """An overdose reported ten days ago and never closed: its outreach task was due 72 h after the report."""
    incident_id = uuid4()
    data = report_data(incident_id, "4821")
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    return new_event(
        IncidentReported, data, event_id=uuid4(), occurred_at=at, producer="bench", incident_id=incident_id
    )


# ---- copying rows ---------------------------------------------------------------------------------------------


def stored_rows(path: Path) -> dict[str, tuple[list[str], set[tuple]]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return table_rows(db)


def checkpoint(path: Path) -> None:
    """Everything into the database file (no WAL left beside it to copy or recover)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def table_rows(db: sqlite3.Connection) -> dict[str, tuple[list[str], set[tuple]]]:
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    found = {}
    for table in tables:
        if table in NOT_COPIED or table.endswith("_tracking"):
            continue
        cursor = db.execute(f"SELECT * FROM {table}")  # noqa: S608 - the store's own table names
        found[table] = ([d[0] for d in cursor.description], set(cursor.fetchall()))
    return found


class Renamer:
    """Every UUID (text or 32-hex) not in ``kept`` renamed per copy, consistently across tables and stores."""

    def __init__(self, kept: set[str]) -> None:
        self.kept = {k.replace("-", "") for k in kept}
        self.copy = 0
        self.names: dict[str, str] = {}

    def start(self, copy: int) -> None:
        self.copy, self.names = copy, {}

    def _new(self, match: re.Match) -> str:
        text = match.group(0)
        plain = text.replace("-", "")
        if plain in self.kept:
            return text
        new = self.names.get(plain)
        if new is None:
            new = self.names[plain] = uuid5(COPIES, f"{self.copy}/{plain}").hex
        return new if len(text) == 32 else str(UUID(new))

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return UUID_TEXT.sub(self._new, value)
        if isinstance(value, bytes):
            return UUID_TEXT.sub(self._new, value.decode("latin-1")).encode("latin-1")
        return value


def copy_rows(
    stores: dict[str, Path],
    before: dict[str, dict],
    after: dict[str, dict],
    kept: set[str],
    copies: int,
    span: int,
) -> None:
    """Append ``copies`` copies of the rows the template added (in ``after``, not in ``before``) to every table."""
    renamer = Renamer(kept)
    work = []
    for name, path in stores.items():
        for table, (columns, rows) in after[name].items():
            added = sorted(rows - before[name].get(table, ([], set()))[1], key=repr)
            if added:
                if columns[0] == "id":  # an autoincrement key (the audit log): numbered again on insert
                    columns, added = columns[1:], [row[1:] for row in added]
                work.append((name, path, table, columns, added))
    connections = {name: sqlite3.connect(path) for name, path in stores.items()}
    try:
        for db in connections.values():
            db.execute("PRAGMA synchronous = OFF")
        versions = singleton_versions(work, kept)
        for copy in range(1, copies + 1):
            renamer.start(copy)
            for name, _, table, columns, added in work:
                rows = [
                    copied_row(row, columns, renamer, copy, span, versions, kept, table)
                    for row in added
                    if copied(table, columns, row, kept)
                ]
                marks = ", ".join("?" * len(columns))
                connections[name].executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                    rows,
                )
            if copy % 50 == 0 or copy == copies:
                for db in connections.values():
                    db.commit()
    finally:
        for db in connections.values():
            db.commit()
            db.close()


def singleton_versions(work: list, kept: set[str]) -> dict[tuple[str, str], int]:
    """Per (table, kept aggregate id): how many versions each copy adds (continuing after the template's)."""
    counts: dict[tuple[str, str], int] = {}
    for _, _, table, columns, added in work:
        if table.endswith("snapshots") or "originator_version" not in columns:
            continue
        for row in added:
            if row[0] in kept and row[1] > 1:  # version 1 (created in the template) is not copied
                counts[(table, row[0])] = counts.get((table, row[0]), 0) + 1
    return counts


def copied(table: str, columns: list[str], row: tuple, kept: set[str]) -> bool:
    """Not copied: a kept aggregate's snapshots (taken again at the end) and its creation."""
    if "originator_version" not in columns or row[0] not in kept:
        return True
    return not table.endswith("snapshots") and row[1] > 1


def copied_row(
    row: tuple,
    columns: list[str],
    renamer: Renamer,
    copy: int,
    span: int,
    versions: dict[tuple[str, str], int],
    kept: set[str],
    table: str,
) -> tuple:
    values = []
    for column, value in zip(columns, row, strict=True):
        if column in SEQUENCE_COLUMNS and isinstance(value, int):
            values.append(value + copy * span)
        elif column == "originator_version" and row[0] in kept:
            values.append(value + copy * versions[(table, row[0])])
        else:
            values.append(renamer.value(value))
    return tuple(values)


SINGLETONS = (DueIndex, StaffDirectory, PersonDirectory, CaringBook, ProgramBook, DeadlineBook)


def kept_ids(before: dict[str, dict], roster_events: list[Envelope]) -> set[str]:
    """Ids not renamed in a copy: those the roster phase left in the stores (responders, rotations) and the desks'
    one-per-desk aggregates (the due index, the staff directory, the person directory, ...)."""
    kept = {str(cls.create_id()) for cls in SINGLETONS}
    for event in roster_events:
        kept.update(m.group(0) for m in UUID_TEXT.finditer(event.model_dump_json()))
    for tables in before.values():
        for _, rows in tables.values():
            for row in rows:
                for value in row:
                    if isinstance(value, str | bytes):
                        text = value if isinstance(value, str) else value.decode("latin-1")
                        kept.update(m.group(0) for m in UUID_TEXT.finditer(text))
    return kept | {k.replace("-", "") for k in kept}


def snapshot_singletons(processors: Processors) -> dict[str, float]:
    """Fold each desk's one-per-desk aggregates from all their (copied) events and snapshot them, as the desks that
    snapshot do every 50 events."""
    seconds = {}
    for desk in processors.desks:
        if desk.snapshots is None:
            continue
        for cls in SINGLETONS:
            began = time.perf_counter()
            try:
                desk.take_snapshot(cls.create_id())
            except AggregateNotFoundError:
                continue
            seconds[f"{desk.name}:{cls.__name__}"] = round(time.perf_counter() - began, 2)
    return seconds


def build_projection_stores(directory: Path, closed: int) -> dict[str, Any]:
    """The five stores under ``directory`` (the service's CRISIS_VAR_DIR); returns what was measured building them."""
    if closed % TEMPLATE:
        raise ValueError(f"sizes must be multiples of {TEMPLATE}")
    scratch = directory.parent / f"{directory.name}-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    built: dict[str, Any] = {"closed": closed}
    stores = {name: directory / f"{name}.sqlite" for name in STORES}
    clock = ManualClock(datetime.now(UTC))
    began = time.perf_counter()
    roster_events, incident_events, _ = template_events(scratch, TEMPLATE)
    processors = Processors(directory, clock)
    try:
        processors.feed(roster_events, complete_tasks=False)
        processors.positions_at_end()
        if closed:
            before = {name: stored_rows(path) for name, path in stores.items()}
            start = processors.sequence
            processors.feed(incident_events, complete_tasks=True)
            span = processors.sequence - start
            built["template_seconds"] = round(time.perf_counter() - began, 1)
            built["template_events_per_incident"] = span / TEMPLATE
            after = {name: stored_rows(path) for name, path in stores.items()}
            kept = kept_ids(before, roster_events)
            processors.close()
            began = time.perf_counter()
            copy_rows(stores, before, after, kept, closed // TEMPLATE - 1, span)
            built["copy_seconds"] = round(time.perf_counter() - began, 1)
            processors = Processors(directory, clock)
            processors.sequence = start + span * (closed // TEMPLATE)
            processors.positions_at_end()
            built["snapshots_seconds"] = snapshot_singletons(processors)
        processors.feed([open_incident()], complete_tasks=False)
        processors.positions_at_end()
        built["stream_position"] = processors.sequence
    finally:
        processors.close()
        shutil.rmtree(scratch, ignore_errors=True)
    for path in stores.values():
        checkpoint(path)
    return built
