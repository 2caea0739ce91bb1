"""Rotate CRISIS_CIPHER_KEY: re-encrypt every stored event, snapshot and sealed read-model value under a new key.

What it re-encrypts, in the store the settings name (``CRISIS_DATABASE_URL``, else the SQLite files under
``CRISIS_VAR_DIR``):

- every eventsourcing event and snapshot table (any table with ``originator_id``, ``originator_version`` and
  ``state`` columns): the dispatcher's, the notifier's, the projections' and the follow-up desk's, and any other
  application sharing the store (a rebuild's, say);
- the dispatcher's roster snapshot (``state`` of every ``*roster_snapshot`` table: base64 text of the same cipher's
  output; issue 16), so the first start after a rotation restores it instead of folding the whole log;
- the projections' sealed read-model columns (``body`` of every ``*_rm_timeline``, ``*_rm_tasks``,
  ``*_rm_dead_letters``, ``*_rm_incidents`` and ``*_rm_responders`` table; the last two seal an incident's kind
  and staff names since read-model schema 3, and have no ``body`` column before it).

Tracking tables, the audit log and the other read-model columns hold nothing encrypted and are left alone.
The values are compressed-then-encrypted (``Sealer``, eventsourcing's mapper); only the encryption layer is
replaced, so the compressed bytes inside are unchanged.

Promises:

- **Nothing changes unless every value opens.** A first pass reads every value; if any opens under neither
  key (a wrong old key, a damaged row) the tool stops with ``RotationRefused`` before writing anything.
- **Safe to re-run after an interruption.** Each value is tried with the new key first (already rotated: left
  as it is), then with the old key (re-encrypted). Rows are rewritten in batches, each batch one transaction,
  so a crash leaves every value readable under one of the two keys, and running the tool again finishes.
- **Services must be stopped** (all of them that open the store): a service writing with the old key during
  the rotation would leave values the new key cannot open (a re-run with both keys would still fix them).

Usage (the keys are base64 AES keys, like ``CRISIS_CIPHER_KEY``)::

    CRISIS_CIPHER_KEY=<old> CRISIS_NEW_CIPHER_KEY=<new> crisis-rotate-key
    crisis-rotate-key --old-key-file old.key --new-key-file new.key [--check]

Exit status: 0 done (or nothing to do), 2 refused (nothing changed), 1 bad arguments or a store error.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.cipher import AESCipher
from eventsourcing.utils import Environment

from services.runtime.aead_cipher import AeadCipher
from services.runtime.settings import RuntimeSettings

EVENT_COLUMNS = ("originator_id", "originator_version")
SEALED_TABLES = {
    "_rm_timeline": ("seq",),
    "_rm_tasks": ("task_id",),
    "_rm_dead_letters": ("seq",),
    "_rm_incidents": ("incident_id",),
    "_rm_responders": ("responder_id",),
}
BATCH_ROWS = 500


class RotationRefused(Exception):
    """Some values open under neither key: nothing was changed. ``problems`` says where (no values, no keys)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(f"{len(problems)} place(s) hold values that open under neither key: " + "; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class EncryptedColumn:
    """One column of encrypted values, with the columns that identify a row (in order, for paging)."""

    database: str
    table: str
    column: str
    key: tuple[str, ...]
    base64_text: bool = False
    """The value is stored as base64 text (the roster snapshot), not as bytes."""

    def __str__(self) -> str:
        return f"{self.database}:{self.table}.{self.column}"

    def stored(self, value: Any) -> bytes:
        """The encrypted bytes of a stored value."""
        return base64.b64decode(value) if self.base64_text else bytes(value)

    def to_store(self, encrypted: bytes) -> Any:
        return base64.b64encode(encrypted).decode() if self.base64_text else encrypted


@dataclass
class ColumnReport:
    rows: int = 0
    already_new: int = 0
    rotated: int = 0
    unreadable: int = 0


@dataclass
class RotationReport:
    """Per column: rows seen, rows already under the new key, rows re-encrypted, rows neither key opens."""

    columns: dict[str, ColumnReport] = field(default_factory=dict)

    def total(self, what: str) -> int:
        return sum(getattr(c, what) for c in self.columns.values())


def aes_cipher(key: str) -> AESCipher:
    """The stores' cipher (``AeadCipher``, eventsourcing's AESCipher format) for a base64 key (ValueError when it is
    not a 16/24/32-byte key)."""
    return AeadCipher(Environment(env={"CIPHER_KEY": key.strip()}))


def opens(cipher: AESCipher, value: bytes) -> bytes | None:
    """The plaintext, or None when ``cipher`` cannot open ``value`` (wrong key, or damaged)."""
    try:
        return cipher.decrypt(value)
    except ValueError:
        return None


# ---- the two kinds of store -------------------------------------------------------------------------------


class Database:
    """A connection to one database with the few statements rotation needs (``%s`` placeholders)."""

    name: str

    def encrypted_columns(self) -> list[EncryptedColumn]:
        found = []
        for table, columns in sorted(self.tables().items()):
            if {*EVENT_COLUMNS, "state"} <= set(columns):
                found.append(EncryptedColumn(self.name, table, "state", EVENT_COLUMNS))
            if table.endswith("roster_snapshot") and {"name", "state"} <= set(columns):
                found.append(EncryptedColumn(self.name, table, "state", ("name",), base64_text=True))
            for suffix, key in SEALED_TABLES.items():
                if table.endswith(suffix) and "body" in columns:
                    found.append(EncryptedColumn(self.name, table, "body", key))
        return found

    def tables(self) -> dict[str, list[str]]:
        raise NotImplementedError

    def page(self, column: EncryptedColumn, after: tuple | None, limit: int, cursor: Any) -> list[tuple]:
        """Up to ``limit`` rows (key values..., value) after the key ``after``, in key order."""
        keys = ", ".join(column.key)
        where = ""
        params: list[Any] = []
        if after is not None:
            where = f"WHERE ({keys}) > ({', '.join(['%s'] * len(after))})"
            params.extend(after)
        statement = (
            f"SELECT {keys}, {column.column} FROM {self.quote(column.table)} {where} ORDER BY {keys} LIMIT %s"
            + self.lock_clause
        )
        cursor.execute(self.sql(statement), (*params, limit))
        return [tuple(row) for row in cursor.fetchall()]

    def update(self, column: EncryptedColumn, row_key: tuple, value: bytes, cursor: Any) -> None:
        match = " AND ".join(f"{k} = %s" for k in column.key)
        cursor.execute(
            self.sql(f"UPDATE {self.quote(column.table)} SET {column.column} = %s WHERE {match}"), (value, *row_key)
        )

    lock_clause = ""

    def sql(self, statement: str) -> str:
        return statement

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteDatabase(Database):
    def __init__(self, path: Path) -> None:
        self.name = path.name
        self.connection = sqlite3.connect(path, isolation_level=None, timeout=30)

    def tables(self) -> dict[str, list[str]]:
        names = [r[0] for r in self.connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: [c[1] for c in self.connection.execute(f"PRAGMA table_info({self.quote(n)})")] for n in names}

    def sql(self, statement: str) -> str:
        return statement.replace("%s", "?")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")  # the write lock from the first read: no writer slips in between
        try:
            yield cursor
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()


class PostgresDatabase(Database):
    lock_clause = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
        self.name = self.connection.info.dbname

    def tables(self) -> dict[str, list[str]]:
        with self.connection.transaction(), self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
                "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
                "ORDER BY c.table_name, c.ordinal_position"
            )
            found: dict[str, list[str]] = {}
            for table, column in cursor.fetchall():
                found.setdefault(table, []).append(column)
        return found

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.connection.transaction(), self.connection.cursor() as cursor:
            yield cursor

    def close(self) -> None:
        self.connection.close()


def open_databases(settings: RuntimeSettings) -> list[Database]:
    """The databases ``store_env`` puts the services' stores in: the PostgreSQL database, or each SQLite file."""
    if settings.database_url:
        return [PostgresDatabase(settings.database_url)]
    return [SqliteDatabase(path) for path in sorted(settings.var_dir.glob("*.sqlite"))]


# ---- rotating -----------------------------------------------------------------------------------------------


def rotate(
    databases: Sequence[Database],
    old_key: str,
    new_key: str,
    *,
    check_only: bool = False,
    batch_rows: int = BATCH_ROWS,
    after_batch: Callable[[EncryptedColumn, int], None] | None = None,
) -> RotationReport:
    """Re-encrypt every encrypted value in ``databases`` from ``old_key`` to ``new_key``.

    Raises RotationRefused (having changed nothing) when any value opens under neither key; ValueError when a
    key is not a valid AES key or both are the same. ``check_only`` stops after the first (reading) pass.
    ``after_batch(column, rows_so_far)`` is called after each committed batch (progress; tests interrupt here).
    """
    old, new = aes_cipher(old_key), aes_cipher(new_key)
    if old.key == new.key:
        raise ValueError("the new key is the old key")
    columns = [column for database in databases for column in database.encrypted_columns()]
    by_name = {database.name: database for database in databases}
    report = RotationReport()
    problems = []
    for column in columns:
        counts = report.columns.setdefault(str(column), ColumnReport())
        for row in _rows(by_name[column.database], column, batch_rows):
            counts.rows += 1
            value = _encrypted(column, row[-1])
            if opens(new, value) is not None:
                counts.already_new += 1
            elif opens(old, value) is None:
                counts.unreadable += 1
        if counts.unreadable:
            problems.append(f"{column}: {counts.unreadable} of {counts.rows} rows")
    if problems:
        raise RotationRefused(problems)
    if check_only:
        return report
    for column in columns:
        report.columns[str(column)].rotated = _rotate_column(
            by_name[column.database], column, old, new, batch_rows, after_batch
        )
    return report


def _encrypted(column: EncryptedColumn, value: Any) -> bytes:
    """The encrypted bytes of a stored value; b"" (opens under no key) for base64 text that is not base64."""
    try:
        return column.stored(value)
    except (binascii.Error, ValueError):
        return b""


def _rows(database: Database, column: EncryptedColumn, batch_rows: int) -> Iterator[tuple]:
    after = None
    while True:
        with database.transaction() as cursor:
            rows = database.page(column, after, batch_rows, cursor)
        yield from rows
        if len(rows) < batch_rows:
            return
        after = rows[-1][:-1]


def _rotate_column(
    database: Database,
    column: EncryptedColumn,
    old: AESCipher,
    new: AESCipher,
    batch_rows: int,
    after_batch: Callable[[EncryptedColumn, int], None] | None,
) -> int:
    rotated, seen, after = 0, 0, None
    while True:
        with database.transaction() as cursor:
            rows = database.page(column, after, batch_rows, cursor)
            for row in rows:
                value = _encrypted(column, row[-1])
                if opens(new, value) is not None:
                    continue
                plain = opens(old, value)
                if plain is None:  # written since the first pass: a service is running
                    raise RotationRefused([f"{column}: a row changed during the rotation; stop every service"])
                database.update(column, row[:-1], column.to_store(new.encrypt(plain)), cursor)
                rotated += 1
        seen += len(rows)
        if after_batch is not None:
            after_batch(column, seen)
        if len(rows) < batch_rows:
            return rotated
        after = rows[-1][:-1]


# ---- the command -----------------------------------------------------------------------------------------------


def read_key(file: Path | None, variable: str, what: str) -> str:
    if file is not None:
        return file.read_text().strip()
    key = os.environ.get(variable, "").strip()
    if not key:
        raise SystemExit(f"crisis-rotate-key: give the {what} key with --{what}-key-file or {variable}")
    return key


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="crisis-rotate-key",
        description="Re-encrypt the services' stored events and sealed read models under a new CRISIS_CIPHER_KEY. "
        "Stop every service first. The store is the one CRISIS_DATABASE_URL / CRISIS_VAR_DIR name.",
    )
    parser.add_argument("--old-key-file", type=Path, help="file holding the current key (else CRISIS_CIPHER_KEY)")
    parser.add_argument("--new-key-file", type=Path, help="file holding the new key (else CRISIS_NEW_CIPHER_KEY)")
    parser.add_argument("--check", action="store_true", help="only check that every value opens; change nothing")
    args = parser.parse_args(argv)
    old_key = read_key(args.old_key_file, "CRISIS_CIPHER_KEY", "old")
    new_key = read_key(args.new_key_file, "CRISIS_NEW_CIPHER_KEY", "new")
    settings = RuntimeSettings(cipher_key="")  # the keys come from the arguments above, never from here
    databases = open_databases(settings)
    try:
        report = rotate(
            databases,
            old_key,
            new_key,
            check_only=args.check,
            after_batch=lambda column, rows: print(f"  {column}: {rows} rows", flush=True),
        )
    except RotationRefused as exc:
        print(f"refused, nothing changed: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"crisis-rotate-key: {exc}", file=sys.stderr)
        return 1
    finally:
        for database in databases:
            database.close()
    for name, counts in report.columns.items():
        print(f"{name}: {counts.rows} rows, {counts.rotated} re-encrypted, {counts.already_new} already new")
    verb = "would re-encrypt" if args.check else "re-encrypted"
    rows = report.total("rows") - report.total("already_new") if args.check else report.total("rotated")
    print(f"{verb} {rows} of {report.total('rows')} values in {len(databases)} database(s)")
    if not args.check:
        print("now set CRISIS_CIPHER_KEY to the new key everywhere and start the services")
    return 0


if __name__ == "__main__":
    sys.exit(main())
