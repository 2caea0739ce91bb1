"""A replay's way of writing the read models' tables (``SqlReadModelStore.bulk_load``): the same rows, in the same
transactions, with fewer statements and without waiting for the disk at each commit.

A replay (services/projections/rebuild.py) is the only writer of the tables while it runs, and everything it
writes comes from the stream with its position, so inside ``bulk_load``:

- each transaction's timeline rows are inserted together, many rows a statement, and its incidents' rows (the
  incident, its people) one kind of statement after the other (``executemany``), at its end or before anything in
  it reads the timeline; each incident is saved once a transaction (``ReadModels.apply_batch``), and one saved
  again flushes what was queued first, so every incident's statements still run in their order;
- whether an event is on the timeline already (the same event re-published after the stream's de-duplication
  window) is answered from the ids this replay wrote, without a query, when the timeline was empty as the replay
  began (a rebuild after ``reset``); and an incident this replay has not written yet has no events to read back;
- commits are not flushed to the disk one by one (``sqlite_transaction``, ``postgres_transaction``).

Whatever a transaction queued or learnt is dropped with it when it rolls back (``discard``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any
from uuid import UUID

KNOWN_IDS_LIMIT = 1_000_000
"""Event ids a replay keeps in memory (about 80 MB at the limit); past it, it asks the table, as the live writer
does."""

TIMELINE_COLUMNS = "(seq, event_id, incident_id, type, occurred_at, recorded_at, body)"
INSERT_TIMELINE = f"INSERT INTO {{timeline}} {TIMELINE_COLUMNS} VALUES (%s, %s, %s, %s, %s, %s, %s)"
ROWS_PER_INSERT = 128
"""Timeline rows one bulk statement inserts: 896 parameters, under SQLite's oldest limit (999). One statement is
one call into the database, which runs outside Python's interpreter lock; ``executemany`` takes the lock back
after each row, and a replay reading the stream in the other thread then waits for it row by row."""


@cache
def insert_timeline(rows: int) -> str:
    """INSERT_TIMELINE for ``rows`` rows (placeholders ``%s``, table ``{timeline}``: as the store writes SQL)."""
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * rows)
    return f"INSERT INTO {{timeline}} {TIMELINE_COLUMNS} VALUES {values}"


class BulkLoad:
    """What one bulk load knows about the timeline, and the rows its open transaction has not inserted yet.

    ``fresh``: the timeline was empty when the load began, so every row in it is one this load wrote (and
    committed): ``ids`` and ``incidents`` are then the whole truth, and a question they do not answer is "no".
    """

    def __init__(self, fresh: bool) -> None:
        self.fresh = fresh
        self.ids: set[int] = set()  # event ids (UUID.int) on the timeline, committed
        self.incidents: set[UUID] = set()  # incidents with rows on the timeline, committed
        self.rows: list[tuple[Any, ...]] = []  # this transaction's timeline rows, not inserted yet
        self.new_ids: set[int] = set()  # this transaction's event ids
        self.new_incidents: set[UUID] = set()  # incidents this transaction added rows to
        self.statements: dict[str, list[Any]] = {}  # this transaction's incident statements, each with its params
        self.saved: set[UUID] = set()  # incidents whose statements are queued

    def knows_event(self, event_id: UUID) -> bool | None:
        """True / False when the ids tell; None when only the table can (not fresh)."""
        key = event_id.int
        if key in self.ids or key in self.new_ids:
            return True
        return False if self.fresh else None

    def has_no_events(self, incident_id: UUID) -> bool:
        """True when the incident certainly has no rows on the timeline (nothing to read back)."""
        return self.fresh and incident_id not in self.incidents and incident_id not in self.new_incidents

    def add(self, row: tuple[Any, ...], event_id: UUID, incident_id: UUID) -> None:
        self.rows.append(row)
        self.new_ids.add(event_id.int)
        self.new_incidents.add(incident_id)

    def save_incident(
        self, cursor: Any, sql: Callable[[str], str], incident_id: UUID, statements: list[tuple[str, Any]]
    ) -> None:
        """Queue an incident's statements (its row, its people), in order; their kinds are run one after another."""
        if incident_id in self.saved:
            self.flush(cursor, sql)
        self.saved.add(incident_id)
        for statement, params in statements:
            self.statements.setdefault(statement, []).append(params)

    def flush(self, cursor: Any, sql: Callable[[str], str]) -> None:
        """Run what is queued in the open transaction (``sql``: the store's statement as the backend runs it)."""
        rows, self.rows = self.rows, []
        for start in range(0, len(rows), ROWS_PER_INSERT):
            part = rows[start : start + ROWS_PER_INSERT]
            cursor.execute(sql(insert_timeline(len(part))), [value for row in part for value in row])
        statements, self.statements, self.saved = self.statements, {}, set()
        for statement, params in statements.items():
            cursor.executemany(sql(statement), params)

    def committed(self) -> None:
        """The open transaction committed: what it wrote is known from now on."""
        self.ids |= self.new_ids
        self.incidents |= self.new_incidents
        self.discard()
        if len(self.ids) > KNOWN_IDS_LIMIT:  # from here on the table answers
            self.fresh = False
            self.ids.clear()
            self.incidents.clear()

    def discard(self) -> None:
        """The open transaction is over (rolled back, or its news taken by ``committed``)."""
        self.rows = []
        self.new_ids = set()
        self.new_incidents = set()
        self.statements = {}
        self.saved = set()


@contextmanager
def sqlite_transaction(datastore: Any) -> Iterator[Any]:
    """A write transaction on SQLite with ``synchronous=NORMAL`` (in WAL mode: the commit is not flushed to the
    disk; a checkpoint, or the next FULL commit, flushes it). The level may not change inside a transaction, so
    it is set around one, on the connection the transaction uses, and restored after it."""
    with datastore.get_connection(commit=True) as connection:
        raw = connection._sqlite_conn
        level = raw.execute("PRAGMA synchronous").fetchone()[0]
        raw.execute("PRAGMA synchronous = NORMAL")
        try:
            with connection.transaction(commit=True) as cursor:
                yield cursor
        finally:
            raw.execute(f"PRAGMA synchronous = {int(level)}")


@contextmanager
def postgres_transaction(datastore: Any) -> Iterator[Any]:
    """A write transaction on PostgreSQL whose commit does not wait for the WAL to reach the disk."""
    with datastore.transaction(commit=True) as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield cursor
