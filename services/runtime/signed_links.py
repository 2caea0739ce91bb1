"""Signed links to a responder's incident page, and the short session such a link starts.

The accept confirmation a responder gets by SMS carries ``<CRISIS_WORKSPACE_PUBLIC_URL>/r/<token>``. The token is
40 characters of base64url over 30 bytes: the incident id (16, an opaque random id), the link's expiry (4, Unix
seconds) and the first 10 bytes of ``HMAC-SHA256(key, incident id | responder id | expiry)``. So it says nothing
about the person in crisis, names no responder (the one it is for is found by checking the signature against
those involved in the incident), cannot be changed to another incident, responder or expiry without the key, and
stops working at its expiry. The dispatcher signs (it knows who accepted), the projections service checks; both
read the same key: ``CRISIS_RESPONDER_LINK_KEY``, or one generated once into ``<var_dir>/responder_link.key``
(mode 0600) when they share a var directory (``make run``).

A valid link opens a session limited to that responder and that incident: a cookie value signed with the same
key (a different purpose prefix) holding the responder, the incident, its expiry (never later than the link's)
and its forms' CSRF token. Nothing is kept server-side; the session ends when the link would have.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

LINK_PATH = "/r/"
TOKEN_LENGTH = 40
_MAC_BYTES = 10
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}")
_LINK_PURPOSE = b"crisis responder link v1|"
_SESSION_PURPOSE = b"crisis responder page session v1|"


def link_key(configured: str, var_dir: Path) -> bytes:
    """The configured key, or one generated once into ``var_dir/responder_link.key`` (mode 0600) and reused.

    Two services starting at once on one var directory end up with the same key: the file appears whole (a
    hard link of a finished file) or not at all, and the one that loses the race reads the winner's."""
    if configured:
        return configured.encode()
    path = var_dir / "responder_link.key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        draft = var_dir / f".responder_link.key.{secrets.token_hex(8)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip().encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class LinkClaim:
    """What a token says before anyone knows whose it is: the incident, the expiry, and the signature."""

    incident_id: UUID
    expires_at: datetime
    signature: bytes

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True)
class LinkSession:
    """A session a link started: ``responder_id`` on ``incident_id`` only, until ``expires_at``."""

    responder_id: UUID
    incident_id: UUID
    expires_at: datetime
    csrf_token: str


class ResponderLinks:
    """Signs and checks responder links and the sessions they start, with one key. ``base_url`` (no trailing
    slash) and ``lifetime`` are needed only to make links (the dispatcher)."""

    def __init__(self, key: bytes, lifetime: timedelta = timedelta(hours=12), base_url: str = "") -> None:
        self.key = key
        self.lifetime = lifetime
        self.base_url = base_url.rstrip("/")

    # ---- links ---------------------------------------------------------------------------------------------

    def url(self, incident_id: UUID, responder_id: UUID, issued_at: datetime) -> str:
        """The link for ``responder_id`` on ``incident_id``, valid for ``lifetime`` after ``issued_at`` (the same
        arguments give the same link, so a message built twice is the same message)."""
        return f"{self.base_url}{LINK_PATH}{self.token(incident_id, responder_id, issued_at + self.lifetime)}"

    def token(self, incident_id: UUID, responder_id: UUID, expires_at: datetime) -> str:
        seconds = int(expires_at.timestamp())
        body = incident_id.bytes + struct.pack(">I", seconds)
        return _b64(body + self._mac(incident_id, responder_id, seconds))

    @staticmethod
    def read(token: str) -> LinkClaim | None:
        """The claim in ``token``; None when it is not a well-formed token (nothing is checked yet)."""
        if not _TOKEN.fullmatch(token):
            return None
        try:
            raw = _unb64(token)
        except (binascii.Error, ValueError):
            return None
        if len(raw) != 16 + 4 + _MAC_BYTES:
            return None
        (seconds,) = struct.unpack(">I", raw[16:20])
        return LinkClaim(UUID(bytes=raw[:16]), datetime.fromtimestamp(seconds, tz=UTC), raw[20:])

    def signed_for(self, claim: LinkClaim, candidates: list[UUID]) -> UUID | None:
        """The one of ``candidates`` the link was signed for, or None. Every candidate is checked (in constant
        time each), so the time taken does not say which one matched."""
        seconds = int(claim.expires_at.timestamp())
        found = None
        for responder_id in candidates:
            if hmac.compare_digest(claim.signature, self._mac(claim.incident_id, responder_id, seconds)):
                found = responder_id
        return found

    def _mac(self, incident_id: UUID, responder_id: UUID, seconds: int) -> bytes:
        message = _LINK_PURPOSE + incident_id.bytes + responder_id.bytes + struct.pack(">I", seconds)
        return hmac.new(self.key, message, hashlib.sha256).digest()[:_MAC_BYTES]

    # ---- the session a link starts -------------------------------------------------------------------------

    def begin_session(self, responder_id: UUID, incident_id: UUID, expires_at: datetime) -> tuple[str, LinkSession]:
        """A new session and its cookie value."""
        session = LinkSession(responder_id, incident_id, expires_at, secrets.token_urlsafe(24))
        claims = {
            "r": str(responder_id),
            "i": str(incident_id),
            "exp": int(expires_at.timestamp()),
            "csrf": session.csrf_token,
        }
        body = json.dumps(claims, separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._session_mac(body))}", session

    def session(self, value: str | None, incident_id: UUID, now: datetime) -> LinkSession | None:
        """The live session in the cookie ``value`` for ``incident_id``; None when it is missing, forged,
        malformed, expired or for another incident."""
        if not value or "." not in value:
            return None
        body_text, mac_text = value.split(".", 1)
        try:
            body = _unb64(body_text)
            if not hmac.compare_digest(_unb64(mac_text), self._session_mac(body)):
                return None
            claims = json.loads(body)
            session = LinkSession(
                UUID(claims["r"]),
                UUID(claims["i"]),
                datetime.fromtimestamp(int(claims["exp"]), tz=UTC),
                str(claims["csrf"]),
            )
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None
        if session.incident_id != incident_id or now >= session.expires_at:
            return None
        return session

    def _session_mac(self, body: bytes) -> bytes:
        return hmac.new(self.key, _SESSION_PURPOSE + body, hashlib.sha256).digest()
