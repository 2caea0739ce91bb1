"""How the projections' tables hold what says something about a person: a sealed blob (``Sealer``). Times are
fixed-width UTC ISO text (``iso`` and ``parse_time`` in services/projections/stores.py, where the use cases read
them too)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sealer:
    """Compress then encrypt (and back), with the application's own compressor and cipher (either may be None)."""

    compressor: Any
    cipher: Any

    def seal(self, value: Any) -> bytes:
        return self.seal_json(json.dumps(value, default=str, separators=(",", ":")).encode())

    def seal_json(self, data: bytes) -> bytes:
        """Seal a value already serialized as JSON (``unseal`` gives back the value)."""
        if self.compressor is not None:
            data = self.compressor.compress(data)
        if self.cipher is not None:
            data = self.cipher.encrypt(data)
        return data

    def unseal(self, data: bytes) -> Any:
        return json.loads(self.unseal_json(data))

    def unseal_json(self, data: bytes) -> bytes:
        """The sealed value's JSON, not parsed (for a reader that parses it itself)."""
        data = bytes(data)
        if self.cipher is not None:
            data = self.cipher.decrypt(data)
        if self.compressor is not None:
            data = self.compressor.decompress(data)
        return data
