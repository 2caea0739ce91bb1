"""Workspace sessions kept server-side, in the projections database beside the audit log (its SQLite file, or
PostgreSQL), so that signing out ends a session for every copy of its cookie.

A row is keyed by the SHA-256 of the session id, never the id itself: someone who reads the table cannot
present a row as a cookie. It holds no PHI: the subject and role, the SHA-256 of the credential token the
session was signed in with (as in the credentials file), the CSRF token of its forms, and its times. Expired
rows are deleted when someone next signs in.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from uuid import UUID

from services.projections.adapters.session_cookies import Session
from services.projections.adapters.sql_table import DatastoreTable
from services.projections.stores import iso
from services.runtime.credentials import AccessRole, Principal


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SqlSessionStore(DatastoreTable):
    """The ``SessionStore`` port on the projections database. Raises PersistenceError when the database fails:
    the caller must then refuse the request (a session that cannot be checked is not a session)."""

    def __init__(self, datastore: Any, prefix: str = "projections") -> None:
        super().__init__(datastore, f"{prefix}_sessions", "{sessions}")

    def create_table(self) -> None:
        with self._transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {sessions} (id_sha256 TEXT PRIMARY KEY, subject TEXT NOT NULL, "
                    "role TEXT NOT NULL, responder_id TEXT, credential_sha256 TEXT NOT NULL, "
                    "csrf_token TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL)"
                )
            )
            cursor.execute(self._sql("CREATE INDEX IF NOT EXISTS {sessions}_by_expiry ON {sessions} (expires_at)"))

    def save(self, session: Session, now: datetime) -> None:
        """Keep a new session, and forget the ones that expired before ``now``."""
        principal = session.principal
        with self._transaction(commit=True) as cursor:
            cursor.execute(self._sql("DELETE FROM {sessions} WHERE expires_at <= %s"), (iso(now),))
            cursor.execute(
                self._sql(
                    "INSERT INTO {sessions} (id_sha256, subject, role, responder_id, credential_sha256, csrf_token, "
                    "created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                ),
                (
                    _key(session.session_id),
                    principal.subject,
                    principal.role.value,
                    str(principal.responder_id) if principal.responder_id else None,
                    session.credential_digest,
                    session.csrf_token,
                    iso(now),
                    iso(session.expires_at),
                ),
            )

    def find(self, session_id: str) -> Session | None:
        """The session kept under this id, expired or not; None when there is none (never was, or ended)."""
        with self._transaction(commit=False) as cursor:
            cursor.execute(self._sql("SELECT * FROM {sessions} WHERE id_sha256 = %s"), (_key(session_id),))
            row = cursor.fetchone()
        if row is None:
            return None
        row = dict(row)
        principal = Principal(
            subject=row["subject"],
            role=AccessRole(row["role"]),
            responder_id=UUID(row["responder_id"]) if row["responder_id"] else None,
        )
        expires_at = datetime.fromisoformat(row["expires_at"])
        return Session(session_id, principal, row["credential_sha256"], expires_at, row["csrf_token"])

    def end(self, session_id: str) -> None:
        """Forget the session: its cookie, wherever a copy of it is, no longer signs anyone in."""
        with self._transaction(commit=True) as cursor:
            cursor.execute(self._sql("DELETE FROM {sessions} WHERE id_sha256 = %s"), (_key(session_id),))
