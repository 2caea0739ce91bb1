"""Idempotency keys in a JetStream KV bucket: a retried request gets the first answer, even days later.

The stream's de-duplication window (minutes) cannot promise that, so the answer itself is kept, keyed by a
hash of (caller, method, path, Idempotency-Key), for ``idempotency_retention_days`` (the bucket's TTL).

One key's life: ``begin`` claims it with a "pending" entry (KV create, so two concurrent requests cannot
both claim it); the request runs; ``complete`` stores the answer, or ``release`` deletes the claim when the
request failed, so that the client may retry. A pending claim older than ``PENDING_TIMEOUT`` (a gateway that
crashed mid-request) may be taken over; the retry derives the same ids, so the stream stores its event once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.runtime.clock import Clock

BUCKET = "intake_idempotency"
PENDING_TIMEOUT = timedelta(seconds=60)


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: Any
    headers: dict[str, str]


class KeyInFlight(Exception):
    """Another request with the same key is being handled right now (409)."""


class KeyReused(Exception):
    """The key was first used with a different request (422)."""


async def ensure_bucket(
    js: JetStreamContext, name: str, *, ttl: float | None, replicas: int, history: int = 1
) -> KeyValue:
    """Open the bucket, creating it on first start; a changed TTL is applied to the existing bucket."""
    try:
        kv = await js.key_value(name)
    except BucketNotFoundError:
        return await js.create_key_value(bucket=name, ttl=ttl, history=history, replicas=replicas)
    info = await js.stream_info(f"KV_{name}")
    wanted_age = ttl or 0.0
    if abs((info.config.max_age or 0.0) - wanted_age) > 1e-3:
        info.config.max_age = wanted_age
        await js.update_stream(info.config)
    return kv


class KvIdempotencyStore:
    def __init__(self, kv: KeyValue, clock: Clock) -> None:
        self.kv = kv
        self.clock = clock

    @classmethod
    async def open(
        cls, js: JetStreamContext, clock: Clock, *, retention_days: float, replicas: int
    ) -> KvIdempotencyStore:
        return cls(await ensure_bucket(js, BUCKET, ttl=retention_days * 86400, replicas=replicas), clock)

    @staticmethod
    def key_for(scope: str) -> str:
        # hashed: KV keys allow few characters, and the caller's key may carry anything
        return hashlib.sha256(scope.encode()).hexdigest()

    async def begin(self, scope: str, fingerprint: str) -> StoredAnswer | None:
        """Claim the key for this request (None), or return the answer already given to it.

        Raises ``KeyReused`` when the key came with a different request, ``KeyInFlight`` when it is being
        handled now."""
        key = self.key_for(scope)
        claim = json.dumps({"state": "pending", "fingerprint": fingerprint, "at": self.clock.now().isoformat()})
        try:
            await self.kv.create(key, claim.encode())
            return None
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:  # released between our create and get: try once more
            await self.kv.create(key, claim.encode())
            return None
        record = json.loads(entry.value)
        if record["fingerprint"] != fingerprint:
            raise KeyReused
        if record["state"] == "done":
            return StoredAnswer(record["status"], record["body"], record["headers"])
        if self.clock.now() - datetime.fromisoformat(record["at"]) < PENDING_TIMEOUT:
            raise KeyInFlight
        try:  # the claimant crashed: take the claim over
            await self.kv.update(key, claim.encode(), last=entry.revision)
        except KeyWrongLastSequenceError as exc:
            raise KeyInFlight from exc
        return None

    async def complete(self, scope: str, fingerprint: str, answer: StoredAnswer) -> None:
        record = {
            "state": "done",
            "fingerprint": fingerprint,
            "at": self.clock.now().isoformat(),
            "status": answer.status,
            "body": answer.body,
            "headers": answer.headers,
        }
        await self.kv.put(self.key_for(scope), json.dumps(record).encode())

    async def release(self, scope: str) -> None:
        await self.kv.delete(self.key_for(scope))
