"""The referrals' table, beside the read models' tables in the projections database (SQLite or PostgreSQL): one
row per referral (its folded ``ReferralView`` as JSON), written in the read models' transaction. A referral names
programs, a level of care and needs, never the person (``person_id`` is an opaque id)."""

from __future__ import annotations

from typing import Any

from services.projections.adapters.sql_table import DatastoreTable
from services.projections.domain.referral import ReferralView
from services.projections.referrals import view_from_json, view_json
from services.projections.stores import iso

_FINAL = ("admitted", "cancelled")


class SqlReferrals(DatastoreTable):
    """The ``ReferralTable`` port. Raises PersistenceError when the database fails."""

    def __init__(self, datastore: Any, prefix: str = "projections") -> None:
        super().__init__(datastore, f"{prefix}_rm_referrals", "{referrals}")

    def create_table(self) -> None:
        big = "INTEGER" if self.sqlite else "BIGINT"
        with self._transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {referrals} (referral_id TEXT PRIMARY KEY, incident_id TEXT NOT NULL, "
                    "person_id TEXT, state TEXT NOT NULL, sent_at TEXT NOT NULL, "
                    f"last_seq {big} NOT NULL, body TEXT NOT NULL)"
                )
            )

    def drop_table(self) -> None:
        with self._transaction(commit=True) as cursor:
            cursor.execute(self._sql("DROP TABLE IF EXISTS {referrals}"))

    def get(self, cursor: Any, referral_id: str) -> ReferralView | None:
        cursor.execute(self._sql("SELECT body FROM {referrals} WHERE referral_id = %s"), (referral_id,))
        row = cursor.fetchone()
        return view_from_json(dict(row)["body"]) if row else None

    def save(self, cursor: Any, view: ReferralView, sequence: int) -> None:
        cursor.execute(
            self._sql(
                "INSERT INTO {referrals} (referral_id, incident_id, person_id, state, sent_at, last_seq, body) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (referral_id) DO UPDATE SET "
                "person_id = excluded.person_id, state = excluded.state, last_seq = excluded.last_seq, "
                "body = excluded.body"
            ),
            (
                view.referral_id,
                view.incident_id,
                view.person_id,
                view.state.value,
                iso(view.sent_at),
                sequence,
                view_json(view),
            ),
        )

    def referral(self, referral_id: str) -> ReferralView | None:
        with self._transaction(commit=False) as cursor:
            return self.get(cursor, referral_id)

    def for_incident(self, incident_id: str) -> list[ReferralView]:
        return self._select("WHERE incident_id = %s ORDER BY sent_at, referral_id", (incident_id,))

    def for_person(self, person_id: str) -> list[ReferralView]:
        return self._select("WHERE person_id = %s ORDER BY sent_at, referral_id", (person_id,))

    def referrals(self, *, open_only: bool = False, limit: int = 500) -> list[ReferralView]:
        where = "WHERE state NOT IN (%s, %s) " if open_only else ""
        params: tuple[Any, ...] = (*_FINAL, limit) if open_only else (limit,)
        return self._select(f"{where}ORDER BY sent_at DESC, referral_id LIMIT %s", params)

    def _select(self, tail: str, params: tuple[Any, ...]) -> list[ReferralView]:
        with self._transaction(commit=False) as cursor:
            cursor.execute(self._sql("SELECT body FROM {referrals} " + tail), params)
            return [view_from_json(dict(row)["body"]) for row in cursor.fetchall()]


def open_sql_referrals(beside: Any, prefix: str) -> SqlReferrals:
    """The ``OpenReferrals`` port: the table in the database of ``beside`` (the read models' application)."""
    referrals = SqlReferrals(beside.recorder.datastore, prefix=prefix)
    referrals.create_table()
    return referrals
