"""Bearer credentials: who is calling and in which role.

A credential is an opaque random token handed to one subject (a person or a system). Only its SHA-256 is
stored, so the credentials file does not let anyone who reads it call the API. Tokens are 256-bit random
values, which is why a plain (unsalted) SHA-256 is enough: there is nothing to brute-force.

The file is a JSON list of ``{"subject", "role", "token_sha256", "responder_id"?}``. A store made with
``from_file`` looks at the file's metadata (one ``stat``) on every question and re-reads it when it changed, so
an added credential works, and a removed one is refused, from the next request on, without a restart. To revoke
a credential, delete its entry (``revoke_credential`` does, atomically); workspace sessions signed in with it
end with it. A file that cannot be read is an empty store (everyone refused) until it is fixed: a half-written
file must never keep a revoked credential alive.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from uuid import UUID

log = logging.getLogger(__name__)


class AccessRole(StrEnum):
    """What a caller may do. Roles are not ranked: each route names the roles it admits."""

    INTAKE = "intake"  # a crisis line or clinic: reports and updates incidents
    RESPONDER = "responder"  # on-call staff: their own location and availability
    DIRECTOR = "director"  # reads everything in the organisation, changes nothing in the roster
    ADMIN = "admin"  # manages the roster and schedules


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. ``responder_id`` ties a responder credential to the responder it speaks for."""

    subject: str
    role: AccessRole
    responder_id: UUID | None = None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    principal: Principal


def _entries(entries: list[dict]) -> list[_Entry]:
    return [
        _Entry(
            bytes.fromhex(entry["token_sha256"]),
            Principal(
                subject=str(entry["subject"]),
                role=AccessRole(entry["role"]),
                responder_id=UUID(entry["responder_id"]) if entry.get("responder_id") else None,
            ),
        )
        for entry in entries
    ]


def _version(path: Path) -> tuple[int, int, int, int] | None:
    """What changes when the file is replaced or rewritten: inode, size, modification and change times."""
    try:
        info = path.stat()
    except OSError:  # missing (or unreadable): read as an empty store
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class CredentialStore:
    """The known credentials; answers "whose token is this?" without timing leaks.

    Made with ``from_file``, it follows the file: each question first compares the file's ``stat`` with the
    one it last read, and re-reads on a change (safe to ask from several threads)."""

    def __init__(self, entries: list[dict]) -> None:
        self._entries = _entries(entries)
        self._path: Path | None = None
        self._version: tuple[int, int, int, int] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path) -> CredentialStore:
        """Load ``path`` and follow its changes. A missing file is an empty store (every request is then 401),
        not an error; a file that is not a valid credentials list is refused at start."""
        version = _version(path)  # before reading: a change made meanwhile is read again on the next question
        store = cls(_load(path))
        store._path, store._version = path, version
        return store

    def _current(self) -> list[_Entry]:
        if self._path is None:
            return self._entries
        version = _version(self._path)
        if version == self._version:
            return self._entries
        with self._lock:
            if version != self._version:
                try:
                    entries = _entries(_load(self._path))
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    # fail closed: a file being written, or a bad edit, admits nobody until it is fixed
                    log.error("credentials file unreadable, refusing every token: %s", type(exc).__name__)
                    entries = []
                else:
                    log.info("credentials file changed: %d credentials", len(entries))
                self._entries, self._version = entries, version
        return self._entries

    def __len__(self) -> int:
        return len(self._current())

    def role_of(self, subject: str) -> str | None:
        """The role of ``subject``'s credential (the audit log names who changed a record); None if unknown."""
        roles = {entry.principal.role.value for entry in self._current() if entry.principal.subject == subject}
        return roles.pop() if len(roles) == 1 else ("/".join(sorted(roles)) or None)

    def verify_token(self, token: str) -> Principal | None:
        """The principal ``token`` belongs to, or None. Compares every entry in constant time."""
        return self.verify_digest(token_digest(token))

    def verify_digest(self, digest_hex: str) -> Principal | None:
        """The principal whose token has this SHA-256 (hex), or None: whether a credential (e.g. the one a
        workspace session was signed in with) still exists. Compares every entry in constant time."""
        try:
            digest = bytes.fromhex(digest_hex)
        except ValueError:
            return None
        found: Principal | None = None
        for entry in self._current():
            # no early exit: the time taken does not say which entry (if any) matched
            if hmac.compare_digest(digest, entry.digest):
                found = entry.principal
        return found


def _load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    entries = json.loads(path.read_text())
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of credentials")
    return entries


def _write(path: Path, entries: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(entries, handle, indent=2)
    os.replace(tmp, path)


def issue_credential(
    path: Path, subject: str, role: AccessRole | str, responder_id: UUID | None = None, *, token: str | None = None
) -> str:
    """Append a credential for ``subject`` to ``path`` (created if missing); returns its plaintext token.

    ``token`` lets a test choose a fixed token; otherwise a random 256-bit one is made.
    """
    token = token or secrets.token_urlsafe(32)
    entry: dict = {"subject": subject, "role": AccessRole(role).value, "token_sha256": token_digest(token)}
    if responder_id is not None:
        entry["responder_id"] = str(responder_id)
    _write(path, [*_load(path), entry])
    return token


def revoke_credential(path: Path, subject: str) -> int:
    """Remove every credential of ``subject`` from ``path`` (atomically); returns how many were removed.

    Running services refuse the token from their next request on, and end the workspace sessions signed in
    with it."""
    entries = _load(path)
    kept = [entry for entry in entries if entry.get("subject") != subject]
    if len(kept) != len(entries):
        _write(path, kept)
    return len(entries) - len(kept)


# The demo responder credential speaks for the demo roster's clinician (deploy/demo/roster.json).
DEMO_RESPONDER_ID = UUID("8a1f7c1e-0001-4a6b-9c11-2f0c9d1e0001")


def ensure_demo_credentials(path: Path) -> dict[str, str]:
    """Create ``path`` with one demo credential per role if it does not exist.

    Returns role -> plaintext token for the credentials it created; an empty dict if the file already
    existed (the tokens cannot be recovered from it: only their hashes are stored).
    """
    if path.exists():
        return {}
    tokens: dict[str, str] = {}
    entries: list[dict] = []
    for role in AccessRole:
        token = secrets.token_urlsafe(32)
        tokens[role.value] = token
        entry = {"subject": f"demo-{role.value}", "role": role.value, "token_sha256": token_digest(token)}
        if role is AccessRole.RESPONDER:
            entry["responder_id"] = str(DEMO_RESPONDER_ID)
        entries.append(entry)
    _write(path, entries)
    return tokens
