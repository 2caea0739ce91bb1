"""The ids of what one request records: derived from its Idempotency-Key's seed, or fresh.

With a key, the seed is random and kept with the key (``idempotency_kv.py``), so a retry records under
the same ids (and the stream de-duplicates a re-publish) while nobody who knows only the key can compute them.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from services.contract.events import derived_id


@dataclass(frozen=True)
class RequestIds:
    seed: UUID | None = None
    """None: the request came without an Idempotency-Key, so every id is new."""

    def id_for(self, name: str) -> UUID:
        """The id of the thing ``name`` (an event type, or a kind such as "incident" or "responder")."""
        return derived_id(name, self.seed) if self.seed else uuid4()


FRESH = RequestIds()
