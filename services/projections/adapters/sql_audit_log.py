"""The audit log of clinical records (HIPAA 164.312(b)): who read or changed which record, when, and whether
a read was allowed. Reads are entered as they are answered; changes as the projections apply the event that
records them (in the same transaction, keyed by the event id, so a redelivered event adds nothing and a
rebuild of the read models adds nothing twice). One append-only table in the projections database, outside
the read models, so a rebuild of the read models never removes it. It holds no PHI: subjects, roles, record
ids and actions only. Nothing deletes rows (retention is at least six years; pruning is an operator's
decision, not the code's).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.projections.adapters.sql_table import DatastoreTable, where_clause
from services.projections.domain.audit import AuditEntry
from services.projections.stores import iso, parse_time


class SqlAuditLog(DatastoreTable):
    """The ``AuditLog`` port (services/projections/stores.py): append and query audit entries. Raises
    PersistenceError when the database fails: the caller must then refuse the read (no record leaves without its
    audit entry)."""

    def __init__(self, datastore: Any, prefix: str = "projections") -> None:
        super().__init__(datastore, f"{prefix}_audit_log", "{audit}")

    def create_table(self) -> None:
        key = "INTEGER PRIMARY KEY AUTOINCREMENT" if self.sqlite else "BIGSERIAL PRIMARY KEY"
        with self._transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    f"CREATE TABLE IF NOT EXISTS {{audit}} (id {key}, at TEXT NOT NULL, subject TEXT NOT NULL, "
                    "role TEXT NOT NULL, responder_id TEXT, action TEXT NOT NULL, record_type TEXT NOT NULL, "
                    "record_id TEXT NOT NULL, outcome TEXT NOT NULL, event_id TEXT)"
                )
            )
            if self.sqlite:  # a table from before write entries: add the column (SQLite has no IF NOT EXISTS here)
                cursor.execute(self._sql("PRAGMA table_info({audit})"))
                columns = [row[1] for row in cursor.fetchall()]
                if "event_id" not in columns:
                    cursor.execute(self._sql("ALTER TABLE {audit} ADD COLUMN event_id TEXT"))
            else:
                cursor.execute(self._sql("ALTER TABLE {audit} ADD COLUMN IF NOT EXISTS event_id TEXT"))
            cursor.execute(self._sql("CREATE UNIQUE INDEX IF NOT EXISTS {audit}_by_event ON {audit} (event_id)"))
            cursor.execute(self._sql("CREATE INDEX IF NOT EXISTS {audit}_by_record ON {audit} (record_id, at)"))
            cursor.execute(self._sql("CREATE INDEX IF NOT EXISTS {audit}_by_subject ON {audit} (subject, at)"))

    def record(self, entry: AuditEntry) -> None:
        """Enter a read (or a refused read), in a transaction of its own."""
        with self._transaction(commit=True) as cursor:
            self._insert(cursor, entry)

    def record_write(self, cursor: Any, entry: AuditEntry) -> None:
        """Enter a change (``refused``: an attempted change the record's state refused when it was applied;
        ``denied``: a caller another service refused, recorded as an ``access.refused`` event), inside the
        caller's transaction; nothing when this event is already entered."""
        self._insert(cursor, entry)

    def _insert(self, cursor: Any, entry: AuditEntry) -> None:
        # a read has no event id (NULLs never conflict); a write's event id is unique, so a repeat adds nothing
        cursor.execute(
            self._sql(
                "INSERT INTO {audit} (at, subject, role, responder_id, action, record_type, record_id, outcome, "
                "event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
            ),
            (
                iso(entry.at),
                entry.subject,
                entry.role,
                str(entry.responder_id) if entry.responder_id else None,
                entry.action,
                entry.record_type,
                entry.record_id,
                entry.outcome,
                str(entry.event_id) if entry.event_id else None,
            ),
        )

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
        """``AuditLog.query``: one SELECT, its WHERE built from the values given."""
        clause, params = where_clause(
            ("subject = %s", subject), ("record_id = %s", record_id), ("at >= %s", iso(since)), ("at < %s", iso(until))
        )
        if record_ids is not None:
            ids = list(record_ids) or [""]  # no record: nothing matches
            any_of = f"record_id IN ({', '.join(['%s'] * len(ids))})"
            clause = f"{clause} AND {any_of}" if clause else f"WHERE {any_of}"
            params = [*params, *ids]
        with self._transaction(commit=False) as cursor:
            cursor.execute(
                self._sql(f"SELECT * FROM {{audit}} {clause} ORDER BY at DESC, id DESC LIMIT %s"), (*params, limit)
            )
            rows = [dict(row) for row in cursor.fetchall()]
        for row in rows:
            row["at"] = parse_time(row["at"])
        return rows

    def subjects(self) -> list[dict[str, Any]]:
        """Everyone the log names (``subject``, and ``responder_id`` when they are a responder), by subject."""
        with self._transaction(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT subject, MAX(responder_id) AS responder_id FROM {audit} GROUP BY subject ORDER BY subject"
                )
            )
            return [dict(row) for row in cursor.fetchall()]
