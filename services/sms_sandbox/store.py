"""The SMS sandbox's records: messages and calls, status callbacks, opted-out phones. One SQLite file.

Phone-side numbers are derived from direction: an outbound message's (or call's) phone is its To, an
inbound message's phone is its From, so the organisation's own numbers never show up as a conversation.
Safe to share between threads.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

Direction = Literal["outbound", "inbound"]
Kind = Literal["sms", "call"]
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
CREATE TABLE IF NOT EXISTS status_callbacks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_sid TEXT NOT NULL,
    status TEXT NOT NULL,
    error_code INTEGER,
    url TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    outcome,
    finished INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS status_callbacks_sid ON status_callbacks (message_sid);
CREATE TABLE IF NOT EXISTS opted_out (
    phone TEXT PRIMARY KEY,
    keyword TEXT NOT NULL,
    changed_at TEXT NOT NULL
);
"""

# Columns added after the first release; an older sms-sandbox.sqlite gets them on open.
_ADDED_COLUMNS = {
    "kind": "TEXT NOT NULL DEFAULT 'sms'",
    "attempt": "INTEGER",
    "status_callback": "TEXT",
    "twiml": "TEXT",
    "digits": "TEXT",
    "keypad_answer": "TEXT",
}

_COLUMNS = (
    "sid, direction, from_number, to_number, body, status, error_code, num_segments, created_at, "
    "messaging_service_sid, webhook_status, kind, attempt, status_callback, twiml, digits, keypad_answer"
)


@dataclass(frozen=True)
class StoredMessage:
    """One SMS or call as the sandbox saw it; ``created_at`` is timezone-aware UTC.

    For a call, ``body`` is what its TwiML says (the text of its <Say> verbs) and ``twiml`` the document. A call
    whose TwiML listens for keys (<Gather>) records the keys pressed on it (``digits``), what our webhook answered
    (``webhook_status``) and what the answer said (``keypad_answer``).
    """

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
    kind: Kind = "sms"
    attempt: int | None = None
    status_callback: str | None = None
    twiml: str | None = None
    digits: str | None = None
    keypad_answer: str | None = None

    @property
    def phone(self) -> str:
        """The number of the person holding the phone, whichever way the message went."""
        return self.to_number if self.direction == "outbound" else self.from_number


@dataclass(frozen=True)
class PhoneSummary:
    """A phone with at least one message or call, for the inbox's list of conversations."""

    phone: str
    last_message_at: datetime
    message_count: int


@dataclass(frozen=True)
class StatusCallback:
    """One status callback for a message: what it reports, and how its delivery went.

    ``outcome`` is the HTTP status the callback URL answered, or why it could not be reached; ``finished``
    once it was answered with 2xx or the sandbox gave up retrying.
    """

    id: int
    message_sid: str
    status: str
    error_code: int | None
    url: str
    attempts: int
    outcome: int | str | None
    finished: bool


class SandboxMessageStore:
    """Records in ``<var_dir>/sms-sandbox.sqlite``.

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
        existing = {row["name"] for row in self._connection.execute("PRAGMA table_info(messages)")}
        for column, declaration in _ADDED_COLUMNS.items():
            if column not in existing:
                self._connection.execute(f"ALTER TABLE messages ADD COLUMN {column} {declaration}")

    @classmethod
    def in_directory(cls, var_dir: Path) -> SandboxMessageStore:
        """The store at ``<var_dir>/sms-sandbox.sqlite``, creating the file if it is missing."""
        return cls(var_dir / "sms-sandbox.sqlite")

    def close(self) -> None:
        """Close the file; the store must not be used afterwards."""
        with self._lock:
            self._connection.close()

    # --- messages and calls ---------------------------------------------------------------------------

    def add(self, message: StoredMessage) -> None:
        """Append a message or call; raises ``sqlite3.IntegrityError`` if its sid is already stored."""
        with self._lock:
            self._connection.execute(
                f"INSERT INTO messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    message.kind,
                    message.attempt,
                    message.status_callback,
                    message.twiml,
                    message.digits,
                    message.keypad_answer,
                ),
            )

    def record_webhook_status(self, sid: str, webhook_status: int | str) -> None:
        """Remember what the inbound webhook answered (HTTP status) or why it could not be reached."""
        with self._lock:
            self._connection.execute("UPDATE messages SET webhook_status = ? WHERE sid = ?", (webhook_status, sid))

    def record_keys(self, sid: str, digits: str, webhook_status: int | str, answer: str | None) -> None:
        """Remember the keys pressed on a call, what the keypad webhook answered (HTTP status, or why it could not
        be reached) and what its TwiML said."""
        with self._lock:
            self._connection.execute(
                "UPDATE messages SET digits = ?, webhook_status = ?, keypad_answer = ? WHERE sid = ?",
                (digits, webhook_status, answer, sid),
            )

    def get(self, sid: str, kind: Kind | None = None) -> StoredMessage | None:
        """The message or call with this sid (of this kind, if given), or None."""
        with self._lock:
            row = self._connection.execute(f"SELECT {_COLUMNS} FROM messages WHERE sid = ?", (sid,)).fetchone()
        message = None if row is None else _message(row)
        return message if message is not None and kind in (None, message.kind) else None

    def conversation(self, phone: str, kind: Kind | None = None) -> list[StoredMessage]:
        """Every message (and call) from or to ``phone``, oldest first; only one kind if given."""
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE (from_number = ? OR to_number = ?) "
                "AND (? IS NULL OR kind = ?) ORDER BY seq",
                (phone, phone, kind, kind),
            ).fetchall()
        return [_message(row) for row in rows]

    def count(self, phone: str, kind: Kind | None = None) -> int:
        """How many messages (or calls, or both) went from or to ``phone``."""
        with self._lock:
            (count,) = self._connection.execute(
                "SELECT COUNT(*) FROM messages WHERE (from_number = ? OR to_number = ?) AND (? IS NULL OR kind = ?)",
                (phone, phone, kind, kind),
            ).fetchone()
        return int(count)

    def phones(self) -> list[PhoneSummary]:
        """Each phone-side number once, the one with the most recent message or call first."""
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
        """The number that most recently sent ``phone`` an outbound SMS, or None if none did."""
        with self._lock:
            row = self._connection.execute(
                "SELECT from_number FROM messages WHERE direction = 'outbound' AND kind = 'sms' AND to_number = ? "
                "ORDER BY seq DESC LIMIT 1",
                (phone,),
            ).fetchone()
        return None if row is None else str(row["from_number"])

    # --- status callbacks -----------------------------------------------------------------------------

    def add_status_callback(self, message_sid: str, status: str, error_code: int | None, url: str) -> int:
        """Record a callback to be delivered; returns its id."""
        with self._lock:
            cursor = self._connection.execute(
                "INSERT INTO status_callbacks (message_sid, status, error_code, url) VALUES (?, ?, ?, ?)",
                (message_sid, status, error_code, url),
            )
        return int(cursor.lastrowid or 0)

    def record_callback_attempt(self, callback_id: int, outcome: int | str, finished: bool) -> None:
        with self._lock:
            self._connection.execute(
                "UPDATE status_callbacks SET attempts = attempts + 1, outcome = ?, finished = ? WHERE seq = ?",
                (outcome, int(finished), callback_id),
            )

    def status_callbacks(self, message_sid: str) -> list[StatusCallback]:
        """The callbacks of one message, in the order they are delivered."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT seq, message_sid, status, error_code, url, attempts, outcome, finished "
                "FROM status_callbacks WHERE message_sid = ? ORDER BY seq",
                (message_sid,),
            ).fetchall()
        return [
            StatusCallback(
                id=row["seq"],
                message_sid=row["message_sid"],
                status=row["status"],
                error_code=row["error_code"],
                url=row["url"],
                attempts=row["attempts"],
                outcome=row["outcome"],
                finished=bool(row["finished"]),
            )
            for row in rows
        ]

    # --- opt-out ----------------------------------------------------------------------------------------

    def set_opted_out(self, phone: str, keyword: str, at: datetime, opted_out: bool) -> None:
        """Record that ``phone`` texted STOP (``opted_out``) or START."""
        with self._lock:
            if opted_out:
                self._connection.execute(
                    "INSERT OR REPLACE INTO opted_out (phone, keyword, changed_at) VALUES (?, ?, ?)",
                    (phone, keyword, at.isoformat()),
                )
            else:
                self._connection.execute("DELETE FROM opted_out WHERE phone = ?", (phone,))

    def is_opted_out(self, phone: str) -> bool:
        with self._lock:
            row = self._connection.execute("SELECT 1 FROM opted_out WHERE phone = ?", (phone,)).fetchone()
        return row is not None


def _message(row: sqlite3.Row) -> StoredMessage:
    fields = dict(row)
    return StoredMessage(**fields | {"created_at": datetime.fromisoformat(fields["created_at"])})
