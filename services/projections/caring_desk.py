"""The caring desk (issue 19 section 2): caring contacts for a year after a suicidal crisis.

A stream processor of its own (store and durable "caring"), like the referral desk. It reads ``caring.enrolled``
(a clinician enrolled a person with their consent: a series opens), ``caring.withdrawn`` (staff ended it),
``sms.received`` from a phone of an open series (a reply: ``caring.reply_received`` with a code, which the
dispatcher pages to the on-call clinician, and the person is answered with 988/911) and ``sms.opt_out_changed``
(STOP from it: the series ends, ``caring.withdrawn`` reason stop; an opt-out keyword is never read as a reply).

``fire_due(now)``, called by ``CaringWatch`` on a timer and at start, sends each text when ``next_text`` says so
(``domain/caring.py``): each once, in order, in daytime, at most one a day. The series' state and the book of
open series live in the store with the stream position, so a restart or a moved clock neither doubles nor skips
a text. What is published is ``caring_outbox.py``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.contract.events import CaringEnrolled, CaringWithdrawn, Envelope, SmsOptOutChanged, SmsReceived
from services.contract.sms_keywords import KeywordEffect, keyword_of
from services.projections.caring_outbox import PRODUCER, CaringOutbox
from services.projections.domain.caring import (
    DEFAULT_SCHEDULE,
    CaringBook,
    CaringPolicy,
    CaringSeries,
    earliest_send,
    next_text,
    reply_code,
)
from services.runtime.background import ClockWatch
from services.runtime.clock import Clock
from services.runtime.processor import StreamProcessor

log = logging.getLogger(__name__)


class CaringDeskSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRISIS_", extra="ignore")

    caring_schedule_days: str = Field(
        default=",".join(str(d) for d in DEFAULT_SCHEDULE),
        description="days after the consent each caring text is due, increasing (recorded at enrolment)",
    )
    caring_check_seconds: float = Field(default=60.0, gt=0, description="how often due caring texts are looked for")

    def schedule(self) -> list[int]:
        return [int(part) for part in self.caring_schedule_days.split(",") if part.strip()]


class CaringDesk(StreamProcessor):
    """The caring-contacts series, kept from the stream; ``policy`` at the end of the class lists what it handles."""

    producer = PRODUCER
    # the desk's one book: loaded per event, so a snapshot keeps that cost to open work, not history
    snapshotting_intervals = {CaringBook: 50}  # noqa: RUF012 - eventsourcing's class attribute

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock,
        time_zone: tzinfo = UTC,
        policy: CaringPolicy | None = None,
    ) -> None:
        super().__init__(env, clock=clock)
        self.time_zone = time_zone  # the organisation's: texts go out in its daytime
        self.caring = policy or CaringPolicy()

    # ---- our aggregates and the reads for the pages ---------------------------------------------------------------

    def _book(self) -> CaringBook:
        try:
            return self.repository.get(CaringBook.create_id())
        except AggregateNotFoundError:
            return CaringBook()

    def _series(self, enrolment_id: UUID) -> CaringSeries | None:
        try:
            return self.repository.get(enrolment_id)
        except AggregateNotFoundError:
            return None

    def series_for(self, person_id: UUID) -> list[dict[str, Any]]:
        """Each series of the person, oldest first, as the person's page shows it."""
        ids = self._book().people.get(str(person_id), [])
        views = []
        for series in (self._series(UUID(i)) for i in ids):
            if series is None:
                continue
            view = series.view()
            if view["next_due"] is not None:  # when it will really go out: daytime, a day after the last
                view["next_due"] = earliest_send(view["next_due"], series.last_sent_at, self.time_zone, self.caring)
            views.append(view)
        return views

    # ---- the stream ---------------------------------------------------------------------------------------------

    def on_enrolled(self, event: CaringEnrolled, processing_event: ProcessingEvent) -> None:
        data = event.data
        if self._series(data.enrolment_id) is not None:
            return
        series = CaringSeries(
            data.enrolment_id, data.person_id, data.phone, data.language, data.schedule_days, data.consented_at
        )
        book = self._book()
        book.open_series(str(data.enrolment_id), str(data.person_id), data.phone)
        processing_event.collect_events(series, book)

    def on_withdrawn(self, event: CaringWithdrawn, processing_event: ProcessingEvent) -> None:
        series = self._series(event.data.enrolment_id)
        if series is None or series.ended is not None:
            return  # unknown, or ended already (our own STOP coming back, a second click)
        series.withdraw(event.data.reason, event.data.message_sid, False, event.occurred_at)
        book = self._book()
        book.close(str(series.id))
        processing_event.collect_events(series, book)

    def on_sms_received(self, event: SmsReceived, processing_event: ProcessingEvent) -> None:
        data, book = event.data, self._book()
        open_ids = book.by_phone(data.from_number)
        keyword = keyword_of(data.body)
        if not open_ids or (keyword and keyword[1] in (KeywordEffect.OPT_OUT, KeywordEffect.OPT_IN)):
            return  # not a person in a series; or STOP/START, which sms.opt_out_changed carries
        series = self._series(UUID(open_ids[-1]))
        if series is None or any(r["message_sid"] == data.message_sid for r in series.replies):
            return
        series.reply(reply_code(data.message_sid), data.message_sid, event.occurred_at)
        processing_event.collect_events(series)

    def on_opt_out(self, event: SmsOptOutChanged, processing_event: ProcessingEvent) -> None:
        data, book = event.data, self._book()
        if not data.opted_out:
            return
        changed: list[Any] = []
        for enrolment_id in book.by_phone(data.phone):
            series = self._series(UUID(enrolment_id))
            if series is not None and series.ended is None:
                series.withdraw("stop", data.message_sid, True, event.occurred_at)
                changed.append(series)
            book.close(enrolment_id)
        if changed:
            processing_event.collect_events(*changed, book)

    # ---- the clock ------------------------------------------------------------------------------------------------

    def fire_due(self, now: datetime) -> int:
        """Send every text due by ``now`` that ``next_text`` allows; how many. Safe to call at any time."""
        with self.processing_lock:
            book = self._book()
            changed: list[Any] = []
            for enrolment_id in list(book.open):
                series = self._series(UUID(enrolment_id))
                if series is None:
                    continue
                number = next_text(
                    series.schedule_days,
                    series.consented_at,
                    series.sent,
                    series.last_sent_at,
                    now,
                    self.time_zone,
                    self.caring,
                )
                if number is None:
                    continue
                series.send(number, now)
                if number == len(series.schedule_days):
                    series.complete(now)
                    book.close(enrolment_id)
                changed.append(series)
            if changed:
                self.save(*changed, book)
            return len(changed)

    # ---- outbox -------------------------------------------------------------------------------------------------

    def outbox(self, domain_event: Any) -> Sequence[Envelope]:
        return CaringOutbox(self.repository).translate(domain_event)

    # ---- what the desk handles: one list ------------------------------------------------------------------------

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Other events change no series (they only advance the tracking position)."""

    policy.register(CaringEnrolled, on_enrolled)
    policy.register(CaringWithdrawn, on_withdrawn)
    policy.register(SmsReceived, on_sms_received)
    policy.register(SmsOptOutChanged, on_opt_out)


class CaringWatch(ClockWatch):
    """Runs ``desk.fire_due`` at start and then every ``interval`` seconds; wakes the outbox after it sent."""

    name = "caring-watch"
    did = "caring text(s) sent"

    def __init__(self, desk: CaringDesk, clock: Clock, interval: float, after: Callable[[], None]) -> None:
        super().__init__(desk.fire_due, clock, interval, after)
        self.desk = desk
