"""Twilio webhooks already recorded, in a JetStream KV bucket, kept for days (the bucket's TTL).

The stream's de-duplication window (minutes) covers Twilio's quick retries; this covers what comes later:
Twilio retrying after a long outage, or a captured request replayed by someone else (a webhook's signature
never expires). A key names the webhook, never its content: ``sms.<MessageSid>`` or
``status.<MessageSid>.<status>`` (both are KV-safe: a SID is letters and digits, a status lowercase letters).
"""

from __future__ import annotations

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue

from services.intake_gateway.sms_webhooks import WebhookLedgerUnavailable
from services.runtime.kv_buckets import ensure_bucket

BUCKET = "twilio_webhooks_recorded"


class KvRecordedWebhooks:
    """The ``RecordedWebhooks`` port on a KV bucket; a NATS failure is ``WebhookLedgerUnavailable`` (retry)."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, *, retention_days: float, replicas: int) -> KvRecordedWebhooks:
        return cls(await ensure_bucket(js, BUCKET, ttl=retention_days * 86400, replicas=replicas))

    async def recorded(self, key: str) -> bool:
        try:
            await self.kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            return False
        except (NatsError, TimeoutError) as exc:
            raise WebhookLedgerUnavailable(key) from exc
        return True

    async def remember(self, key: str) -> None:
        try:
            await self.kv.put(key, b"recorded")
        except (NatsError, TimeoutError) as exc:
            raise WebhookLedgerUnavailable(key) from exc
