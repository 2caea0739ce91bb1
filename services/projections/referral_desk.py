"""The referral desk (issue 17): tells each program about a referral, reads programs' SMS answers, closes the other
offers once one program accepts, and watches two deadlines.

A stream processor of its own (store and durable "referrals"), like the follow-up desk: what it decides is saved
with the stream position in one transaction and published by its outbox relay (referral_outbox.py). It reads:

- ``program.*``: each program's intake phone, name and language (``ProgramBook``);
- ``referral.*``: every transition, folded into the referral's ``ReferralCase`` with the one state machine
  (domain/referral.py); after ``referral.sent`` each program is texted the code and its signed link; after an
  accept the other open offers are withdrawn (and texted so), after a cancel every open offer;
- ``sms.received`` from a program's phone: ACCEPT / DECLINE / INFO / ARRIVED / NOSHOW <code>, BEDS <n> / FULL,
  SLOT <date> <time> (the organisation's time zone), HELP (domain/program_replies.py). Texts from any other phone
  are the dispatcher's (responders), not ours.

``fire_due(now)``, called by ``ReferralWatch`` on a timer and at start: a referral nobody accepted by its
``accept_by`` -> ``referral.acceptance_overdue`` (the dispatcher pages the on-call supervisor); an accepted
admission window that closed without an arrival -> ``referral.no_show`` with actor "deadline" (the follow-up desk
pages the coach). Each once: the deadlines live in the store (``DeadlineBook``) and are settled when they fire.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.contract.events import (
    REFERRAL_TRANSITIONS,
    Envelope,
    ProgramRegistered,
    ProgramRetired,
    ProgramUpdated,
    ReferralAccepted,
    ReferralAcceptedData,
    ReferralAdmitted,
    ReferralAdmittedData,
    ReferralDeclined,
    ReferralDeclinedData,
    ReferralInfoRequested,
    ReferralInfoRequestedData,
    ReferralNoShow,
    ReferralNoShowData,
    ReferralSent,
    SmsReceived,
    derived_id,
    new_event,
)
from services.contract.referral import OfferState, ReferralState
from services.projections.domain.program_replies import BedsReport, ReferralAnswer, SlotReport, parse_program_reply
from services.projections.domain.referral import ReferralView, may
from services.projections.domain.referral_case import DeadlineBook, ProgramBook, ReferralCase
from services.projections.referral_links import ReferralLinks
from services.projections.referral_outbox import PRODUCER, ReferralOutbox
from services.runtime.background import ClockWatch
from services.runtime.clock import Clock
from services.runtime.processor import StreamProcessor

log = logging.getLogger(__name__)
ANSWERABLE = (OfferState.SENT, OfferState.RECEIVED, OfferState.INFO_NEEDED)


class ReferralDeskSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRISIS_", extra="ignore")

    referral_check_seconds: float = Field(
        default=15.0, gt=0, description="how often the referral deadlines are checked"
    )
    referral_admission_hours: int = Field(default=24, ge=1, le=336, description="ACCEPT <code> without hours")
    referral_link_days: float = Field(default=14.0, gt=0, description="how long a program's referral link works")


class ReferralDesk(StreamProcessor):
    """The referrals' own state, kept from the stream; ``policy`` at the end of the class lists what it handles."""

    producer = PRODUCER
    # the desk's one-per-desk books: loaded per event, so a snapshot keeps that cost to open work, not history
    snapshotting_intervals = {ProgramBook: 50, DeadlineBook: 50}  # noqa: RUF012 - eventsourcing's class attribute

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock,
        links: ReferralLinks,
        settings: ReferralDeskSettings,
        time_zone: tzinfo = UTC,
    ) -> None:
        super().__init__(env, clock=clock)
        self.links = links
        self.settings = settings
        self.time_zone = time_zone  # the organisation's: a SLOT text is its local date and time

    # ---- our aggregates ----------------------------------------------------------------------------------------

    def _get(self, aggregate_id: UUID, factory: Callable[[], Any]) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return factory()

    def _book(self) -> ProgramBook:
        return self._get(ProgramBook.create_id(), ProgramBook)

    def _deadlines(self) -> DeadlineBook:
        return self._get(DeadlineBook.create_id(), DeadlineBook)

    def _case(self, referral_id: UUID) -> ReferralCase | None:
        try:
            return self.repository.get(referral_id)
        except AggregateNotFoundError:
            return None

    def view(self, referral_id: UUID) -> ReferralView | None:
        """The referral as the desk knows it (for tests and tools)."""
        case = self._case(referral_id)
        return case.view if case else None

    # ---- the stream ----------------------------------------------------------------------------------------------

    def on_program(self, event: ProgramRegistered | ProgramUpdated, processing_event: ProcessingEvent) -> None:
        data, book = event.data, self._book()
        language = "es" if data.languages and data.languages[0] == "es" else "en"
        book.list_program(str(data.program_id), data.intake_phone, data.name, language, False)
        processing_event.collect_events(book)

    def on_program_retired(self, event: ProgramRetired, processing_event: ProcessingEvent) -> None:
        book = self._book()
        known = book.programs.get(str(event.data.program_id))
        if known is not None:
            book.list_program(str(event.data.program_id), known["phone"], known["name"], known["language"], True)
            processing_event.collect_events(book)

    def on_referral_sent(self, event: ReferralSent, processing_event: ProcessingEvent) -> None:
        data = event.data
        if self._case(data.referral_id) is not None:
            return  # re-published after the duplicate window
        case = ReferralCase(referral_id=data.referral_id, event_json=event.to_json().decode())
        book, deadlines = self._book(), self._deadlines()
        programs = [str(p) for p in data.program_ids]
        told = [
            {"program_id": p, "phone": book.programs[p]["phone"], "language": book.programs[p]["language"]}
            for p in programs
            if p in book.programs and not book.programs[p]["retired"]
        ]
        case.text_offers(programs=told, at=event.occurred_at)
        deadlines.note_code(str(data.referral_id), data.code, programs)
        deadlines.set_due(str(data.referral_id), "accept_by", data.accept_by.isoformat())
        processing_event.collect_events(case, deadlines)

    def on_referral_event(self, event: Envelope, processing_event: ProcessingEvent) -> None:
        case = self._case(event.data.referral_id)
        if case is None:
            return
        case.apply(event_json=event.to_json().decode())
        deadlines = self._deadlines()
        self._after(case, deadlines, event.occurred_at)
        processing_event.collect_events(case, deadlines)

    def _after(self, case: ReferralCase, deadlines: DeadlineBook, at: datetime) -> None:
        """What follows a transition: close the other offers after an accept (every open one after a cancel), move
        from the accept deadline to the admission window, settle everything once the referral is final."""
        view, referral_id = case.view, str(case.id)
        if view is None:
            return
        book = self._book()
        open_offers = [o for o in view.offers if o.state in ANSWERABLE]
        if view.state is ReferralState.CANCELLED and case.decided.get("withdrawn") != "referral_cancelled":
            case.withdraw_others(programs=self._told(book, open_offers), reason="referral_cancelled", at=at)
        elif view.accepted_offer is not None and not case.decided.get("withdrawn") and open_offers:
            case.withdraw_others(programs=self._told(book, open_offers), reason="another_program_accepted", at=at)
        if view.final:
            deadlines.close(referral_id)
            return
        accepted = view.accepted_offer
        kinds = deadlines.due.get(referral_id, {})
        if accepted is not None and accepted.state is OfferState.ACCEPTED and accepted.admission_until:
            if kinds.get("accept_by"):
                deadlines.set_due(referral_id, "accept_by", None)
            if "admission_until" not in kinds and not case.decided.get("admission_missed"):
                deadlines.set_due(referral_id, "admission_until", accepted.admission_until.isoformat())

    @staticmethod
    def _told(book: ProgramBook, offers: Sequence[Any]) -> list[dict[str, Any]]:
        return [
            {
                "program_id": o.program_id,
                "phone": (book.programs.get(o.program_id) or {}).get("phone"),
                "language": (book.programs.get(o.program_id) or {}).get("language", "en"),
            }
            for o in offers
        ]

    def on_sms_received(self, event: SmsReceived, processing_event: ProcessingEvent) -> None:
        data, book = event.data, self._book()
        program_id = book.by_phone(data.from_number)
        if program_id is None:
            return  # a responder's or a stranger's text: the dispatcher's
        reply = parse_program_reply(data.body, self.time_zone)
        now = self.clock.now()
        if isinstance(reply, BedsReport):
            book.availability_texted(program_id, reply.beds_open, data.message_sid, now)
            processing_event.collect_events(book)
            return
        if isinstance(reply, SlotReport) and reply.next_intake_at > now:  # a slot already past is a slip: HELP
            book.availability_texted(program_id, None, data.message_sid, now, next_intake_at=reply.next_intake_at)
            processing_event.collect_events(book)
            return
        answered = (
            self._answer(reply, program_id, book, data.message_sid, now) if isinstance(reply, ReferralAnswer) else None
        )
        if answered is None:
            book.help_texted(program_id, data.message_sid, now)
            processing_event.collect_events(book)
            return
        case, deadlines = answered
        processing_event.collect_events(case, deadlines)

    def _answer(
        self, reply: ReferralAnswer, program_id: str, book: ProgramBook, message_sid: str, now: datetime
    ) -> tuple[ReferralCase, DeadlineBook] | None:
        """The SMS answer applied to the one open referral with that code sent to this program; None when there is
        none (or more than one), or when the state machine does not allow it now."""
        deadlines = self._deadlines()
        found = deadlines.referrals_coded(reply.code, program_id)
        if len(found) != 1:
            return None
        case = self._case(UUID(found[0]))
        if case is None or case.view is None:
            return None
        event = self._contract_answer(case.view, reply, program_id, book, message_sid, now)
        if not may(case.view, event):
            return None
        program = book.programs[program_id]
        case.answer_by_sms(
            event_json=event.to_json().decode(),
            phone=program["phone"],
            language=program["language"],
            answer=reply.answer,
        )
        self._after(case, deadlines, now)
        return case, deadlines

    def _contract_answer(
        self, view: ReferralView, reply: ReferralAnswer, program_id: str, book: ProgramBook, sid: str, now: datetime
    ) -> Envelope:
        common = {
            "referral_id": UUID(view.referral_id),
            "incident_id": UUID(view.incident_id),
            "program_id": UUID(program_id),
            "program_name": book.programs[program_id]["name"],
            "actor": "program sms",
            "channel": "sms",
        }
        hours = timedelta(hours=reply.hours or self.settings.referral_admission_hours)
        made: dict[str, tuple[Any, Any]] = {
            "accept": (
                ReferralAccepted,
                lambda: ReferralAcceptedData(**common, admission_from=now, admission_until=now + hours),
            ),
            "decline": (ReferralDeclined, lambda: ReferralDeclinedData(**common, reason=reply.reason)),
            "info": (ReferralInfoRequested, lambda: ReferralInfoRequestedData(**common, needed=list(reply.needed))),
            "arrived": (ReferralAdmitted, lambda: ReferralAdmittedData(**common, admitted_at=now)),
            "no_show": (
                ReferralNoShow,
                lambda: ReferralNoShowData(
                    **{k: v for k, v in common.items() if k != "program_name"}, code=view.code, window_closed_at=now
                ),
            ),
        }
        event_class, data = made[reply.answer]
        return new_event(
            event_class,
            data(),
            event_id=derived_id(sid, "referral-answer"),
            occurred_at=now,
            producer=PRODUCER,
            incident_id=UUID(view.incident_id),
        )

    # ---- the clock -------------------------------------------------------------------------------------------------

    def fire_due(self, now: datetime) -> int:
        """Every deadline passed by ``now``, each once (settled when it fires). Safe to call at any time."""
        with self.processing_lock:
            deadlines = self._deadlines()
            due = deadlines.due_by(now)
            if not due:
                return 0
            cases: dict[str, ReferralCase] = {}
            for referral_id, kind in due:
                deadlines.set_due(referral_id, kind, None)
                case = cases.get(referral_id) or self._case(UUID(referral_id))
                if case is None or case.view is None:
                    continue
                cases[referral_id] = case
                view = case.view
                if kind == "accept_by" and view.awaiting_answer and not case.decided.get("acceptance_overdue"):
                    declined, unanswered = view.counts()
                    case.acceptance_overdue(declined=declined, unanswered=unanswered, at=now)
                offer = view.accepted_offer
                if kind == "admission_until" and offer is not None and offer.state is OfferState.ACCEPTED:
                    if not case.decided.get("admission_missed") and offer.admission_until is not None:
                        case.admission_missed(
                            program_id=offer.program_id, window_closed_at=offer.admission_until, at=now
                        )
            self.save(deadlines, *cases.values())
            return len(due)

    # ---- outbox ----------------------------------------------------------------------------------------------------

    def outbox(self, domain_event: Any) -> Sequence[Envelope]:
        return ReferralOutbox(self.repository, self.links).translate(domain_event)

    # ---- what the desk handles: one list -------------------------------------------------------------------------

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Other events change no referral (they only advance the tracking position)."""

    policy.register(ProgramRegistered, on_program)
    policy.register(ProgramUpdated, on_program)
    policy.register(ProgramRetired, on_program_retired)
    policy.register(ReferralSent, on_referral_sent)
    for _transition in REFERRAL_TRANSITIONS[1:]:
        policy.register(_transition, on_referral_event)
    del _transition  # not a class attribute
    policy.register(SmsReceived, on_sms_received)


class ReferralWatch(ClockWatch):
    """Runs ``desk.fire_due`` at start and then every ``interval`` seconds; wakes the outbox after it fired."""

    name = "referral-watch"
    did = "referral deadline(s) passed"

    def __init__(self, desk: ReferralDesk, clock: Clock, interval: float, after: Callable[[], None]) -> None:
        super().__init__(desk.fire_due, clock, interval, after)
        self.desk = desk
