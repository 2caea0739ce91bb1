"""Events about the system itself: messages no consumer could read."""

from __future__ import annotations

from pydantic import Field

from services.contract.envelope import Strict, event_type


class MessageDeadLetteredData(Strict):
    consumer: str
    reason: str
    stream_sequence: int = Field(ge=1)
    original_subject: str
    original_payload: str = Field(description="the unreadable message, decoded as UTF-8 with replacement")


class MessageDeadLettered(event_type("message.dead_lettered", MessageDeadLetteredData)):
    pass


EVENTS = (MessageDeadLettered,)
UPCASTERS: dict = {}
