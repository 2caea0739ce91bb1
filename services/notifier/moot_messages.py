"""The notifier's use cases that keep moot messages from going: a page answered or withdrawn, an incident cancelled
or closed, an alarm stopped (``domain/page_traffic.py`` says which messages each makes moot, and why).

Mixed into ``application.Notifier``, whose registration lists name these handlers. Each handler runs under the
notifier's processing lock, like every other state change, so it never races the send queue's ``begin_attempt``:
a message is either dropped here before its provider call starts, or it is in flight and goes. ``begin_attempt``
asks ``moot_reason`` once more just before a call, which also covers a message that was in flight when the
notifier stopped and a request that arrived after its page had closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent

from services.contract import events as contract
from services.notifier.domain.notification import Notification
from services.notifier.domain.page_traffic import (
    ALARM,
    ALARM_KEY,
    PAGE_NOTICES,
    WITHDRAWN_BECAUSE,
    DropReason,
    IncidentTraffic,
    is_tracked,
    slot_of,
)
from services.runtime.clock import Clock

PageClosing = (
    contract.DispatchDeclined | contract.DispatchTimedOut | contract.DispatchUnreachable | contract.DispatchWithdrawn
)

_CLOSED_BECAUSE: dict[type, DropReason] = {
    contract.DispatchDeclined: DropReason.PAGE_DECLINED,
    contract.DispatchTimedOut: DropReason.PAGE_TIMED_OUT,
    contract.DispatchUnreachable: DropReason.PAGE_UNREACHABLE,
}


class _Loaded:
    """The aggregates one handling reads, each loaded once: a second read would miss a change not yet saved."""

    def __init__(self, repository: Any, traffic: IncidentTraffic) -> None:
        self.repository = repository
        self.cache: dict[UUID, Any] = {traffic.id: traffic}
        self.changed: dict[UUID, Any] = {}

    def get(self, aggregate_id: UUID) -> Any:
        if aggregate_id not in self.cache:
            try:
                self.cache[aggregate_id] = self.repository.get(aggregate_id)
            except AggregateNotFoundError:
                self.cache[aggregate_id] = None
        return self.cache[aggregate_id]


class MootMessages:
    """Dropping what no longer needs sending (a mixin of ``Notifier``: it uses the notifier's store and clock)."""

    repository: Any
    clock: Clock
    dropped_lately: set[UUID]
    _for_each_target: Callable[..., Sequence[contract.Envelope]]  # the notifier's: one event per notification reported

    # --- what the stream tells us --------------------------------------------------------------------------

    def note_page_offered(self, offered: contract.DispatchOffered, processing_event: ProcessingEvent) -> None:
        """Which slot the page answers for: an accept covers the other pages of its slot."""
        data = offered.data
        traffic = self._traffic(data.incident_id)
        traffic.note_offer(data.page_id, slot_of(data.reason.team_role))
        processing_event.collect_events(traffic)

    def drop_for_accept(self, accepted: contract.DispatchAcknowledged, processing_event: ProcessingEvent) -> None:
        """The accepted page's queued reminder and call, and every queued message of the pages it covers."""
        traffic = self._traffic(accepted.data.incident_id)
        moot = traffic.accept(accepted.data.page_id, self.clock.now())
        self._drop_all(traffic, moot, processing_event)

    def drop_for_closed_page(self, closing: PageClosing, processing_event: ProcessingEvent) -> None:
        """A page declined, timed out, unreachable or withdrawn: its queued messages."""
        data = closing.data
        if isinstance(closing, contract.DispatchWithdrawn):
            reason = WITHDRAWN_BECAUSE[data.reason]
        else:
            reason = _CLOSED_BECAUSE[type(closing)]
        traffic = self._traffic(data.incident_id)
        moot = traffic.close_page(data.page_id, reason, self.clock.now())
        self._drop_all(traffic, [(n, reason) for n in moot], processing_event)

    def drop_for_cancelled_incident(
        self, cancelled: contract.IncidentCancelled, processing_event: ProcessingEvent
    ) -> None:
        self._close_incident(cancelled.data.incident_id, DropReason.INCIDENT_CANCELLED, processing_event)

    def drop_for_completed_incident(
        self, completed: contract.DispatchCompleted, processing_event: ProcessingEvent
    ) -> None:
        """The last responder on it is done: nothing of its pages or alarm is needed any more."""
        if completed.data.closes_incident:
            self._close_incident(completed.data.incident_id, DropReason.INCIDENT_CLOSED, processing_event)

    def drop_for_stopped_alarm(self, stopped: contract.DispatchAlarmStopped, processing_event: ProcessingEvent) -> None:
        """NOBODY ACCEPTED stopped: its texts and calls still queued."""
        traffic = self._find_traffic(stopped.data.incident_id)
        if traffic is not None:
            moot = [(n, DropReason.ALARM_STOPPED) for n in traffic.alarm_messages()]
            self._drop_all(traffic, moot, processing_event)

    # --- a new request, and the last look before a provider call ------------------------------------------

    def track_request(self, notification: Notification) -> list[Any]:
        """Keep a page's or an alarm's message with its incident; drop it at once when its page (or incident) is
        already closed, and a "page withdrawn" notice when nothing of that page reached the phone. The aggregates
        to save besides ``notification``."""
        notice = notification.template in PAGE_NOTICES
        if notification.incident_id is None or not (is_tracked(notification.template) or notice):
            return []
        if notice:
            traffic = self._find_traffic(notification.incident_id)
            if traffic is not None and self._withdraws_nothing(traffic, notification.page_id):
                self._drop(notification, DropReason.NOTHING_TO_WITHDRAW)
            return []
        alarm = notification.template in ALARM
        if not alarm and notification.page_id is None:
            return []
        traffic = self._traffic(notification.incident_id)
        traffic.track(ALARM_KEY if alarm else str(notification.page_id), notification.id)
        reason = traffic.moot(None if alarm else notification.page_id)
        if reason is not None:
            self._drop(notification, reason)
        return [traffic]

    def moot_reason(self, notification: Notification) -> DropReason | None:
        """Why ``notification`` (or, for a bundle, every page it stands for) is no longer needed; None if it is."""
        if notification.is_bundle:
            reasons = [self.moot_reason(self.repository.get(member)) for member in notification.members]
            return reasons[0] if reasons and all(reasons) else None
        if not is_tracked(notification.template) or notification.incident_id is None:
            return None
        traffic = self._find_traffic(notification.incident_id)
        if traffic is None:
            return None
        return traffic.moot(None if notification.template in ALARM else notification.page_id)

    # --- what goes out on the stream --------------------------------------------------------------------------

    def publish_dropped(self, dropped: Notification.Dropped) -> Sequence[contract.Envelope]:
        """Never sent: its page (or incident, or alarm) needed it no more."""
        return self._for_each_target(
            dropped,
            contract.NotificationDropped,
            lambda target: contract.NotificationDroppedData(
                notification_id=target.id,
                page_id=target.page_id,
                to=target.to,
                channel=target.channel,
                template=target.template,
                reason=dropped.reason,
            ),
        )

    def take_dropped(self) -> set[UUID]:
        """The notifications dropped since the last call (a hint for the send queue: check before forgetting)."""
        taken, self.dropped_lately = self.dropped_lately, set()
        return taken

    # --- the dropping itself -------------------------------------------------------------------------------

    def _close_incident(self, incident_id: UUID, reason: DropReason, processing_event: ProcessingEvent) -> None:
        traffic = self._traffic(incident_id)
        moot = traffic.close(reason, self.clock.now())
        self._drop_all(traffic, [(n, reason) for n in moot], processing_event)

    def _drop_all(
        self,
        traffic: IncidentTraffic,
        moot: Iterable[tuple[str, DropReason]],
        processing_event: ProcessingEvent,
    ) -> None:
        """Drop each notification still waiting; one that went as part of a bundle drops the bundle if it still
        waits and every page it stands for is closed."""
        loaded = _Loaded(self.repository, traffic)
        for notification_id, reason in moot:
            notification: Notification | None = loaded.get(UUID(notification_id))
            if notification is not None and notification.bundled_into is not None:
                notification = loaded.get(notification.bundled_into)
                if notification is None or not self._all_members_moot(notification, loaded):
                    continue
            if notification is not None and notification.can_drop:
                self._drop(notification, reason)
                loaded.changed[notification.id] = notification
        processing_event.collect_events(traffic, *loaded.changed.values())

    def _all_members_moot(self, bundle: Notification, loaded: _Loaded) -> bool:
        for member_id in bundle.members:
            member: Notification = loaded.get(member_id)
            if member.incident_id is None:
                return False
            traffic: IncidentTraffic | None = loaded.get(IncidentTraffic.create_id(member.incident_id))
            if traffic is None or traffic.moot(member.page_id) is None:
                return False
        return True

    def _withdraws_nothing(self, traffic: IncidentTraffic, page_id: UUID | None) -> bool:
        """Whether every message of the page was dropped (so the responder never heard of it)."""
        messages = [self._find_notification(UUID(n)) for n in traffic.page_messages(page_id)] if page_id else []
        return bool(messages) and all(n is not None and self._never_went(n) for n in messages)

    def _never_went(self, notification: Notification) -> bool:
        """Dropped, or bundled into a bundle that was dropped."""
        if notification.bundled_into is not None:
            bundle = self._find_notification(notification.bundled_into)
            return bundle is not None and bundle.status == "dropped"
        return notification.status == "dropped"

    def _drop(self, notification: Notification, reason: DropReason) -> None:
        notification.drop(reason.value, self.clock.now())
        self.dropped_lately.add(notification.id)

    def _find_notification(self, notification_id: UUID) -> Notification | None:
        try:
            return self.repository.get(notification_id)
        except AggregateNotFoundError:
            return None

    def _find_traffic(self, incident_id: UUID) -> IncidentTraffic | None:
        try:
            return self.repository.get(IncidentTraffic.create_id(incident_id))
        except AggregateNotFoundError:
            return None

    def _traffic(self, incident_id: UUID) -> IncidentTraffic:
        return self._find_traffic(incident_id) or IncidentTraffic(incident_id=incident_id)
