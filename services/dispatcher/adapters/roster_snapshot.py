"""The roster cache's snapshot, kept as one row of a table in the dispatcher's own store (SQLite or PostgreSQL).

The table sits beside the event tables (``stored_roster_snapshot`` in the dispatcher's SQLite file,
``dispatcher_roster_snapshot`` in PostgreSQL) and is written in its own transaction: the snapshot is a cache
of a deterministic fold of the log, so a lost or stale one only makes the next start fold more of the log.
Instances sharing a store share the row; a save never replaces a snapshot that is further along the log.
When the store's events are encrypted (CRISIS_CIPHER_KEY) the snapshot is too, with the same cipher: it holds the
roster (names, phones, locations). One that cannot be opened (another key, after ``crisis-rotate-key``) is
treated as missing: the next start folds the whole log once and saves a new one.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import Any

from eventsourcing.persistence import Cipher, PersistenceError
from eventsourcing.sqlite import SQLiteDatastore

from services.dispatcher.roster_cache import RosterSnapshots, SavedSnapshot

log = logging.getLogger(__name__)

ROW = "roster"
SETUP_ATTEMPTS = 3


class SqlRosterSnapshots:
    """``RosterSnapshots`` on the datastore of an eventsourcing SQLite or PostgreSQL recorder."""

    def __init__(self, datastore: Any, table: str, *, postgres: bool, cipher: Cipher | None = None) -> None:
        self.datastore = datastore
        self.table = table
        self.cipher = cipher
        mark = "%s" if postgres else "?"
        self.select = f"SELECT version, position, state FROM {table} WHERE name = {mark}"
        self.upsert = (
            f"INSERT INTO {table} AS kept (name, version, position, state) VALUES ({mark}, {mark}, {mark}, {mark}) "
            "ON CONFLICT (name) DO UPDATE SET version = excluded.version, position = excluded.position, "
            "state = excluded.state WHERE excluded.position >= kept.position"
        )
        self.create = (
            f"CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, version TEXT NOT NULL, "
            "position BIGINT NOT NULL, state TEXT NOT NULL)"
        )

    def create_table(self) -> None:
        # two instances creating the table at once can collide in PostgreSQL's catalogue: it exists then
        for attempt in range(1, SETUP_ATTEMPTS + 1):
            try:
                with self.datastore.transaction(commit=True) as cursor:
                    cursor.execute(self.create)
                return
            except PersistenceError:
                if attempt == SETUP_ATTEMPTS:
                    raise
                log.warning("creating %s collided with another instance (attempt %s); retrying", self.table, attempt)
                time.sleep(0.1 * attempt)

    def load(self) -> SavedSnapshot | None:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self.select, (ROW,))
            row = cursor.fetchone()
        if row is None:
            return None
        state = row["state"]
        if self.cipher is not None:
            try:
                state = self.cipher.decrypt(base64.b64decode(state, validate=True)).decode()
            except (ValueError, binascii.Error):
                log.warning("the roster snapshot cannot be opened with this key: it is ignored")
                return None
        return SavedSnapshot(row["version"], int(row["position"]), state)

    def save(self, snapshot: SavedSnapshot) -> None:
        state = snapshot.state
        if self.cipher is not None:
            state = base64.b64encode(self.cipher.encrypt(state.encode())).decode()
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self.upsert, (ROW, snapshot.version, snapshot.position, state))


def roster_snapshots(application: Any) -> RosterSnapshots | None:
    """The snapshot table beside an eventsourcing application's events (created if missing), encrypted as its
    events are; None for a store without SQL."""
    recorder = application.recorder
    cipher = application.mapper.cipher
    datastore = getattr(recorder, "datastore", None)
    events_table = getattr(recorder, "events_table_name", "")
    table = events_table.removesuffix("events") + "roster_snapshot"
    if isinstance(datastore, SQLiteDatastore):
        snapshots = SqlRosterSnapshots(datastore, table, postgres=False, cipher=cipher)
    elif datastore is not None and hasattr(datastore, "schema"):  # eventsourcing.postgres.PostgresDatastore
        snapshots = SqlRosterSnapshots(datastore, f"{datastore.schema}.{table}", postgres=True, cipher=cipher)
    else:
        return None
    snapshots.create_table()
    return snapshots
