"""The read models' store: their tables and the stream position they were built to, in the projections
application's own database (its SQLite file, or PostgreSQL), as an eventsourcing ``TrackingRecorder``.

Like the views in eventsourcing's projection examples, it records each change to its tables and the position it
came from in one transaction (``recording``): the position first, so a batch applied before stops there with
IntegrityError. ``SQLiteReadModelStore`` and ``PostgresReadModelStore`` add eventsourcing's tracking table for
each backend; the SQL of the tables is written once, with ``%s`` placeholders that become ``?`` on SQLite. The
read side (what the use cases query) is ``SqlReadModelQueries`` in sql_read_queries.py. Together they are the
``ReadModelStore`` port of services/projections/stores.py.

What says something about a person is sealed (in each table's ``body`` column) with the application's compressor
and AES cipher when a key is set, so PHI is encrypted at rest here exactly as in the event stores: event bodies
and dead letters; an incident's kind (an overdose, a suicidal crisis) and service zone; a task's rule (which names
the crisis it follows up), owner role (which hints at it), outcome, note, basis and history; staff names and
phone numbers; an incident's location and dispatch stage (the board's). What stays plain is what SQL filters,
orders or groups on, or what says nothing about anyone: ids, the opaque short and task codes, priorities (the
overdue gauge groups tasks by it), statuses, times (filtered and ordered on), counts, staff roles and supervisors,
how a responder was involved, and the phone network's delivery statuses (message SID, status, error code).
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, PersistenceError, Recorder, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from services.contract.events import Envelope, decode_event
from services.projections.adapters.sql_audit_log import SqlAuditLog
from services.projections.adapters.sql_bulk_load import (
    INSERT_TIMELINE,
    BulkLoad,
    postgres_transaction,
    sqlite_transaction,
)
from services.projections.adapters.sql_read_queries import SqlReadModelQueries
from services.projections.adapters.sql_values import Sealer
from services.projections.domain.followups import TaskState
from services.projections.domain.progress import Progress, RecordedEvent
from services.projections.domain.responder_view import StaffContact
from services.projections.stores import iso, parse_time

SCHEMA_VERSION = "5"  # 2: dead letters; 3: kind, zone, task rule, owner role, outcome and staff names sealed;
# 4: staff phone numbers (sealed), for the responder's incident page; 5: the board's location and dispatch stage
# (sealed), the phone network's delivery statuses
CACHE_INCIDENTS = 4096


class SqlReadModelStore(SqlReadModelQueries, TrackingRecorder):
    """Tables: timeline (every incident event, sealed), incidents, people, tasks, responders, dead letters, meta;
    and the tracking table (the stream position they were built to).

    Construct one with ``read_model_store``. Raises PersistenceError when the database fails.
    """

    tracking_table_name: str

    def __init__(self, datastore: Any, *, sealer: Sealer, prefix: str, **tracking_options: Any) -> None:
        super().__init__(datastore, **tracking_options)
        self.sealer = sealer
        self.sqlite = isinstance(datastore, SQLiteDatastore)
        self.t = {
            name: f"{prefix}_rm_{name}"
            for name in ("timeline", "incidents", "people", "tasks", "responders", "dead_letters", "deliveries", "meta")
        }
        self._cache: OrderedDict[UUID, list[RecordedEvent]] = OrderedDict()
        self._bulk: BulkLoad | None = None  # while a replay writes (bulk_load)
        self._statements: dict[str, str] = {}  # statement as written -> as this backend runs it

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        sql = self._statements.get(statement)
        if sql is None:
            sql = statement.format(**self.t)
            sql = self._statements[statement] = sql.replace("%s", "?") if self.sqlite else sql
        return sql

    def execute(self, cursor: Any, statement: str, params: tuple | list = ()) -> None:
        cursor.execute(self._sql(statement), tuple(params))

    def rows(self, cursor: Any, statement: str, params: tuple | list = ()) -> list[dict[str, Any]]:
        cursor.execute(self._sql(statement), tuple(params))
        return [dict(row) for row in cursor.fetchall()]

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        """A transaction; SQLite's own errors are raised as eventsourcing's (store errors, to be retried)."""
        try:
            if commit and self._bulk is not None:
                bulk_transaction = sqlite_transaction if self.sqlite else postgres_transaction
                with bulk_transaction(self.datastore) as cursor:
                    yield cursor
                return
            with self.datastore.transaction(commit=commit) as cursor:
                yield cursor
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        except sqlite3.Error as exc:
            raise PersistenceError(str(exc)) from exc

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Write the transactions inside without waiting for each to reach the disk, and make them all durable
        before returning (a replay: many batches, each with its stream position, and no other writer of the
        tables meanwhile). Rows and transactions are the same as outside; fewer statements write them
        (adapters/sql_bulk_load.py).

        Each commit inside is atomic and in order as always; what it skips is the flush to disk (SQLite:
        ``synchronous=NORMAL`` in WAL mode; PostgreSQL: ``synchronous_commit`` off). A process that dies loses
        nothing; a power cut may lose the last batches, never part of one, and their position with them, so a
        replay carries on from the last batch that reached the disk. On the way out one ordinary transaction
        commits, which flushes everything before it.
        """
        fresh = not self.query("SELECT 1 AS found FROM {timeline} LIMIT 1")
        self._bulk = BulkLoad(fresh)
        try:
            yield
        finally:
            self._bulk = None
        with self.transaction(commit=True) as cursor:  # a write, so the commit flushes every frame before it
            self.execute(
                cursor,
                "INSERT INTO {meta} (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                ("schema_version", SCHEMA_VERSION),
            )

    def query(self, statement: str, params: tuple | list = ()) -> list[dict[str, Any]]:
        with self.transaction(commit=False) as cursor:
            return self.rows(cursor, statement, params)

    @contextmanager
    def recording(self, tracking: Tracking) -> Iterator[Any]:
        """One transaction for a change to the tables and the stream position it came from (``tracking``).

        The position is recorded first, so a change applied before stops there: IntegrityError when that
        position (or a later one) is already recorded. Rolled back, with the cached events forgotten, on any error.
        """
        bulk = self._bulk
        try:
            with self.transaction(commit=True) as cursor:
                self._insert_tracking(cursor, tracking)
                yield cursor
                if bulk is not None:
                    bulk.flush(cursor, self._sql)
        except BaseException:
            self.forget()
            if bulk is not None:
                bulk.discard()
            raise
        if bulk is not None:
            bulk.committed()

    def create_tables(self) -> None:
        """The tracking table and the read-model tables; tables of an older layout are dropped first (the caller
        then replays the stream into the new ones)."""
        self.create_table()
        blob = "BLOB" if self.sqlite else "BYTEA"
        big = "INTEGER" if self.sqlite else "BIGINT"
        statements = [
            "CREATE TABLE IF NOT EXISTS {meta} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            f"""CREATE TABLE IF NOT EXISTS {{timeline}} (
                seq {big} PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, incident_id TEXT NOT NULL, type TEXT NOT NULL,
                occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, body {blob} NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS {timeline}_by_incident ON {timeline} (incident_id, seq)",
            "CREATE INDEX IF NOT EXISTS {timeline}_by_type ON {timeline} (type, occurred_at)",  # kits left, by month
            f"""CREATE TABLE IF NOT EXISTS {{deliveries}} (
                seq {big} PRIMARY KEY, message_sid TEXT NOT NULL, status TEXT NOT NULL, error_code INTEGER,
                occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS {deliveries}_by_message ON {deliveries} (message_sid, seq)",
            f"""CREATE TABLE IF NOT EXISTS {{incidents}} (
                incident_id TEXT PRIMARY KEY, short_code TEXT, priority TEXT,
                status TEXT NOT NULL, reported_at TEXT, first_page_at TEXT, responder_notified_at TEXT,
                acknowledged_at TEXT, en_route_at TEXT, on_scene_at TEXT, closed_at TEXT,
                escalations INTEGER NOT NULL, unfilled INTEGER NOT NULL, doc_status TEXT NOT NULL,
                gaps INTEGER NOT NULL, last_seq {big} NOT NULL, last_recorded_at TEXT NOT NULL,
                body {blob} NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS {incidents}_by_status ON {incidents} (status, reported_at)",
            """CREATE TABLE IF NOT EXISTS {people} (
                incident_id TEXT NOT NULL, responder_id TEXT NOT NULL, involvement TEXT NOT NULL,
                PRIMARY KEY (incident_id, responder_id))""",
            "CREATE INDEX IF NOT EXISTS {people}_by_responder ON {people} (responder_id)",
            f"""CREATE TABLE IF NOT EXISTS {{tasks}} (
                task_id TEXT PRIMARY KEY, incident_id TEXT NOT NULL,
                assignee_id TEXT, priority TEXT NOT NULL, task_code TEXT NOT NULL, status TEXT NOT NULL,
                created_at TEXT NOT NULL, due_at TEXT NOT NULL, deadline_at TEXT, completed_at TEXT,
                overdue_since TEXT, overdue_count INTEGER NOT NULL, body {blob} NOT NULL,
                last_seq {big} NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS {tasks}_by_assignee ON {tasks} (assignee_id, status, due_at)",
            f"""CREATE TABLE IF NOT EXISTS {{responders}} (
                responder_id TEXT PRIMARY KEY, role TEXT NOT NULL, supervisor_id TEXT,
                retired INTEGER NOT NULL, last_seq {big} NOT NULL, body {blob} NOT NULL)""",
            f"""CREATE TABLE IF NOT EXISTS {{dead_letters}} (
                seq {big} PRIMARY KEY, consumer TEXT NOT NULL, original_subject TEXT NOT NULL,
                original_sequence {big} NOT NULL, incident_id TEXT, occurred_at TEXT NOT NULL,
                recorded_at TEXT NOT NULL, body {blob} NOT NULL)""",
        ]
        if self.schema_version() not in (None, SCHEMA_VERSION):
            self.drop_tables()  # an older layout; the caller replays the stream into the new one
        with self.transaction(commit=True) as cursor:
            for statement in statements:
                self.execute(cursor, statement)
            self.execute(
                cursor,
                "INSERT INTO {meta} (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                ("schema_version", SCHEMA_VERSION),
            )

    def drop_tables(self) -> None:
        """Remove every read-model table (a rebuild starts from nothing)."""
        with self.transaction(commit=True) as cursor:
            for table in self.t.values():
                self.execute(cursor, f"DROP TABLE IF EXISTS {table}")
        self._cache.clear()

    def forget_position(self, application_name: str) -> None:
        """Remove the recorded position of ``application_name`` (a replay then records positions from 1 again)."""
        with self.transaction(commit=True) as cursor:
            self.execute(
                cursor, f"DELETE FROM {self.tracking_table_name} WHERE application_name = %s", (application_name,)
            )

    def has_current_layout(self) -> bool:
        """True when the tables exist in this code's layout (False: none yet, or an older layout)."""
        return self.schema_version() == SCHEMA_VERSION

    def schema_version(self) -> str | None:
        """The tables' schema version; None when they do not exist yet."""
        try:
            rows = self.query("SELECT value FROM {meta} WHERE key = %s", ("schema_version",))
        except PersistenceError:
            return None
        return rows[0]["value"] if rows else None

    # -- the write side (inside the caller's transaction) ------------------------------------------------------

    def has_event(self, cursor: Any, event_id: UUID) -> bool:
        if self._bulk is not None:
            known = self._bulk.knows_event(event_id)
            if known is not None:
                return known
            self._bulk.flush(cursor, self._sql)
        return bool(self.rows(cursor, "SELECT 1 AS found FROM {timeline} WHERE event_id = %s", (str(event_id),)))

    def add_event(self, cursor: Any, recorded: RecordedEvent) -> None:
        event = recorded.event
        cached = self.events_for_update(cursor, event.incident_id)  # before the insert: the cache gets it below
        row = (
            recorded.sequence,
            str(event.id),
            str(event.incident_id),
            event.type,
            iso(event.occurred_at),
            iso(recorded.recorded_at),
            self.sealer.seal_json(event.model_dump_json().encode()),
        )
        if self._bulk is not None:
            self._bulk.add(row, event.id, event.incident_id)  # inserted with the transaction's others
        else:
            self.execute(cursor, INSERT_TIMELINE, row)
        cached.append(recorded)

    def events_for_update(self, cursor: Any, incident_id: UUID) -> list[RecordedEvent]:
        """The incident's events, read through a cache (the writer is the only one changing them)."""
        cached = self._cache.get(incident_id)
        if cached is None:
            bulk = self._bulk
            if bulk is None:
                cached = self._load_events(cursor, incident_id)
            elif bulk.has_no_events(incident_id):
                cached = []
            else:
                bulk.flush(cursor, self._sql)  # rows this transaction queued are read back too
                cached = self._load_events(cursor, incident_id)
            self._cache[incident_id] = cached
            if len(self._cache) > CACHE_INCIDENTS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(incident_id)
        return cached

    def forget(self, incident_id: UUID | None = None) -> None:
        """Drop cached events after a rolled-back transaction."""
        if incident_id is None:
            self._cache.clear()
        else:
            self._cache.pop(incident_id, None)

    def incident_events(self, incident_id: UUID) -> list[RecordedEvent]:
        """The incident's events in stream order, as stored (not through the writer's cache)."""
        with self.transaction(commit=False) as cursor:
            return self._load_events(cursor, incident_id)

    def _load_events(self, cursor: Any, incident_id: UUID) -> list[RecordedEvent]:
        rows = self.rows(
            cursor,
            "SELECT seq, recorded_at, body FROM {timeline} WHERE incident_id = %s ORDER BY seq",
            (str(incident_id),),
        )
        return [self._recorded(row) for row in rows]

    def _recorded(self, row: dict[str, Any]) -> RecordedEvent:
        event: Envelope = decode_event(self.sealer.unseal_json(row["body"]))
        return RecordedEvent(int(row["seq"]), parse_time(row["recorded_at"]), event)  # type: ignore[arg-type]

    def save_incident(self, cursor: Any, progress: Progress, doc_status: str, gaps: int, last: RecordedEvent) -> None:
        columns = {
            "incident_id": str(progress.incident_id),
            "short_code": progress.short_code,
            "priority": progress.priority,
            "status": progress.status,
            "reported_at": iso(progress.reported_at),
            "first_page_at": iso(progress.first_page_at),
            "responder_notified_at": iso(progress.responder_notified_at),
            "acknowledged_at": iso(progress.acknowledged_at),
            "en_route_at": iso(progress.en_route_at),
            "on_scene_at": iso(progress.on_scene_at),
            "closed_at": iso(progress.closed_at),
            "escalations": progress.escalations,
            "unfilled": int(progress.unfilled),
            "doc_status": doc_status,
            "gaps": gaps,
            "last_seq": last.sequence,
            "last_recorded_at": iso(last.recorded_at),
            "body": self.sealer.seal(progress.board_facts()),
        }
        incident = columns["incident_id"]
        people = sorted(progress.people().items(), key=lambda item: str(item[0]))
        statements = [
            (_upsert_statement("incidents", "incident_id", tuple(columns)), tuple(columns.values())),
            ("DELETE FROM {people} WHERE incident_id = %s", (incident,)),
            *(
                (
                    "INSERT INTO {people} (incident_id, responder_id, involvement) VALUES (%s, %s, %s)",
                    (incident, str(r), how),
                )
                for r, how in people
            ),
        ]
        if self._bulk is not None:  # executed with the transaction's other incidents', statement by statement
            self._bulk.save_incident(cursor, self._sql, progress.incident_id, statements)
            return
        for statement, params in statements:
            self.execute(cursor, statement, params)

    def save_task(self, cursor: Any, task: TaskState, sequence: int) -> None:
        columns = {
            "task_id": str(task.task_id),
            "incident_id": str(task.incident_id),
            "assignee_id": str(task.assignee_id) if task.assignee_id else None,
            "priority": task.priority,
            "task_code": task.task_code,
            "status": task.status,
            "created_at": iso(task.created_at),
            "due_at": iso(task.due_at),
            "deadline_at": iso(task.deadline_at),
            "completed_at": iso(task.completed_at),
            "overdue_since": iso(task.overdue_since),
            "overdue_count": task.overdue_count,
            "body": self.sealer.seal(
                {
                    "rule": task.rule,
                    "owner_role": task.owner_role,
                    "outcome": task.outcome,
                    "basis": task.basis,
                    "note": task.note,
                    "completed_by": task.completed_by,
                    "cancel_reason": task.cancel_reason,
                    "history": [{**h, "at": iso(h["at"])} for h in task.history],
                    "attempts": [{**a, "at": iso(a["at"])} for a in task.attempts],
                }
            ),
            "last_seq": sequence,
        }
        self._upsert(cursor, "tasks", "task_id", columns)

    def add_dead_letter(self, cursor: Any, recorded: RecordedEvent, incident_id: UUID | None) -> None:
        """A message a consumer gave up on. Its reason and payload may quote PHI: sealed like the timeline."""
        data = recorded.event.data
        self.execute(
            cursor,
            "INSERT INTO {dead_letters} (seq, consumer, original_subject, original_sequence, incident_id, "
            "occurred_at, recorded_at, body) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                recorded.sequence,
                data.consumer,
                data.original_subject,
                data.stream_sequence,
                str(incident_id) if incident_id else None,
                iso(recorded.event.occurred_at),
                iso(recorded.recorded_at),
                self.sealer.seal({"reason": data.reason, "payload": data.original_payload}),
            ),
        )

    def add_delivery_status(self, cursor: Any, recorded: RecordedEvent) -> None:
        """What the phone network said of a sent text (``sms.status_updated``): no incident on it, so it is kept by
        its message's SID, and a timeline folds it into that message's row. Its phone number is not kept."""
        data = recorded.event.data
        self.execute(
            cursor,
            "INSERT INTO {deliveries} (seq, message_sid, status, error_code, occurred_at, recorded_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (
                recorded.sequence,
                data.message_sid,
                data.status,
                data.error_code,
                iso(recorded.event.occurred_at),
                iso(recorded.recorded_at),
            ),
        )

    def save_responder(self, cursor: Any, responder_id: UUID, staff: StaffContact, sequence: int) -> None:
        columns = {
            "responder_id": str(responder_id),
            "role": staff.role,
            "supervisor_id": str(staff.supervisor_id) if staff.supervisor_id else None,
            "retired": 0,
            "last_seq": sequence,
            "body": self.sealer.seal({"name": staff.name, "phone": staff.phone}),
        }
        self._upsert(cursor, "responders", "responder_id", columns)

    def retire_responder(self, cursor: Any, responder_id: UUID, sequence: int) -> None:
        self.execute(
            cursor,
            "UPDATE {responders} SET retired = 1, last_seq = %s WHERE responder_id = %s",
            (sequence, str(responder_id)),
        )

    def _upsert(self, cursor: Any, table: str, key: str, columns: dict[str, Any]) -> None:
        cursor.execute(self._sql(_upsert_statement(table, key, tuple(columns))), tuple(columns.values()))


@cache
def _upsert_statement(table: str, key: str, names: tuple[str, ...]) -> str:
    """Insert a row of ``table`` (its columns ``names``), or update the row with the same ``key``."""
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != key)
    return (
        f"INSERT INTO {{{table}}} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


class SQLiteReadModelStore(SqlReadModelStore, SQLiteTrackingRecorder):
    tracking_table_name = "tracking"  # eventsourcing's SQLite tracking table has this name, always


class PostgresReadModelStore(SqlReadModelStore, PostgresTrackingRecorder):
    pass


def read_model_store(beside: Recorder, sealer: Sealer, prefix: str) -> SqlReadModelStore:
    """The read models' store on the database of ``beside`` (the application's own recorder), sharing its tracking
    table: the position is where the application has always kept it, so an upgraded store carries on from it."""
    datastore = beside.datastore  # type: ignore[attr-defined]
    if isinstance(datastore, SQLiteDatastore):
        return SQLiteReadModelStore(datastore, sealer=sealer, prefix=prefix)
    tracking_table_name = beside.tracking_table_name  # type: ignore[attr-defined]
    return PostgresReadModelStore(datastore, sealer=sealer, prefix=prefix, tracking_table_name=tracking_table_name)


def open_sql_stores(beside: Application, prefix: str) -> tuple[SqlReadModelStore, SqlAuditLog]:
    """The ``OpenStores`` port: the read models' tables and the audit log in the database of ``beside`` (the read
    models' own application), sealed with its compressor and cipher."""
    store = read_model_store(beside.recorder, Sealer(beside.mapper.compressor, beside.mapper.cipher), prefix)
    audit = SqlAuditLog(store.datastore, prefix=prefix)
    audit.create_table()
    return store, audit
