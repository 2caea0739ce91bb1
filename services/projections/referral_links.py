"""Signed links a program answers one referral with: ``<workspace>/rf/<token>``.

The token is 64 characters of base64url over 48 bytes: the referral id (16), the program id (16), the link's expiry
(4, Unix seconds) and the first 12 bytes of ``HMAC-SHA256(key, purpose | body)``, with the responder links' key
under its own purpose (a responder's or a program's availability link never reads as one of these). Whoever holds
it can answer that referral for that program until it expires; it names nobody and says nothing about the person.
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

REFERRAL_LINK_PATH = "/rf/"
_PURPOSE = b"crisis referral link v1|"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{64}")
_BODY, _MAC = 36, 12


class ReferralLinks:
    def __init__(self, key: bytes, lifetime: timedelta = timedelta(days=14), base_url: str = "") -> None:
        self.key = key
        self.lifetime = lifetime
        self.base_url = base_url.rstrip("/")

    def url(self, referral_id: UUID, program_id: UUID, issued_at: datetime) -> tuple[str, datetime]:
        """The link for ``program_id``'s part of ``referral_id`` and when it stops working."""
        expires_at = datetime.fromtimestamp(int((issued_at + self.lifetime).timestamp()), tz=UTC)
        body = referral_id.bytes + program_id.bytes + struct.pack(">I", int(expires_at.timestamp()))
        token = base64.urlsafe_b64encode(body + self._mac(body)).decode()
        return f"{self.base_url}{REFERRAL_LINK_PATH}{token}", expires_at

    def read(self, token: str, now: datetime) -> tuple[UUID, UUID] | None:
        """(referral id, program id) for a genuine, unexpired token; None for anything else."""
        if not _TOKEN.fullmatch(token):
            return None
        try:
            raw = base64.urlsafe_b64decode(token)
        except (binascii.Error, ValueError):
            return None
        body, mac = raw[:_BODY], raw[_BODY:]
        if len(raw) != _BODY + _MAC or not hmac.compare_digest(mac, self._mac(body)):
            return None
        (seconds,) = struct.unpack(">I", body[32:])
        if now >= datetime.fromtimestamp(seconds, tz=UTC):
            return None
        return UUID(bytes=body[:16]), UUID(bytes=body[16:32])

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self.key, _PURPOSE + body, hashlib.sha256).digest()[:_MAC]
