"""How the projections' tables hold values: times as fixed-width UTC ISO text (text order is time order, on
SQLite and PostgreSQL alike), and what says something about a person as a sealed blob (``Sealer``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def iso(at: datetime | None) -> str | None:
    """A UTC timestamp as fixed-width ISO text, so text order is time order."""
    return at.astimezone(UTC).isoformat(timespec="microseconds") if at is not None else None


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class Sealer:
    """Compress then encrypt (and back), with the application's own compressor and cipher (either may be None)."""

    compressor: Any
    cipher: Any

    def seal(self, value: Any) -> bytes:
        data = json.dumps(value, default=str, separators=(",", ":")).encode()
        if self.compressor is not None:
            data = self.compressor.compress(data)
        if self.cipher is not None:
            data = self.cipher.encrypt(data)
        return data

    def unseal(self, data: bytes) -> Any:
        data = bytes(data)
        if self.cipher is not None:
            data = self.cipher.decrypt(data)
        if self.compressor is not None:
            data = self.compressor.decompress(data)
        return json.loads(data)
