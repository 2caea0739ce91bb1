"""Every JetStream KV bucket (idempotency keys, the gateway's incident states, recent reports, recorded webhooks)
is opened one way: created on first start, brought to the wanted TTL on every later one."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue


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
