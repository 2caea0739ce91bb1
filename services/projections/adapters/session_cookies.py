"""Signed workspace sessions: who signed in, until when, and the CSRF token their forms must carry.

The cookie value is ``base64url(json).base64url(hmac_sha256(key, json))``. It is not encrypted: it holds a
subject, a role, a responder id, an expiry and a random CSRF token, nothing clinical. Tampering breaks the
signature; an expired session is refused. Sessions are not stored server-side, so signing out clears the
cookie in that browser only; rotating the key ends every session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

from services.runtime.credentials import AccessRole, Principal

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
    principal: Principal
    expires_at: datetime
    csrf_token: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(self, key: bytes, lifetime: timedelta) -> None:
        self.key = key
        self.lifetime = lifetime

    def issue(self, principal: Principal, now: datetime) -> tuple[str, Session]:
        session = Session(principal, now + self.lifetime, secrets.token_urlsafe(24))
        body = json.dumps(
            {
                "sub": principal.subject,
                "role": principal.role.value,
                "rid": str(principal.responder_id) if principal.responder_id else None,
                "exp": session.expires_at.timestamp(),
                "csrf": session.csrf_token,
            },
            separators=(",", ":"),
        ).encode()
        return f"{_b64(body)}.{_b64(self._sign(body))}", session

    def read(self, value: str | None, now: datetime) -> Session | None:
        """The session in ``value``, or None if it is missing, forged, malformed or expired."""
        if not value or "." not in value:
            return None
        body_text, signature_text = value.split(".", 1)
        try:
            body = _unb64(body_text)
            if not hmac.compare_digest(_unb64(signature_text), self._sign(body)):
                return None
            claims = json.loads(body)
            expires_at = datetime.fromtimestamp(float(claims["exp"]), tz=now.tzinfo)
            principal = Principal(
                subject=str(claims["sub"]),
                role=AccessRole(claims["role"]),
                responder_id=UUID(claims["rid"]) if claims.get("rid") else None,
            )
            csrf = str(claims["csrf"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires_at <= now:
            return None
        return Session(principal, expires_at, csrf)

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self.key, body, hashlib.sha256).digest()
