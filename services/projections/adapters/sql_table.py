"""One table of the projections' own beside eventsourcing's, on the same datastore (SQLite or PostgreSQL)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import PersistenceError
from eventsourcing.sqlite import SQLiteDatastore


class DatastoreTable:
    """SQL written once for both backends: ``{table}`` names the table, ``%s`` marks a parameter.

    Raises PersistenceError when the database fails."""

    def __init__(self, datastore: Any, table: str, placeholder: str) -> None:
        self.datastore = datastore
        self.sqlite = isinstance(datastore, SQLiteDatastore)
        self.table = table
        self._placeholder = placeholder

    def _sql(self, statement: str) -> str:
        statement = statement.replace(self._placeholder, self.table)
        return statement.replace("%s", "?") if self.sqlite else statement

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[Any]:
        try:
            with self.datastore.transaction(commit=commit) as cursor:
                yield cursor
        except sqlite3.Error as exc:
            raise PersistenceError(str(exc)) from exc
