"""The read-model tables, in the projections application's own database (its SQLite file, or PostgreSQL).

The tables live beside eventsourcing's tracking table so that every change to them and the stream position
it came from commit in one transaction (the caller passes the cursor). What says something about a person is
sealed (in each table's ``body`` column) with the application's compressor and AES cipher when a key is set, so
PHI is encrypted at rest here exactly as in the event stores: event bodies and dead letters; an incident's kind
(an overdose, a suicidal crisis) and service zone; a task's rule (which names the crisis it follows up), owner
role (which hints at it), outcome, note, basis and history; staff names. What stays plain is what SQL filters,
orders or groups on, or what says nothing about anyone: ids, the opaque short and task codes, priorities (the
overdue gauge groups tasks by it), statuses, times (filtered and ordered on), counts, staff roles and
supervisors, and how a responder was involved.

SQL is written once with ``%s`` placeholders; on SQLite they become ``?``.
"""

from __future__ import annotations

import json
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, PersistenceError
from eventsourcing.sqlite import SQLiteDatastore

from services.contract.events import Envelope, decode_event
from services.projections.domain.followups import TaskState
from services.projections.domain.progress import Progress, RecordedEvent

SCHEMA_VERSION = "3"  # 2: dead letters; 3: kind, zone, task rule, owner role, outcome and staff names sealed
CACHE_INCIDENTS = 4096


def iso(at: datetime | None) -> str | None:
    """A UTC timestamp as fixed-width ISO text, so text order is time order."""
    return at.astimezone(UTC).isoformat(timespec="microseconds") if at is not None else None


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class Sealer:
    """Compress then encrypt (and back), with the application's own compressor and cipher (either may be None)."""

    compressor: Any
    cipher: Any

    def seal(self, value: Any) -> bytes:
        data = json.dumps(value, default=str, separators=(",", ":")).encode()
        if self.compressor is not None:
            data = self.compressor.compress(data)
        if self.cipher is not None:
            data = self.cipher.encrypt(data)
        return data

    def unseal(self, data: bytes) -> Any:
        data = bytes(data)
        if self.cipher is not None:
            data = self.cipher.decrypt(data)
        if self.compressor is not None:
            data = self.compressor.decompress(data)
        return json.loads(data)


class ReadModelStore:
    """Tables: timeline (every incident event, sealed), incidents, people, tasks, responders, dead letters, meta.

    The read side returns rows with the sealed ``body`` opened into their fields (an incident's ``kind``, a
    task's ``rule``, ``note``..., a responder's ``name``), so callers never see sealed bytes.
    """

    def __init__(self, datastore: Any, sealer: Sealer, prefix: str) -> None:
        self.datastore = datastore
        self.sealer = sealer
        self.sqlite = isinstance(datastore, SQLiteDatastore)
        self.t = {
            name: f"{prefix}_rm_{name}"
            for name in ("timeline", "incidents", "people", "tasks", "responders", "dead_letters", "meta")
        }
        self._cache: OrderedDict[UUID, list[RecordedEvent]] = OrderedDict()

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        statement = statement.format(**self.t)
        return statement.replace("%s", "?") if self.sqlite else statement

    def execute(self, cursor: Any, statement: str, params: tuple | list = ()) -> None:
        cursor.execute(self._sql(statement), tuple(params))

    def rows(self, cursor: Any, statement: str, params: tuple | list = ()) -> list[dict[str, Any]]:
        cursor.execute(self._sql(statement), tuple(params))
        return [dict(row) for row in cursor.fetchall()]

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        """A transaction; SQLite's own errors are raised as eventsourcing's (store errors, to be retried)."""
        try:
            with self.datastore.transaction(commit=commit) as cursor:
                yield cursor
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        except sqlite3.Error as exc:
            raise PersistenceError(str(exc)) from exc

    def query(self, statement: str, params: tuple | list = ()) -> list[dict[str, Any]]:
        with self.transaction(commit=False) as cursor:
            return self.rows(cursor, statement, params)

    def create_tables(self) -> None:
        blob = "BLOB" if self.sqlite else "BYTEA"
        big = "INTEGER" if self.sqlite else "BIGINT"
        statements = [
            "CREATE TABLE IF NOT EXISTS {meta} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            f"""CREATE TABLE IF NOT EXISTS {{timeline}} (
                seq {big} PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, incident_id TEXT NOT NULL, type TEXT NOT NULL,
                occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, body {blob} NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS {timeline}_by_incident ON {timeline} (incident_id, seq)",
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

    def schema_version(self) -> str | None:
        """The tables' schema version; None when they do not exist yet."""
        try:
            rows = self.query("SELECT value FROM {meta} WHERE key = %s", ("schema_version",))
        except PersistenceError:
            return None
        return rows[0]["value"] if rows else None

    # -- the write side (inside the caller's transaction) ------------------------------------------------------

    def has_event(self, cursor: Any, event_id: UUID) -> bool:
        return bool(self.rows(cursor, "SELECT 1 AS found FROM {timeline} WHERE event_id = %s", (str(event_id),)))

    def add_event(self, cursor: Any, recorded: RecordedEvent) -> None:
        event = recorded.event
        cached = self.events_for_update(cursor, event.incident_id)  # before the insert: the cache gets it below
        self.execute(
            cursor,
            "INSERT INTO {timeline} (seq, event_id, incident_id, type, occurred_at, recorded_at, body) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                recorded.sequence,
                str(event.id),
                str(event.incident_id),
                event.type,
                iso(event.occurred_at),
                iso(recorded.recorded_at),
                self.sealer.seal(event.model_dump(mode="json")),
            ),
        )
        cached.append(recorded)

    def events_for_update(self, cursor: Any, incident_id: UUID) -> list[RecordedEvent]:
        """The incident's events, read through a cache (the writer is the only one changing them)."""
        cached = self._cache.get(incident_id)
        if cached is None:
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

    def _load_events(self, cursor: Any, incident_id: UUID) -> list[RecordedEvent]:
        rows = self.rows(
            cursor,
            "SELECT seq, recorded_at, body FROM {timeline} WHERE incident_id = %s ORDER BY seq",
            (str(incident_id),),
        )
        return [self._recorded(row) for row in rows]

    def _recorded(self, row: dict[str, Any]) -> RecordedEvent:
        event: Envelope = decode_event(json.dumps(self.sealer.unseal(row["body"])).encode())
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
            "body": self.sealer.seal({"kind": progress.kind, "zone": progress.zone}),
        }
        self._upsert(cursor, "incidents", "incident_id", columns)
        self.execute(cursor, "DELETE FROM {people} WHERE incident_id = %s", (str(progress.incident_id),))
        for responder_id, involvement in sorted(progress.people().items(), key=lambda item: str(item[0])):
            self.execute(
                cursor,
                "INSERT INTO {people} (incident_id, responder_id, involvement) VALUES (%s, %s, %s)",
                (str(progress.incident_id), str(responder_id), involvement),
            )

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

    def save_responder(
        self, cursor: Any, responder_id: UUID, name: str, role: str, supervisor_id: UUID | None, sequence: int
    ) -> None:
        columns = {
            "responder_id": str(responder_id),
            "role": role,
            "supervisor_id": str(supervisor_id) if supervisor_id else None,
            "retired": 0,
            "last_seq": sequence,
            "body": self.sealer.seal({"name": name}),
        }
        self._upsert(cursor, "responders", "responder_id", columns)

    def retire_responder(self, cursor: Any, responder_id: UUID, sequence: int) -> None:
        self.execute(
            cursor,
            "UPDATE {responders} SET retired = 1, last_seq = %s WHERE responder_id = %s",
            (sequence, str(responder_id)),
        )

    def _upsert(self, cursor: Any, table: str, key: str, columns: dict[str, Any]) -> None:
        names = list(columns)
        updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != key)
        statement = (
            f"INSERT INTO {{{table}}} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )
        self.execute(cursor, statement, [columns[n] for n in names])

    # -- the read side ------------------------------------------------------------------------------------------

    def incident_events(self, incident_id: UUID) -> list[RecordedEvent]:
        with self.transaction(commit=False) as cursor:
            return self._load_events(cursor, incident_id)

    def incident(self, incident_id: UUID) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM {incidents} WHERE incident_id = %s", (str(incident_id),))
        return self._opened(rows[0]) if rows else None

    def incidents(
        self, *, status: str | None = None, responder_id: UUID | None = None, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Newest first; only those ``responder_id`` was involved in, when given."""
        where, params = [], []
        if status is not None:
            where.append("i.status = %s")
            params.append(status)
        if responder_id is not None:
            where.append("i.incident_id IN (SELECT incident_id FROM {people} WHERE responder_id = %s)")
            params.append(str(responder_id))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.query(
            f"SELECT i.* FROM {{incidents}} i {clause} ORDER BY i.reported_at DESC, i.incident_id LIMIT %s",
            [*params, limit],
        )
        return [self._opened(row) for row in rows]

    def involved(self, incident_id: UUID) -> dict[UUID, str]:
        rows = self.query("SELECT responder_id, involvement FROM {people} WHERE incident_id = %s", (str(incident_id),))
        return {UUID(r["responder_id"]): r["involvement"] for r in rows}

    def tasks(
        self, *, assignee_id: UUID | None = None, incident_id: UUID | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        where, params = [], []
        if assignee_id is not None:
            where.append("assignee_id = %s")
            params.append(str(assignee_id))
        if incident_id is not None:
            where.append("incident_id = %s")
            params.append(str(incident_id))
        if status is not None:
            where.append("status = %s")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.query(f"SELECT * FROM {{tasks}} {clause} ORDER BY due_at, task_id", params)
        return [self._opened(r) for r in rows]

    def task(self, task_id: UUID) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM {tasks} WHERE task_id = %s", (str(task_id),))
        return self._opened(rows[0]) if rows else None

    def _opened(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with its sealed ``body`` opened into fields of its own."""
        body = self.sealer.unseal(row.pop("body"))
        return row | body

    def overdue_by_priority(self, now: datetime) -> dict[str, int]:
        """Open follow-up tasks past their due time at ``now``, counted per priority."""
        rows = self.query(
            "SELECT priority, COUNT(*) AS n FROM {tasks} WHERE status = %s AND due_at < %s GROUP BY priority",
            ("open", iso(now)),
        )
        return {str(row["priority"]): int(row["n"]) for row in rows}

    def dead_letters(self, limit: int) -> list[dict[str, Any]]:
        """The newest dead letters first, sealed columns opened."""
        rows = self.query("SELECT * FROM {dead_letters} ORDER BY seq DESC LIMIT %s", (limit,))
        return [self._opened(row) for row in rows]

    def responders(self) -> list[dict[str, Any]]:
        """By name (sealed: sorted here, not by the database)."""
        rows = [self._opened(row) for row in self.query("SELECT * FROM {responders}")]
        return sorted(rows, key=lambda row: (row["name"], row["responder_id"]))

    def metric_rows(self, since: datetime | None, until: datetime | None) -> tuple[list[dict], list[dict]]:
        where, params = ["reported_at IS NOT NULL"], []
        if since is not None:
            where.append("reported_at >= %s")
            params.append(iso(since))
        if until is not None:
            where.append("reported_at < %s")
            params.append(iso(until))
        incidents = [
            self._opened(r) for r in self.query(f"SELECT * FROM {{incidents}} WHERE {' AND '.join(where)}", params)
        ]
        task_where, task_params = [], []
        if since is not None:
            task_where.append("due_at >= %s")
            task_params.append(iso(since))
        if until is not None:
            task_where.append("due_at < %s")
            task_params.append(iso(until))
        clause = f"WHERE {' AND '.join(task_where)}" if task_where else ""
        tasks = self.query(f"SELECT due_at, status, completed_at FROM {{tasks}} {clause}", task_params)
        return incidents, tasks

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every read-model table, sealed columns opened: two stores with equal dumps are equal."""
        result: dict[str, list[dict[str, Any]]] = {}
        orders = {
            "timeline": "seq",
            "incidents": "incident_id",
            "people": "incident_id, responder_id",
            "tasks": "task_id",
            "responders": "responder_id",
            "dead_letters": "seq",
            "meta": "key",
        }
        for name, order in orders.items():
            rows = self.query(f"SELECT * FROM {{{name}}} ORDER BY {order}")
            for row in rows:
                if "body" in row:
                    row["body"] = self.sealer.unseal(row["body"])
            result[name] = rows
        return result
