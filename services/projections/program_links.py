"""Signed links a treatment program reports its own availability with: ``<workspace>/p/<token>``.

The token is 40 characters of base64url over 30 bytes: the program id (16), the link's expiry (4, Unix seconds) and
the first 10 bytes of ``HMAC-SHA256(key, purpose | program id | expiry)``. It is signed with the responder links'
key (``CRISIS_RESPONDER_LINK_KEY`` or ``<var_dir>/responder_link.key``) under its own purpose, so a responder's
link can never be read as a program's or the other way round. Whoever holds the link can report for that program
until it expires; it names nobody and says nothing about any person.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from datetime import UTC, datetime, timedelta
from uuid import UUID

PROGRAM_LINK_PATH = "/p/"
_PURPOSE = b"crisis program availability link v1|"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{40}")
_MAC = 10


class ProgramLinks:
    def __init__(self, key: bytes, lifetime: timedelta = timedelta(days=30), base_url: str = "") -> None:
        self.key = key
        self.lifetime = lifetime
        self.base_url = base_url.rstrip("/")

    def url(self, program_id: UUID, issued_at: datetime) -> tuple[str, datetime]:
        """The link for ``program_id``, and when it stops working (``lifetime`` after ``issued_at``)."""
        expires_at = datetime.fromtimestamp(int((issued_at + self.lifetime).timestamp()), tz=UTC)
        return f"{self.base_url}{PROGRAM_LINK_PATH}{self.token(program_id, expires_at)}", expires_at

    def token(self, program_id: UUID, expires_at: datetime) -> str:
        body = program_id.bytes + struct.pack(">I", int(expires_at.timestamp()))
        return base64.urlsafe_b64encode(body + self._mac(body)).decode()

    def program(self, token: str, now: datetime) -> UUID | None:
        """The program a genuine, unexpired ``token`` is for; None for anything else (malformed, tampered, expired)."""
        if not _TOKEN.fullmatch(token):
            return None
        try:
            raw = base64.urlsafe_b64decode(token)
        except (binascii.Error, ValueError):
            return None
        body, mac = raw[:20], raw[20:]
        if len(raw) != 30 or not hmac.compare_digest(mac, self._mac(body)):
            return None
        (seconds,) = struct.unpack(">I", body[16:])
        if now >= datetime.fromtimestamp(seconds, tz=UTC):
            return None
        return UUID(bytes=body[:16])

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self.key, _PURPOSE + body, hashlib.sha256).digest()[:_MAC]
