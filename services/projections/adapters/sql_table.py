"""One table of the projections' own beside eventsourcing's, on the same datastore (SQLite or PostgreSQL), and the
WHERE clauses every projections query builds (``where_clause``)."""

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


def where_clause(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """``WHERE c1 AND c2 ...`` (or nothing) and its parameters, from (condition, value) pairs: a condition with a
    ``%s`` counts when its value is not None; one without counts always."""
    chosen = [(condition, value) for condition, value in conditions if "%s" not in condition or value is not None]
    clause = f"WHERE {' AND '.join(condition for condition, _ in chosen)}" if chosen else ""
    return clause, [value for condition, value in chosen if "%s" in condition]
