"""Workspace sessions: a signed cookie naming a session the server keeps, so that signing out, or revoking the
credential a session was signed in with, ends it at once, for every copy of the cookie.

The cookie value is ``base64url(json).base64url(hmac_sha256(key, json))``, the json holding only a random
session id and its expiry. Tampering breaks the signature and rotating the key ends every session; both are
refused without a database read. Who the session is, its CSRF token and the SHA-256 of the credential token it
was signed in with are kept server-side (``SessionStore``; ``sql_sessions`` in the projections database). A
cookie signs someone in only while (every request checks) its signature holds, it has not expired, its session
is still kept (signing out deletes it), and its credential is still in the credentials file with the same
subject and role.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from services.runtime.credentials import CredentialStore, Principal

COOKIE_NAME = "crisis_session"


def session_key(configured: str, var_dir: Path) -> bytes:
    """The configured key, or one generated once into ``var_dir/session.key`` (mode 0600) and reused."""
    if configured:
        return configured.encode()
    path = var_dir / "session.key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


@dataclass(frozen=True)
class Session:
    """A signed-in person: ``credential_digest`` is the SHA-256 (hex) of the token they signed in with."""

    session_id: str
    principal: Principal
    credential_digest: str
    expires_at: datetime
    csrf_token: str


class SessionStore(Protocol):
    """Where sessions are kept. Every method raises (e.g. PersistenceError) when the store cannot answer: the
    request is then refused, never let through unchecked."""

    def save(self, session: Session, now: datetime) -> None: ...

    def find(self, session_id: str) -> Session | None: ...

    def end(self, session_id: str) -> None: ...


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """The cookie's value: a session id and its expiry, signed."""

    def __init__(self, key: bytes, lifetime: timedelta) -> None:
        self.key = key
        self.lifetime = lifetime

    def seal(self, session_id: str, expires_at: datetime) -> str:
        body = json.dumps({"sid": session_id, "exp": expires_at.timestamp()}, separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def unseal(self, value: str | None, now: datetime) -> str | None:
        """The session id in ``value``, or None if it is missing, forged, malformed or expired."""
        if not value or "." not in value:
            return None
        body_text, signature_text = value.split(".", 1)
        try:
            body = _unb64(body_text)
            if not hmac.compare_digest(_unb64(signature_text), self._sign(body)):
                return None
            claims = json.loads(body)
            expires_at = datetime.fromtimestamp(float(claims["exp"]), tz=now.tzinfo)
            session_id = str(claims["sid"])
        except (ValueError, KeyError, TypeError):
            return None
        return session_id if expires_at > now else None

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self.key, body, hashlib.sha256).digest()


class WorkspaceSessions:
    """Begin, check and end workspace sessions (the store is called off the event loop)."""

    def __init__(self, codec: SessionCodec, store: SessionStore, credentials: CredentialStore) -> None:
        self.codec = codec
        self.store = store
        self.credentials = credentials

    @property
    def lifetime(self) -> timedelta:
        return self.codec.lifetime

    async def begin(self, principal: Principal, credential_digest: str, now: datetime) -> tuple[str, Session]:
        """A new session for ``principal``, signed in with the credential whose token has this SHA-256; returns
        the cookie value and the session."""
        session = Session(
            secrets.token_urlsafe(32), principal, credential_digest, now + self.lifetime, secrets.token_urlsafe(24)
        )
        await asyncio.to_thread(self.store.save, session, now)
        return self.codec.seal(session.session_id, session.expires_at), session

    async def current(self, value: str | None, now: datetime) -> Session | None:
        """The live session named by the cookie ``value``; None when there is none (see the module's doc)."""
        session_id = self.codec.unseal(value, now)
        if session_id is None:
            return None
        session = await asyncio.to_thread(self.store.find, session_id)
        if session is None or session.expires_at <= now:
            return None
        # the credential must still be in the file, and still say the same person in the same role
        if self.credentials.verify_digest(session.credential_digest) != session.principal:
            return None
        return session

    async def end(self, value: str | None, now: datetime) -> None:
        """End the session named by ``value`` (signing out): the cookie, replayed, signs nobody in."""
        session_id = self.codec.unseal(value, now)
        if session_id is not None:
            await asyncio.to_thread(self.store.end, session_id)
