"""Idempotency keys in a JetStream KV bucket: a retried request gets the first answer, even days later.

The stream's de-duplication window (minutes) cannot promise that, so the answer itself is kept, keyed by a
hash of (caller, method, path, Idempotency-Key), for ``idempotency_retention_days`` (the bucket's TTL).

One key's life: ``begin`` claims it with a "pending" entry (KV create, so two concurrent requests cannot
both claim it) that carries a random ``seed``: the ids of what the request records are derived from it, so
they are the same on a retry but cannot be computed by anyone who knows only the key. The request runs;
``complete`` stores the answer; ``give_up`` marks a failed request "retryable", keeping the seed, so that a
retry records the same event (de-duplicated by the stream if the failed attempt did land after all). Every
route that records something for a caller goes through this store (``idempotency.py``); each service has its
own bucket (the gateway ``intake_idempotency``, the workspace ``workspace_idempotency``). A pending claim lasts
until the time by which its request must have answered (``claim_seconds``, the answer deadline plus a margin);
after that, a retry takes it over, with the same seed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.contract.events import derived_id
from services.runtime.clock import Clock
from services.runtime.kv_buckets import ensure_bucket

BUCKET = "intake_idempotency"  # the gateway's; other services name theirs
LEGACY_PENDING_TIMEOUT = timedelta(seconds=60)  # claims written before claims carried their own end


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class Claim:
    """This request holds the key; ``seed`` derives the ids of what it records (same seed on every retry).
    ``fresh``: no earlier request held it, so nothing can have been recorded under this seed before."""

    seed: UUID
    fresh: bool = True


class KeyInFlight(Exception):
    """Another request with the same key is being handled right now (409)."""


class KeyReused(Exception):
    """The key was first used with a different request (422)."""


class KvIdempotencyStore:
    def __init__(self, kv: KeyValue, clock: Clock, *, claim_seconds: float = 15.0) -> None:
        self.kv = kv
        self.clock = clock
        self.claim_for = timedelta(seconds=claim_seconds)

    @classmethod
    async def open(
        cls,
        js: JetStreamContext,
        clock: Clock,
        *,
        retention_days: float,
        replicas: int,
        claim_seconds: float = 15.0,
        bucket: str = BUCKET,
    ) -> KvIdempotencyStore:
        kv = await ensure_bucket(js, bucket, ttl=retention_days * 86400, replicas=replicas)
        return cls(kv, clock, claim_seconds=claim_seconds)

    @staticmethod
    def key_for(scope: str) -> str:
        # hashed: KV keys allow few characters, and the caller's key may carry anything
        return hashlib.sha256(scope.encode()).hexdigest()

    def _pending(self, fingerprint: str, seed: UUID) -> bytes:
        now = self.clock.now()
        record = {
            "state": "pending",
            "fingerprint": fingerprint,
            "seed": str(seed),
            "at": now.isoformat(),
            "until": (now + self.claim_for).isoformat(),
        }
        return json.dumps(record).encode()

    async def begin(self, scope: str, fingerprint: str) -> Claim | StoredAnswer:
        """Claim the key for this request, or return the answer already given to it.

        Raises ``KeyReused`` when the key came with a different request, ``KeyInFlight`` while another request
        with it is still within its answer deadline."""
        key = self.key_for(scope)
        seed = uuid4()
        try:
            await self.kv.create(key, self._pending(fingerprint, seed))
            return Claim(seed)
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:  # deleted between our create and get: try once more
            await self.kv.create(key, self._pending(fingerprint, seed))
            return Claim(seed)
        record = json.loads(entry.value)
        if record["fingerprint"] != fingerprint:
            raise KeyReused
        if record["state"] == "done":
            return StoredAnswer(record["status"], record["body"], record["headers"])
        # before seeds were kept, ids were derived from the scope itself
        seed = UUID(record["seed"]) if "seed" in record else legacy_seed(scope)
        if record["state"] == "pending":
            until = (
                datetime.fromisoformat(record["until"])
                if "until" in record
                else datetime.fromisoformat(record["at"]) + LEGACY_PENDING_TIMEOUT
            )
            if self.clock.now() < until:
                raise KeyInFlight
        try:  # a failed request ("retryable") or a claimant that never answered: take it over, same seed
            await self.kv.update(key, self._pending(fingerprint, seed), last=entry.revision)
        except KeyWrongLastSequenceError as exc:
            raise KeyInFlight from exc
        return Claim(seed, fresh=False)

    async def complete(self, scope: str, fingerprint: str, answer: StoredAnswer, claim: Claim | None = None) -> None:
        record = {
            "state": "done",
            "fingerprint": fingerprint,
            **({"seed": str(claim.seed)} if claim is not None else {}),
            "at": self.clock.now().isoformat(),
            "status": answer.status,
            "body": answer.body,
            "headers": answer.headers,
        }
        await self.kv.put(self.key_for(scope), json.dumps(record).encode())

    async def release(self, scope: str) -> None:
        """The request was refused before it tried to record anything, and the claim was fresh: the key is
        free again (for a corrected request, too)."""
        await self.kv.delete(self.key_for(scope))

    async def give_up(self, scope: str, fingerprint: str, claim: Claim) -> None:
        """The request failed after it may have tried to record: a retry may run at once, under the same ids."""
        record = {
            "state": "retryable",
            "fingerprint": fingerprint,
            "seed": str(claim.seed),
            "at": self.clock.now().isoformat(),
        }
        await self.kv.put(self.key_for(scope), json.dumps(record).encode())


def legacy_seed(scope: str) -> UUID:
    return derived_id("idempotency", scope)
