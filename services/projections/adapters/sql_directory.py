"""The treatment-program directory's table, beside the read models' tables in the projections database (SQLite
or PostgreSQL): one row per program, written in the read models' transaction (so the directory and the stream
position move together). Programs are facilities, not people: nothing here is PHI, so the row is plain JSON."""

from __future__ import annotations

import json
from typing import Any

from services.projections.adapters.sql_table import DatastoreTable
from services.projections.domain.directory import AvailabilityReport, ProgramEntry
from services.projections.stores import iso, parse_time


class SqlDirectory(DatastoreTable):
    """The ``DirectoryTable`` port. Raises PersistenceError when the database fails."""

    def __init__(self, datastore: Any, prefix: str = "projections") -> None:
        super().__init__(datastore, f"{prefix}_rm_programs", "{programs}")

    def create_table(self) -> None:
        big = "INTEGER" if self.sqlite else "BIGINT"
        with self._transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {programs} (program_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
                    f"retired INTEGER NOT NULL, last_seq {big} NOT NULL, body TEXT NOT NULL)"
                )
            )

    def drop_table(self) -> None:
        with self._transaction(commit=True) as cursor:
            cursor.execute(self._sql("DROP TABLE IF EXISTS {programs}"))

    def get(self, cursor: Any, program_id: str) -> ProgramEntry | None:
        cursor.execute(self._sql("SELECT body FROM {programs} WHERE program_id = %s"), (program_id,))
        row = cursor.fetchone()
        return _entry(dict(row)["body"]) if row else None

    def save(self, cursor: Any, entry: ProgramEntry, sequence: int) -> None:
        cursor.execute(
            self._sql(
                "INSERT INTO {programs} (program_id, name, retired, last_seq, body) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (program_id) DO UPDATE SET name = excluded.name, retired = excluded.retired, "
                "last_seq = excluded.last_seq, body = excluded.body"
            ),
            (entry.program_id, entry.profile.get("name", ""), int(entry.retired), sequence, _body(entry)),
        )

    def entries(self) -> list[ProgramEntry]:
        with self._transaction(commit=False) as cursor:
            cursor.execute(self._sql("SELECT body FROM {programs} ORDER BY name, program_id"))
            return [_entry(dict(row)["body"]) for row in cursor.fetchall()]

    def entry(self, program_id: str) -> ProgramEntry | None:
        with self._transaction(commit=False) as cursor:
            return self.get(cursor, program_id)


def open_sql_directory(beside: Any, prefix: str) -> SqlDirectory:
    """The ``OpenDirectory`` port: the table in the database of ``beside`` (the read models' application)."""
    directory = SqlDirectory(beside.recorder.datastore, prefix=prefix)
    directory.create_table()
    return directory


def _body(entry: ProgramEntry) -> str:
    report = entry.availability
    availability = None
    if report is not None:
        availability = {
            "beds_open": report.beds_open,
            "next_intake_at": iso(report.next_intake_at),
            "as_of": iso(report.as_of),
            "channel": report.channel,
            "reported_by": report.reported_by,
        }
    body = {"program_id": entry.program_id, "profile": entry.profile, "retired": entry.retired}
    return json.dumps(body | {"availability": availability}, separators=(",", ":"))


def _entry(text: str) -> ProgramEntry:
    body = json.loads(text)
    raw = body["availability"]
    report = None
    if raw is not None:
        report = AvailabilityReport(
            beds_open=raw["beds_open"],
            next_intake_at=parse_time(raw["next_intake_at"]),
            as_of=parse_time(raw["as_of"]),  # type: ignore[arg-type]
            channel=raw["channel"],
            reported_by=raw["reported_by"],
        )
    return ProgramEntry(body["program_id"], body["profile"], body["retired"], report)
