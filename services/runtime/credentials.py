"""Bearer credentials: who is calling and in which role.

A credential is an opaque random token handed to one subject (a person or a system). Only its SHA-256 is
stored, so the credentials file does not let anyone who reads it call the API. Tokens are 256-bit random
values, which is why a plain (unsalted) SHA-256 is enough: there is nothing to brute-force.

The file is a JSON list of ``{"subject", "role", "token_sha256", "responder_id"?}``. It is read once when a
service starts; to add or revoke a credential, edit the file and restart the service.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from uuid import UUID


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


class CredentialStore:
    """The known credentials; answers "whose token is this?" without timing leaks."""

    def __init__(self, entries: list[dict]) -> None:
        self._entries = [
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

    @classmethod
    def from_file(cls, path: Path) -> CredentialStore:
        """Load ``path``. A missing file is an empty store (every request is then 401), not an error."""
        if not path.exists():
            return cls([])
        entries = json.loads(path.read_text())
        if not isinstance(entries, list):
            raise ValueError(f"{path}: expected a JSON list of credentials")
        return cls(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def role_of(self, subject: str) -> str | None:
        """The role of ``subject``'s credential (the audit log names who changed a record); None if unknown."""
        roles = {entry.principal.role.value for entry in self._entries if entry.principal.subject == subject}
        return roles.pop() if len(roles) == 1 else ("/".join(sorted(roles)) or None)

    def verify_token(self, token: str) -> Principal | None:
        """The principal ``token`` belongs to, or None. Compares every entry in constant time."""
        digest = hashlib.sha256(token.encode()).digest()
        found: Principal | None = None
        for entry in self._entries:
            # no early exit: the time taken does not say which entry (if any) matched
            if hmac.compare_digest(digest, entry.digest):
                found = entry.principal
        return found


def _read(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


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
    _write(path, [*_read(path), entry])
    return token


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
