"""Use cases behind Twilio's webhooks: inbound SMS (with opt-out keywords) and delivery status callbacks.

Every event id is derived from Twilio's MessageSid, so a webhook Twilio retries (it does, on a timeout or a
non-2xx answer) is stored once by the stream's de-duplication window. A webhook that comes again after that
window (a late retry, or a captured request replayed: its signature never expires) is recognised by the
``RecordedWebhooks`` ledger, kept for days, and recorded nothing: a replayed STOP opts nobody out twice. A
webhook is entered in the ledger only once all its events are on the stream, so one whose append failed is
processed when Twilio retries it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from services.contract.events import (
    Envelope,
    SmsOptOutChanged,
    SmsOptOutChangedData,
    SmsReceived,
    SmsReceivedData,
    SmsStatusUpdated,
    SmsStatusUpdatedData,
    derived_id,
    new_event,
)
from services.contract.sms_keywords import KeywordEffect, keyword_of
from services.runtime.clock import Clock

PRODUCER = "intake_gateway"

Publish = Callable[[Envelope], Awaitable[int]]

# Twilio's Advanced Opt-Out adds OptOutType to the webhook; it is authoritative when present because it also
# covers keywords an operator added (other languages, custom words) that keyword_of does not know.
_OPT_OUT_TYPES = {"STOP": KeywordEffect.OPT_OUT, "START": KeywordEffect.OPT_IN, "HELP": KeywordEffect.HELP}


UNRECORDED_STATUSES = frozenset({"queued"})
"""Delivery statuses not put on the stream. ``queued`` only says the provider accepted the message, which its
answer to the send already said (the notifier's ``sms.sent``); no service acts on it: the notifier acts on failed
and undelivered only, the timeline shows delivered, undelivered, failed and read (``NETWORK_STATUSES``), and the
dispatcher, the follow-up desk and the gateway's own follower do not read statuses. About one event in seven
on the stream was a ``queued`` callback."""


class WebhookLedgerUnavailable(Exception):
    """The ledger of recorded webhooks did not answer: nothing was recorded; answer 503 so Twilio retries."""


class RecordedWebhooks(Protocol):
    """Which webhooks are on the stream already (longer than its de-duplication window). Both methods raise
    ``WebhookLedgerUnavailable`` when the ledger cannot answer (retry)."""

    async def recorded(self, key: str) -> bool: ...

    async def remember(self, key: str) -> None: ...


@dataclass(frozen=True)
class InboundSms:
    message_sid: str
    from_number: str
    to_number: str
    body: str
    opt_out_type: str | None = None


@dataclass(frozen=True)
class DeliveryStatus:
    message_sid: str
    status: str
    to: str | None
    error_code: int | None


class SmsWebhooks:
    """Records what Twilio's webhooks report: inbound messages (with opt-out keywords) and delivery statuses."""

    def __init__(self, publish: Publish, clock: Clock, recorded: RecordedWebhooks) -> None:
        self.publish = publish
        self.clock = clock
        self.recorded = recorded

    def events_for_inbound(self, sms: InboundSms) -> list[Envelope]:
        """sms.received, plus sms.opt_out_changed when the text is STOP/START-family keyword."""
        now = self.clock.now()
        events = [
            new_event(
                SmsReceived,
                SmsReceivedData(
                    message_sid=sms.message_sid, from_number=sms.from_number, to_number=sms.to_number, body=sms.body
                ),
                event_id=derived_id("sms.received", sms.message_sid),
                occurred_at=now,
                producer=PRODUCER,
            )
        ]
        keyword = keyword_of(sms.body)
        effect = _OPT_OUT_TYPES.get((sms.opt_out_type or "").upper()) or (keyword[1] if keyword else None)
        if effect in (KeywordEffect.OPT_OUT, KeywordEffect.OPT_IN):
            events.append(
                new_event(
                    SmsOptOutChanged,
                    SmsOptOutChangedData(
                        phone=sms.from_number,
                        opted_out=effect is KeywordEffect.OPT_OUT,
                        keyword=keyword[0] if keyword else sms.body.strip().upper()[:32],
                        message_sid=sms.message_sid,
                        received_at=now,
                    ),
                    event_id=derived_id("sms.opt_out_changed", sms.message_sid),
                    occurred_at=now,
                    producer=PRODUCER,
                    causation_id=events[0].id,
                )
            )
        return events

    async def receive(self, sms: InboundSms) -> list[Envelope]:
        """Append the inbound SMS and any opt-out change, in that order; nothing (``[]``) when this message
        was recorded before. Raises if the stream or the ledger is unreachable; Twilio then retries and the
        events already appended are de-duplicated."""
        key = f"sms.{sms.message_sid}"
        if await self.recorded.recorded(key):
            return []
        events = self.events_for_inbound(sms)
        for event in events:
            await self.publish(event)
        await self.recorded.remember(key)
        return events

    async def record_status(self, status: DeliveryStatus) -> Envelope | None:
        """Append one delivery status callback, keyed by MessageSid and status (each status arrives once,
        retries of it are de-duplicated); None when this status of this message was recorded before, or is one
        not recorded at all (``UNRECORDED_STATUSES``: the webhook still answers 2xx, so the provider does not retry
        it)."""
        if status.status in UNRECORDED_STATUSES:
            return None
        key = f"status.{status.message_sid}.{status.status}"
        if await self.recorded.recorded(key):
            return None
        event = new_event(
            SmsStatusUpdated,
            SmsStatusUpdatedData(
                message_sid=status.message_sid, status=status.status, to=status.to, error_code=status.error_code
            ),
            event_id=derived_id("sms.status_updated", status.message_sid, status.status),
            occurred_at=self.clock.now(),
            producer=PRODUCER,
        )
        await self.publish(event)
        await self.recorded.remember(key)
        return event
