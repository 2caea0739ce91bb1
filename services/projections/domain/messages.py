"""Messages on a timeline: each text or call is one row saying to whom and what it was, and what became of it.

A request (``notification.requested``) opens the row; what the notifier reported for it (sent, call placed,
failed, dropped) and what the phone network reported later (delivered, undelivered: ``sms.status_updated``,
matched through the message's SID) fold into that row as outcomes, instead of one row each. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from services.contract.events import (
    CallPlaced,
    Envelope,
    NotificationDropped,
    NotificationRequested,
    SmsFailed,
    SmsSent,
)

TEMPLATE_WORDS = {
    "page_offer": "page",
    "page_reminder": "reminder",
    "voice_page": "page",
    "page_covered": "covered notice (someone else accepted)",
    "page_withdrawn": "withdrawn notice",
    "ack_confirmed": "accept confirmation",
    "already_taken": "already-taken notice",
    "decline_confirmed": "decline confirmation",
    "en_route_confirmed": "en route confirmation",
    "arrived_confirmed": "on scene confirmation",
    "done_confirmed": "done confirmation",
    "status_summary": "answer to STATUS",
    "reply_help": "answer to HELP",
    "reply_unknown": "not-understood answer",
    "reply_ambiguous": "which-incident question",
    "location_noted": "location noted answer",
    "location_unknown": "location not found answer",
    "supervisor_alert": "supervisor alert",
    "responder_unreachable": "unreachable-responder notice",
    "open_pages_bundle": "open pages summary",
    "task_due": "follow-up notice",
    "task_overdue": "follow-up overdue notice",
    "system_alert": "system alert",
    "nobody_accepted": "NOBODY ACCEPTED alarm",
    "nobody_accepted_call": "NOBODY ACCEPTED alarm",
    "alarm_answered": "alarm ended notice",
    "legacy_v1": "message",
    # the field (issue 18); a template not listed reads as its name ('checkin call' ...)
    "checkin_prompt": "check-in prompt",
    "checkin_confirmed": "check-in confirmation",
    "checkin_reminder": "check-in reminder",
    "checkin_call": "check-in",
    "checkin_missed_alert": "CHECK-IN MISSED alert",
    "checkin_call_911": "call-911 instruction",
    "duress_alert": "DURESS alert",
    "priority_changed": "priority-changed notice",
}
"""What each message was, in words (the template names are the contract's, services/contract/templates.py)."""

CHANNEL_NOUNS = {"sms": "text", "voice": "call"}

DROP_WORDS = {
    "page_accepted": "the page was accepted",
    "page_covered": "someone else accepted",
    "page_declined": "the page was declined",
    "page_timed_out": "the page timed out",
    "page_unreachable": "the responder could not be reached",
    "incident_cancelled": "the incident was cancelled",
    "incident_closed": "the incident was closed",
    "alarm_stopped": "the alarm had stopped",
    "nothing_to_withdraw": "the page never reached the phone",
}

NETWORK_STATUSES = {"delivered": "delivered", "undelivered": "undelivered", "failed": "failed", "read": "read"}
"""Statuses the phone network reports that a reader needs; queued, sending and sent add nothing to 'sent'."""


def message_words(template: str, channel: str) -> str:
    """'page text', 'NOBODY ACCEPTED alarm call', 'follow-up notice text'."""
    what = TEMPLATE_WORDS.get(template, template.replace("_", " "))
    return f"{what} {CHANNEL_NOUNS.get(channel, channel)}"


@dataclass(frozen=True)
class DeliveryStatus:
    """What the phone network said of one sent text (a status callback), as the read models keep it."""

    message_sid: str
    status: str
    at: datetime
    error_code: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of a message: ``words`` ('sent', 'delivered', 'not sent') at ``at``, and why (``detail``: 'the
    page was accepted', 'error 30003: Unreachable destination handset')."""

    words: str
    at: datetime
    detail: str = ""
    failed: bool = False


@dataclass
class MessageFold:
    """Which events fold into which message row, and each row's outcomes in time order."""

    outcomes: dict[UUID, list[Outcome]] = field(default_factory=dict)
    """request event id -> what became of it"""
    folded_into: dict[UUID, UUID] = field(default_factory=dict)
    """event id of a sent / placed / failed / dropped report -> the request event id it belongs to"""


def outcome_of(event: Envelope) -> Outcome | None:
    """The outcome a notifier's report says (None for events that are not one)."""
    data, at = event.data, event.occurred_at
    if isinstance(event, SmsSent):
        return Outcome("sent", at)
    if isinstance(event, CallPlaced):
        return Outcome("call placed", at)
    if isinstance(event, SmsFailed):
        code = f"error {data.error_code}: " if data.error_code else ""
        return Outcome("failed", at, f"{code}{data.error_message}", failed=True)
    if isinstance(event, NotificationDropped):
        return Outcome("not sent", at, DROP_WORDS.get(data.reason, data.reason.replace("_", " ")))
    return None


def network_outcome(status: DeliveryStatus) -> Outcome | None:
    words = NETWORK_STATUSES.get(status.status)
    if words is None:
        return None
    code = f"error {status.error_code}" if status.error_code else ""
    return Outcome(words, status.at, code, failed=words in ("undelivered", "failed"))


def fold_messages(events: Sequence[Envelope], statuses: Iterable[DeliveryStatus] = ()) -> MessageFold:
    """Fold each message's reports into its request's row (stream order); a report without its request on this
    timeline keeps its own row."""
    fold = MessageFold()
    requests: dict[UUID, UUID] = {}  # notification id -> request event id
    by_sid: dict[str, UUID] = {}  # message SID -> request event id
    for event in events:
        if isinstance(event, NotificationRequested):
            requests[event.data.notification_id] = event.id
            fold.outcomes[event.id] = []
            continue
        outcome = outcome_of(event)
        request = requests.get(getattr(event.data, "notification_id", None)) if outcome else None
        if outcome is None or request is None:
            continue
        fold.folded_into[event.id] = request
        fold.outcomes[request].append(outcome)
        if isinstance(event, SmsSent):
            by_sid[event.data.message_sid] = request
    seen: set[tuple[str, str]] = set()  # a status re-published after the stream's de-duplication window
    for status in statuses:
        request = by_sid.get(status.message_sid)
        outcome = network_outcome(status)
        if request is not None and outcome is not None and (status.message_sid, status.status) not in seen:
            seen.add((status.message_sid, status.status))
            fold.outcomes[request].append(outcome)
    for outcomes in fold.outcomes.values():
        outcomes.sort(key=lambda o: o.at)
    return fold


def sent_message_sids(events: Iterable[Envelope]) -> list[str]:
    """The SIDs of the texts sent for these events (to look their network statuses up)."""
    return [e.data.message_sid for e in events if isinstance(e, SmsSent)]
