"""The SMS sandbox's message log: one SQLite file, safe to share between threads.

Phone-side numbers are derived from direction: an outbound message's phone is its To, an inbound
message's phone is its From, so the organisation's own numbers never show up as a conversation.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

Direction = Literal["outbound", "inbound"]
WebhookStatus = int | str | None

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sid TEXT NOT NULL UNIQUE,
    direction TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    from_number TEXT NOT NULL,
    to_number TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    error_code INTEGER,
    num_segments INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    messaging_service_sid TEXT,
    -- no declared type on purpose: an HTTP status stays an integer, a delivery failure stays text
    webhook_status
);
CREATE INDEX IF NOT EXISTS messages_from ON messages (from_number);
CREATE INDEX IF NOT EXISTS messages_to ON messages (to_number);
"""

_COLUMNS = (
    "sid, direction, from_number, to_number, body, status, error_code, num_segments, created_at, "
    "messaging_service_sid, webhook_status"
)


@dataclass(frozen=True)
class StoredMessage:
    """One SMS as the sandbox saw it; ``created_at`` is timezone-aware UTC."""

    sid: str
    direction: Direction
    from_number: str
    to_number: str
    body: str
    status: str
    num_segments: int
    created_at: datetime
    error_code: int | None = None
    messaging_service_sid: str | None = None
    webhook_status: WebhookStatus = None

    @property
    def phone(self) -> str:
        """The number of the person holding the phone, whichever way the message went."""
        return self.to_number if self.direction == "outbound" else self.from_number


@dataclass(frozen=True)
class PhoneSummary:
    """A phone with at least one message, for the inbox's list of conversations."""

    phone: str
    last_message_at: datetime
    message_count: int


class SandboxMessageStore:
    """Messages in ``<var_dir>/sms-sandbox.sqlite``.

    Every method may raise ``sqlite3.Error`` if the file is unusable; that is a broken sandbox, not
    something to retry.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # One connection shared by the event loop and threadpool workers, serialised by the lock.
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.row_factory = sqlite3.Row
        self._connection.executescript(_SCHEMA)

    @classmethod
    def in_directory(cls, var_dir: Path) -> SandboxMessageStore:
        """The store at ``<var_dir>/sms-sandbox.sqlite``, creating the file if it is missing."""
        return cls(var_dir / "sms-sandbox.sqlite")

    def close(self) -> None:
        """Close the file; the store must not be used afterwards."""
        with self._lock:
            self._connection.close()

    def add(self, message: StoredMessage) -> None:
        """Append a message; raises ``sqlite3.IntegrityError`` if its sid is already stored."""
        with self._lock:
            self._connection.execute(
                f"INSERT INTO messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.sid,
                    message.direction,
                    message.from_number,
                    message.to_number,
                    message.body,
                    message.status,
                    message.error_code,
                    message.num_segments,
                    message.created_at.isoformat(),
                    message.messaging_service_sid,
                    message.webhook_status,
                ),
            )

    def record_webhook_status(self, sid: str, webhook_status: int | str) -> None:
        """Remember what the inbound webhook answered (HTTP status) or why it could not be reached."""
        with self._lock:
            self._connection.execute("UPDATE messages SET webhook_status = ? WHERE sid = ?", (webhook_status, sid))

    def get(self, sid: str) -> StoredMessage | None:
        """The message with this sid, or None."""
        with self._lock:
            row = self._connection.execute(f"SELECT {_COLUMNS} FROM messages WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else _message(row)

    def conversation(self, phone: str) -> list[StoredMessage]:
        """Every message from or to ``phone``, oldest first."""
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE from_number = ? OR to_number = ? ORDER BY seq",
                (phone, phone),
            ).fetchall()
        return [_message(row) for row in rows]

    def count(self, phone: str) -> int:
        """How many messages went from or to ``phone``."""
        with self._lock:
            (count,) = self._connection.execute(
                "SELECT COUNT(*) FROM messages WHERE from_number = ? OR to_number = ?", (phone, phone)
            ).fetchone()
        return int(count)

    def phones(self) -> list[PhoneSummary]:
        """Each phone-side number once, the one with the most recent message first."""
        with self._lock:
            # SQLite takes the bare created_at from the row that holds MAX(seq).
            rows = self._connection.execute(
                """
                SELECT phone, created_at, MAX(seq) AS last_seq, COUNT(*) FROM (
                    SELECT CASE direction WHEN 'outbound' THEN to_number ELSE from_number END AS phone,
                           created_at, seq
                    FROM messages
                )
                GROUP BY phone ORDER BY last_seq DESC
                """
            ).fetchall()
        return [
            PhoneSummary(phone=phone, last_message_at=datetime.fromisoformat(created_at), message_count=count)
            for phone, created_at, _, count in rows
        ]

    def last_sender_to(self, phone: str) -> str | None:
        """The number that most recently sent ``phone`` an outbound message, or None if none did."""
        with self._lock:
            row = self._connection.execute(
                "SELECT from_number FROM messages WHERE direction = 'outbound' AND to_number = ? "
                "ORDER BY seq DESC LIMIT 1",
                (phone,),
            ).fetchone()
        return None if row is None else str(row["from_number"])


def _message(row: sqlite3.Row) -> StoredMessage:
    fields = dict(row)
    return StoredMessage(**fields | {"created_at": datetime.fromisoformat(fields["created_at"])})
