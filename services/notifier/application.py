"""The notifier's use cases: record requests, opt-outs and delivery failures; send; record what happened.

Why at-least-once. A send is recorded before the provider call (``AttemptStarted``) and after it (``Sent``
with the provider's SID, ``AttemptFailed`` or ``Failed``). If the notifier dies in between, nobody can know
whether the provider took the message; Twilio's Messages API has no idempotency key to ask it. Given the
choice between maybe sending a page twice and maybe never sending it, the notifier sends again: a
duplicate page costs a responder a second glance, a lost page can cost a life. Because messages go one at
a time, a crash duplicates at most the one message that was in flight.

Every method that changes state takes the processing lock, so the sending loop and the stream consumer
never write the same aggregate at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.utils import resolve_topic

from services.contract.events import (
    CallPlaced,
    CallPlacedData,
    DispatchAcknowledged,
    DispatchAlarmStopped,
    DispatchCompleted,
    DispatchDeclined,
    DispatchOffered,
    DispatchTimedOut,
    DispatchUnreachable,
    DispatchWithdrawn,
    Envelope,
    IncidentCancelled,
    NotificationRequested,
    SmsFailed,
    SmsFailedData,
    SmsOptOutChanged,
    SmsSent,
    SmsSentData,
    SmsStatusUpdated,
    derived_id,
    new_event,
    without_link_tokens,
)
from services.notifier.domain.delivery import (
    OPTED_OUT_CODE,
    RetryPolicy,
    is_failed_delivery,
    is_permanent_delivery_failure,
)
from services.notifier.domain.notification import (
    Notification,
    PhoneConsent,
    ProviderMessage,
    bundle_id,
    consent_id,
    provider_message_id,
)
from services.notifier.domain.place_names import NO_PLACES, PlaceBook
from services.notifier.domain.send_scheduler import BUNDLE_TEMPLATE, PRIORITY_RANK, QueueEntry
from services.notifier.domain.templates import TemplateError, render
from services.notifier.domain.voice_keypad import Keypad, keypad_for
from services.notifier.messaging_provider import PlacedCall, SentMessage
from services.notifier.moot_messages import MootMessages
from services.runtime.clock import Clock
from services.runtime.processor import StreamProcessor

PRODUCER = "notifier"


@dataclass(frozen=True)
class Attempt:
    """One provider call about to be made: recorded as started, not yet made."""

    notification_id: UUID
    channel: str
    to: str
    text: str
    language: str
    attempt: int
    keypad: Keypad | None = None  # a voice call that listens for a key (domain.voice_keypad)


class Notifier(StreamProcessor, MootMessages):
    """The notifier's state: what the stream asked it to send, what happened to each send, who opted out, and
    which page messages no longer need sending (``MootMessages``).

    What it handles from the stream (``policy``) and what it publishes (``outbox``) are listed together at the
    end of the class; the send queue (``send_queue.SendQueue``) calls the methods in between.
    """

    producer = PRODUCER
    subject_suffixes = {SmsStatusUpdated: ("failed",)}  # a failed delivery fails its notification; the rest: nothing
    batches = True  # up to CRISIS_CONSUMER_BATCH messages per store transaction (a drop hint from a failed batch is
    # harmless: the send queue checks a notification is settled before forgetting it)

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock,
        retry: RetryPolicy | None = None,
        places: PlaceBook = NO_PLACES,
    ) -> None:
        super().__init__(env, clock=clock)
        self.retry = retry or RetryPolicy()
        self.places = places  # the only place names a text may print (its own copy of the gazetteer)
        self.dropped_lately: set[UUID] = set()  # for the send queue to forget (``take_dropped``)

    # --- what the stream tells us (registered in ``policy`` below) ------------------------------------------

    def record_request(self, requested: NotificationRequested, processing_event: ProcessingEvent) -> None:
        """A new notification to send, unless it is already recorded."""
        data = requested.data
        if self._find(Notification, data.notification_id) is not None:
            return  # already recorded (a re-publish past the de-duplication window)
        notification = Notification(
            id=data.notification_id,
            to=data.to,
            priority=data.priority.value,
            template=data.template,
            params=data.params,
            language=data.language,
            channel=data.channel,
            incident_id=data.incident_id,
            page_id=data.page_id,
            caused_by=requested.id,
            at=self.clock.now(),
        )
        processing_event.collect_events(notification, *self.track_request(notification))

    def record_opt_out(self, change: SmsOptOutChanged, processing_event: ProcessingEvent) -> None:
        """A phone opted out (STOP) or back in (START): later SMS to it are not sent, or are again."""
        data = change.data
        consent = self._find(PhoneConsent, consent_id(data.phone))
        if consent is None:
            consent = PhoneConsent(
                id=consent_id(data.phone), opted_out=data.opted_out, keyword=data.keyword, changed_at=data.received_at
            )
        else:
            consent.change(data.opted_out, data.keyword, data.received_at)
        processing_event.collect_events(consent)

    def record_delivery_status(self, update: SmsStatusUpdated, processing_event: ProcessingEvent) -> None:
        """A delivery failure the provider reported later fails the notification it belongs to."""
        data = update.data
        if not is_failed_delivery(data.status):
            return  # queued, sent, delivered: the stream has them; nothing for the notifier to do
        message = self._find(ProviderMessage, provider_message_id(data.message_sid))
        if message is None:  # the callback overtook our record of the send: keep it for when that arrives
            message = ProviderMessage(id=provider_message_id(data.message_sid), provider_sid=data.message_sid)
        if message.failure is not None:
            return
        message.record_failure(data.status, data.error_code)
        changed: list[Any] = [message]
        if message.notification_id is not None:
            notification = self.repository.get(message.notification_id)
            if self._fail_delivery(notification, message):
                changed.append(notification)
        processing_event.collect_events(*changed)

    def _fail_delivery(self, notification: Notification, message: ProviderMessage) -> bool:
        if message.failure is None or notification.delivery_failed:
            return False
        status, code = message.failure
        notification.record_delivery_failed(
            message_sid=message.provider_sid,
            provider_status=status,
            error_code=code,
            permanent=is_permanent_delivery_failure(code),
            at=self.clock.now(),
        )
        return True

    def _find(self, cls: type, aggregate_id: UUID) -> Any:
        try:
            aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    # --- what the sending loop asks ------------------------------------------------------------------------

    def pending_since(self, position: int, limit: int = 100) -> tuple[list[QueueEntry], int]:
        """Unsettled notifications requested after log ``position``, and the last position read."""
        notifications = self.recorder.select_notifications(start=position + 1, limit=limit)
        entries = []
        for stored in notifications:
            # most of the log is the sending's own record (attempts, sends): told apart by the stored topic, not
            # decrypted and decoded (resolve_topic follows renamed topics and is cached)
            if not issubclass(resolve_topic(stored.topic), Notification.Requested):
                continue
            notification: Notification = self.repository.get(stored.originator_id)
            if not notification.is_settled:
                entries.append(self._entry(notification, stored.id))
        return entries, (notifications[-1].id if notifications else position)

    @staticmethod
    def _entry(notification: Notification, position: int) -> QueueEntry:
        return QueueEntry(
            notification_id=notification.id,
            position=position,
            to=notification.to,
            channel=notification.channel,
            priority=notification.priority,
            template=notification.template,
            code=notification.code,
            due_at=notification.due_at(),
            requested_at=notification.requested_at,
        )

    def begin_attempt(self, notification_id: UUID) -> Attempt | None:
        """Record that a provider call is about to be made; None if nothing is to be sent.

        Nothing is sent for a notification that is already settled, for a page's message its page no longer
        needs (dropped), for an SMS to a phone that opted out (recorded as failed with 21610, permanent, without
        calling the provider) or for one whose template cannot be rendered (failed, permanent).
        """
        with self.processing_lock:
            notification: Notification = self.repository.get(notification_id)
            if notification.is_settled:
                return None
            now = self.clock.now()
            moot = self.moot_reason(notification)
            if moot is not None:
                notification.drop(moot.value, now)
                self.save(notification)
                return None
            if notification.channel == "sms":
                consent = self._find(PhoneConsent, consent_id(notification.to))
                if consent is not None and consent.opted_out:
                    notification.record_failed(OPTED_OUT_CODE, "recipient opted out (STOP)", True, notification.id, now)
                    self.save(notification)
                    return None
            try:
                rendered = render(notification.template, notification.params, notification.language, self.places)
            except TemplateError as exc:
                notification.record_failed(None, str(exc), True, notification.id, now)
                self.save(notification)
                return None
            notification.start_attempt(notification.attempts + 1, now)
            self.save(notification)
            return Attempt(
                notification_id=notification.id,
                channel=notification.channel,
                to=notification.to,
                text=rendered.text,
                language=rendered.language,
                attempt=notification.attempts,
                keypad=keypad_for(notification.template, notification.params, notification.id, rendered.language)
                if notification.channel == "voice"
                else None,
            )

    def settled_among(self, notification_ids: set[UUID]) -> set[UUID]:
        """Those of ``notification_ids`` that are settled (sent, failed, bundled or dropped)."""
        with self.processing_lock:
            return {n for n in notification_ids if self.repository.get(n).is_settled}

    def record_sent(self, notification_id: UUID, sent: SentMessage, body: str) -> None:
        """The provider took the SMS: keep its SID, and act on a delivery failure that arrived first."""
        with self.processing_lock:
            notification: Notification = self.repository.get(notification_id)
            notification.record_sent(
                message_sid=sent.message_sid,
                provider_status=sent.status,
                segments=sent.segments,
                caused_by=notification.id,
                at=self.clock.now(),
                body=body,
            )
            message = self._find(ProviderMessage, provider_message_id(sent.message_sid))
            if message is None:
                message = ProviderMessage(id=provider_message_id(sent.message_sid), provider_sid=sent.message_sid)
            message.link(notification.id)
            self._fail_delivery(notification, message)
            self.save(notification, message)

    def record_call_placed(self, notification_id: UUID, call: PlacedCall) -> None:
        with self.processing_lock:
            notification: Notification = self.repository.get(notification_id)
            notification.record_call_placed(call.call_sid, call.status, notification.id, self.clock.now())
            self.save(notification)

    def record_refused(self, notification_id: UUID, error_code: int | None, error_message: str) -> None:
        """The provider refused for good: failed, permanent."""
        with self.processing_lock:
            notification: Notification = self.repository.get(notification_id)
            notification.record_failed(error_code, error_message, True, notification.id, self.clock.now())
            self.save(notification)

    def record_transient_failure(
        self, notification_id: UUID, error_code: int | None, error_message: str, fraction: float
    ) -> datetime | None:
        """Schedule a retry with backoff (returns when it is due), or give up (None: failed, not permanent).

        ``fraction`` is a uniform draw from [0, 1) for the jitter.
        """
        with self.processing_lock:
            notification: Notification = self.repository.get(notification_id)
            now = self.clock.now()
            failed = notification.failed_attempts + 1
            if self.retry.gives_up(failed):
                notification.record_failed(
                    error_code,
                    f"gave up after {failed} attempts: {error_message}",
                    False,
                    notification.id,
                    now,
                )
                self.save(notification)
                return None
            retry_at = now + timedelta(seconds=self.retry.delay(failed, fraction))
            notification.record_attempt_failed(notification.attempts, error_code, error_message, retry_at, now)
            self.save(notification)
            return retry_at

    def bundle(self, member_ids: Sequence[UUID]) -> UUID | None:
        """Replace unsettled notifications to one phone by one open_pages_bundle; its id, or None.

        The bundle and the members' ``Bundled`` records are saved in one transaction.
        """
        with self.processing_lock:
            members: list[Notification] = [self.repository.get(m) for m in member_ids]
            members = [m for m in members if not m.is_settled]
            if not members:
                return None
            bundle = Notification(
                id=bundle_id([m.id for m in members]),
                to=members[0].to,
                priority=min((m.priority for m in members), key=lambda p: PRIORITY_RANK.get(p, 3)),
                template=BUNDLE_TEMPLATE,
                params={"codes": list(dict.fromkeys(m.code for m in members if m.code))},
                language=members[0].language,
                channel="sms",
                incident_id=None,
                page_id=None,
                caused_by=members[0].id,
                at=self.clock.now(),
                members=[str(m.id) for m in members],
            )
            for member in members:
                member.record_bundled(bundle.id, self.clock.now())
            self.save(bundle, *members)
            return bundle.id

    # --- what goes out on the stream (registered in ``outbox`` below) ---------------------------------------

    def publish_sms_sent(self, sent: Notification.Sent) -> Sequence[Envelope]:
        return self._for_each_target(
            sent,
            SmsSent,
            lambda target: SmsSentData(
                notification_id=target.id,
                message_sid=sent.message_sid,
                to=target.to,
                status=sent.provider_status,
                segments=sent.segments,
                body=without_link_tokens(getattr(sent, "body", None)),  # a link is its recipient's alone
            ),
        )

    def publish_call_placed(self, placed: Notification.CallPlaced) -> Sequence[Envelope]:
        return self._for_each_target(
            placed,
            CallPlaced,
            lambda target: CallPlacedData(
                notification_id=target.id, call_sid=placed.call_sid, to=target.to, status=placed.provider_status
            ),
        )

    def publish_sms_failed(self, failed: Notification.Failed) -> Sequence[Envelope]:
        """The send failed: the provider refused it, it gave up retrying, or it was never sent (opted out)."""
        return self._publish_failure(failed, failed.error_message)

    def publish_delivery_failed(self, failed: Notification.DeliveryFailed) -> Sequence[Envelope]:
        """Sent, then reported undelivered by the provider: an ``sms.failed`` naming the message SID."""
        return self._publish_failure(failed, f"delivery {failed.provider_status}", message_sid=failed.message_sid)

    def _publish_failure(self, failed: Any, error_message: str, message_sid: str | None = None) -> Sequence[Envelope]:
        return self._for_each_target(
            failed,
            SmsFailed,
            lambda target: SmsFailedData(
                notification_id=target.id,
                to=target.to,
                error_code=failed.error_code,
                error_message=error_message,
                permanent=failed.permanent,
                channel=target.channel,
                message_sid=message_sid,
            ),
        )

    def _for_each_target(
        self, stored: Any, event_class: type[Envelope], data_for: Callable[[Notification], Any]
    ) -> Sequence[Envelope]:
        """One contract event per notification the outcome is reported for (each member of a bundle)."""
        return tuple(
            self._event(event_class, data_for(target), stored, target, bundled)
            for target, bundled in self._targets(stored.originator_id)
        )

    def _targets(self, notification_id: UUID) -> list[tuple[Notification, bool]]:
        """Whom an outcome is reported for: the notification itself, or every member of a bundle."""
        requested: Notification = self.repository.get(notification_id, version=1)
        if not requested.members:
            return [(requested, False)]
        return [(self.repository.get(member, version=1), True) for member in requested.members]

    def _event(
        self, event_class: type[Envelope], data: Any, stored: Any, target: Notification, bundled: bool
    ) -> Envelope:
        parts: tuple[Any, ...] = (stored.originator_id, stored.originator_version, event_class.TYPE)
        return new_event(
            event_class,
            data,
            event_id=derived_id(*parts, target.id) if bundled else derived_id(*parts),
            occurred_at=stored.at,
            producer=PRODUCER,
            incident_id=target.incident_id,
            causation_id=target.id,
        )

    # --- what the notifier handles, and what it publishes: one list -------------------------------------------

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Other events only advance the tracking position."""

    policy.register(NotificationRequested, record_request)
    policy.register(SmsOptOutChanged, record_opt_out)
    policy.register(SmsStatusUpdated, record_delivery_status)
    policy.register(DispatchOffered, MootMessages.note_page_offered)
    policy.register(DispatchAcknowledged, MootMessages.drop_for_accept)
    policy.register(DispatchDeclined, MootMessages.drop_for_closed_page)
    policy.register(DispatchTimedOut, MootMessages.drop_for_closed_page)
    policy.register(DispatchUnreachable, MootMessages.drop_for_closed_page)
    policy.register(DispatchWithdrawn, MootMessages.drop_for_closed_page)
    policy.register(IncidentCancelled, MootMessages.drop_for_cancelled_incident)
    policy.register(DispatchCompleted, MootMessages.drop_for_completed_incident)
    policy.register(DispatchAlarmStopped, MootMessages.drop_for_stopped_alarm)

    @singledispatchmethod
    def outbox(self, domain_event: Any) -> Sequence[Envelope]:
        """Other stored events publish nothing."""
        return ()

    outbox.register(Notification.Sent, publish_sms_sent)
    outbox.register(Notification.CallPlaced, publish_call_placed)
    outbox.register(Notification.Failed, publish_sms_failed)
    outbox.register(Notification.DeliveryFailed, publish_delivery_failed)
    outbox.register(Notification.Dropped, MootMessages.publish_dropped)
