"""The notifier's use cases: record a requested SMS, send it, record what happened.

A send is recorded before the provider call (Requested, with the stream position) and after it (Sent or
Failed). After a crash between the two, the sender sees a Requested without an outcome and sends again:
delivery is at-least-once, and a duplicate SMS is the price of never losing a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod

from services.contract.events import (
    Envelope,
    NotificationRequested,
    SmsFailed,
    SmsFailedData,
    SmsSent,
    SmsSentData,
    derived_id,
    new_event,
)
from services.notifier.domain.notification import Notification
from services.notifier.ports import PermanentSmsError, SmsSender
from services.runtime.processor import StreamProcessor

PRODUCER = "notifier"


class Notifier(StreamProcessor):
    producer = PRODUCER

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Other events only advance the tracking position."""

    @policy.register
    def _(self, requested: NotificationRequested, processing_event: ProcessingEvent) -> None:
        data = requested.data
        try:
            self.repository.get(data.notification_id)
            return  # already recorded (a re-publish past the de-duplication window)
        except AggregateNotFoundError:
            pass
        notification = Notification(
            id=data.notification_id,
            to=data.to,
            body=data.body,
            priority=data.priority.value,
            template=data.template,
            incident_id=data.incident_id,
            page_id=data.page_id,
            caused_by=requested.id,
            at=self.clock.now(),
        )
        processing_event.collect_events(notification)

    def send_if_unsettled(self, notification_id: Any, sender: SmsSender) -> None:
        """Send a recorded notification unless it already has an outcome. TransientSmsError propagates."""
        notification: Notification = self.repository.get(notification_id)
        if notification.is_settled:
            return
        cause = notification.id  # the notification.requested event id
        try:
            sent = sender.send(notification.to, notification.body)
        except PermanentSmsError as exc:
            notification.record_failed(
                error_code=exc.code,
                error_message=exc.message,
                permanent=True,
                caused_by=cause,
                at=self.clock.now(),
            )
        else:
            notification.record_sent(
                message_sid=sent.message_sid,
                provider_status=sent.status,
                segments=sent.segments,
                caused_by=cause,
                at=self.clock.now(),
            )
        self.save(notification)

    @singledispatchmethod
    def outbox(self, domain_event: Any) -> Sequence[Envelope]:
        return ()

    @outbox.register
    def _(self, sent: Notification.Sent) -> Sequence[Envelope]:
        requested = self.repository.get(sent.originator_id, version=1)
        data = SmsSentData(
            notification_id=sent.originator_id,
            message_sid=sent.message_sid,
            to=requested.to,
            status=sent.provider_status,
            segments=sent.segments,
        )
        return (self._event(SmsSent, data, sent, requested),)

    @outbox.register
    def _(self, failed: Notification.Failed) -> Sequence[Envelope]:
        requested = self.repository.get(failed.originator_id, version=1)
        data = SmsFailedData(
            notification_id=failed.originator_id,
            to=requested.to,
            error_code=failed.error_code,
            error_message=failed.error_message,
            permanent=failed.permanent,
        )
        return (self._event(SmsFailed, data, failed, requested),)

    def _event(self, event_class: type[Envelope], data: Any, stored: Any, requested: Notification) -> Envelope:
        return new_event(
            event_class,
            data,
            event_id=derived_id(stored.originator_id, stored.originator_version, event_class.TYPE),
            occurred_at=stored.at,
            producer=PRODUCER,
            incident_id=requested.incident_id,
            causation_id=stored.originator_id,
        )
