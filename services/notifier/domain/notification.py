"""One outgoing message and what became of it; a phone's opt-out; a provider message id's fate.

A notification is recorded when it is requested, again before every provider call (``AttemptStarted``)
and after it (``Sent``/``CallPlaced``, ``AttemptFailed`` or ``Failed``). A notification whose last record
is ``AttemptStarted`` was in flight when the notifier stopped: nobody knows whether it went, so it is sent
again (at-least-once; a duplicate page beats a lost one). A page's message still waiting is ``Dropped``
instead when its page or incident needs it no more (``page_traffic``).

Several lower-priority pages to one phone can be replaced by one bundle: the bundle is a notification of
its own (template ``open_pages_bundle``, ``members`` = the notifications it stands for), and each member
records ``Bundled``. The bundle's outcome is reported for every member.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from services.contract.events import without_retired_free_text

_NAMESPACE = uuid5(NAMESPACE_URL, "https://crisis-dispatch.invalid/notifier")

SETTLED = frozenset({"sent", "failed", "bundled", "dropped"})


def bundle_id(member_ids: list[UUID]) -> UUID:
    """The id of the bundle standing for these notifications: the same members always give the same id."""
    return uuid5(_NAMESPACE, "bundle/" + ",".join(sorted(str(m) for m in member_ids)))


def consent_id(phone: str) -> UUID:
    return uuid5(_NAMESPACE, f"consent/{phone}")


def provider_message_id(provider_sid: str) -> UUID:
    return uuid5(_NAMESPACE, f"provider-message/{provider_sid}")


class Notification(Aggregate):
    @event("Requested")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - the notification id chosen by the requester
        to: str,
        priority: str,
        template: str,
        incident_id: UUID | None,
        page_id: UUID | None,
        caused_by: UUID,
        at: datetime,
        params: dict[str, Any] | None = None,
        language: str = "en",
        channel: str = "sms",
        members: list[str] | None = None,
        body: str | None = None,  # notification.requested v1 carried a rendered body; kept for old records
    ) -> None:
        self.to, self.priority, self.template = to, priority, template
        # recorded before notification.requested v3: a page's free-text area is never rendered
        self.params = without_retired_free_text(template, dict(params or {}))
        self.language, self.channel = language, channel
        self.incident_id, self.page_id = incident_id, page_id
        self.members = [UUID(str(m)) for m in members or []]
        self.requested_at = at
        self.status = "requested"
        self.attempts = 0  # provider calls started
        self.failed_attempts = 0  # provider calls that failed transiently
        self.retry_at: datetime | None = None
        self.in_flight = False
        self.provider_sid: str | None = None
        self.delivery_failed = False
        self.bundled_into: UUID | None = None
        if body is not None:  # a v1 record: its wording is gone with v1, say "you have a message" instead
            self.template, self.params = "legacy_v1", {}

    @property
    def message_sid(self) -> str | None:
        return self.provider_sid

    @property
    def is_settled(self) -> bool:
        """Sent, failed, bundled or dropped: nothing more will be sent for it."""
        return self.status in SETTLED

    @property
    def can_drop(self) -> bool:
        """Still waiting to be sent, with no provider call under way: it can be kept from going."""
        return not self.is_settled and not self.in_flight

    @property
    def is_bundle(self) -> bool:
        return bool(self.members)

    @property
    def code(self) -> str | None:
        code = self.params.get("code")
        return code if isinstance(code, str) else None

    def due_at(self) -> datetime:
        """When the notification may be tried next."""
        return self.retry_at or self.requested_at

    @event("AttemptStarted")
    def start_attempt(self, attempt: int, at: datetime) -> None:
        """Recorded just before the provider call: if no outcome follows, the call may or may not have gone."""
        if self.is_settled:
            raise ValueError("a settled notification is not sent again")
        self.attempts = attempt
        self.in_flight = True

    @event("Sent")
    def record_sent(
        self,
        message_sid: str,
        provider_status: str,
        segments: int,
        caused_by: UUID,
        at: datetime,
        body: str | None = None,
    ) -> None:
        self.status = "sent"
        self.provider_sid = message_sid
        self.in_flight = False

    @event("CallPlaced")
    def record_call_placed(self, call_sid: str, provider_status: str, caused_by: UUID, at: datetime) -> None:
        self.status = "sent"
        self.provider_sid = call_sid
        self.in_flight = False

    @event("AttemptFailed")
    def record_attempt_failed(
        self, attempt: int, error_code: int | None, error_message: str, retry_at: datetime, at: datetime
    ) -> None:
        """A transient failure (429, 5xx, timeout): tried again at ``retry_at``."""
        self.failed_attempts += 1
        self.retry_at = retry_at
        self.in_flight = False

    @event("Failed")
    def record_failed(
        self, error_code: int | None, error_message: str, permanent: bool, caused_by: UUID, at: datetime
    ) -> None:
        """Given up: refused for good (permanent) or out of retries (not permanent)."""
        self.status = "failed"
        self.in_flight = False

    @event("Dropped")
    def drop(self, reason: str, at: datetime) -> None:
        """Not sent, and never to be: what it was for needs it no more (``page_traffic.DropReason``). A call that
        was in flight when the notifier stopped is dropped too, rather than made again."""
        self.status = "dropped"
        self.in_flight = False

    @event("Bundled")
    def record_bundled(self, bundle_id: UUID, at: datetime) -> None:
        """Replaced by the bundle ``bundle_id``, whose outcome stands for this notification's."""
        self.status = "bundled"
        self.bundled_into = bundle_id

    @event("DeliveryFailed")
    def record_delivery_failed(
        self, message_sid: str, provider_status: str, error_code: int | None, permanent: bool, at: datetime
    ) -> None:
        """The provider accepted it, then reported it undelivered (status callback)."""
        self.delivery_failed = True


class PhoneConsent(Aggregate):
    """Whether a phone has opted out of texts (STOP) or back in (START), as the provider reported it."""

    @event("Recorded")
    def __init__(self, id: UUID, opted_out: bool, keyword: str, changed_at: datetime) -> None:  # noqa: A002
        self.opted_out = opted_out
        self.changed_at = changed_at

    @event("Changed")
    def _change(self, opted_out: bool, keyword: str, changed_at: datetime) -> None:
        self.opted_out = opted_out
        self.changed_at = changed_at

    def change(self, opted_out: bool, keyword: str, changed_at: datetime) -> None:
        """Apply a STOP/START unless an SMS sent later already set the state (webhooks can arrive out of order)."""
        if changed_at < self.changed_at or opted_out == self.opted_out:
            return
        self._change(opted_out, keyword, changed_at)


class ProviderMessage(Aggregate):
    """A provider message SID, the notification it carried and its delivery failure, whichever came first.

    A status callback can overtake the save of the ``Sent`` record it is about, so the failure is kept
    here until the notification is linked, and acted on then.
    """

    @event("Seen")
    def __init__(self, id: UUID, provider_sid: str) -> None:  # noqa: A002
        self.provider_sid = provider_sid
        self.notification_id: UUID | None = None
        self.failure: tuple[str, int | None] | None = None

    @event("Linked")
    def link(self, notification_id: UUID) -> None:
        self.notification_id = notification_id

    @event("DeliveryFailed")
    def record_failure(self, status: str, error_code: int | None) -> None:
        self.failure = (status, error_code)
