"""What each contract event says on a timeline, in plain words. Pure: one table (``WORDING``: event type -> who,
channel, what) read by one function (``timeline_entry``), and a generic entry for the rest.

Entries name people by name and role and give times in the organisation's time zone (``Telling``); they never
carry phone numbers (the reporter's callback, SMS recipients) nor raw timestamps inside a sentence. A message's
reports (sent, delivered, failed, dropped) fold into its row (``messages.fold_messages``). A type this module does
not know yet (added to the contract after this was written) still gets an entry, built from its envelope. A
follow-up command its task refused when it was applied says so (``timeline_entries``), never "completed".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.contract.events import (
    BackupRequested,
    CallPlaced,
    CannotLocate,
    CheckInConfirmed,
    CheckInDuress,
    CheckInEnded,
    CheckInMissed,
    CheckInPrompted,
    CheckInStarted,
    DispatchAcknowledged,
    DispatchAlarmRaised,
    DispatchAlarmStopped,
    DispatchCompleted,
    DispatchDeclined,
    DispatchEscalated,
    DispatchExtraAcceptance,
    DispatchOffered,
    DispatchTimedOut,
    DispatchUnfilled,
    DispatchUnreachable,
    DispatchWithdrawn,
    DocumentationAttested,
    DocumentationFieldsCompleted,
    DocumentationSignedOff,
    EmsArrived,
    EmsCalled,
    EmsOverdue,
    Envelope,
    EtaGiven,
    EtaOverdue,
    FollowUpAssigned,
    FollowUpAttemptRecorded,
    FollowUpCancelled,
    FollowUpCompleted,
    FollowUpCreated,
    FollowUpOverdue,
    FollowUpRescheduled,
    FollowUpSeriesEnded,
    IncidentCancelled,
    IncidentReassessed,
    IncidentRelocated,
    IncidentReported,
    MoudAppointmentKept,
    MoudBridgeRecorded,
    NaloxoneAdministered,
    NaloxoneLeftBehind,
    NaloxoneRestockReported,
    NaloxoneStockChanged,
    NaloxoneStockLow,
    NotificationDropped,
    NotificationRequested,
    PairWait,
    ProgressReported,
    ResponderArrived,
    ResponderEnRoute,
    ResponderRestEnded,
    ResponderRestStarted,
    SmsFailed,
    SmsSent,
    SmsStatusUpdated,
    VitalsRecorded,
)
from services.projections.domain.followups import refused_commands
from services.projections.domain.messages import DeliveryStatus, Outcome, fold_messages
from services.projections.domain.plain_words import CHANNEL_WORDS, words
from services.projections.domain.referral_sentences import REFERRAL_WORDING
from services.projections.domain.sentences import (
    Text,
    accepted_late,
    alarm_raised,
    alarm_stopped,
    assigned_through,
    assigner,
    backup_requested,
    by,
    cannot_locate,
    channel_or_system,
    check_in_confirmed,
    check_in_ended,
    check_in_missed,
    check_in_prompted,
    check_in_started,
    documentation_completed,
    duress,
    ems_arrived,
    ems_called,
    ems_overdue,
    escalated,
    eta_given,
    eta_overdue,
    field_reporter,
    followup_created,
    left_behind,
    message_channel,
    message_details,
    message_report,
    message_request,
    naloxone_given,
    paged,
    pair_wait,
    producer,
    producer_words,
    progress_channel,
    reassessed,
    recorded_through,
    recorder,
    relocated,
    reported,
    reporter,
    responder,
    restock_reported,
    signed_off,
    stock_changed,
    stock_low,
    unfilled,
    vitals,
    withdrawn,
)
from services.projections.domain.telling import Telling

PHONE_KEYS = frozenset({"to", "from_number", "to_number", "callback", "phone"})
PLAIN = Telling()


@dataclass(frozen=True)
class Entry:
    actor: str
    channel: str
    summary: str
    details: dict[str, Any]
    folded_into: UUID | None = None
    """A message's report shown on its message's row: the id of that row's event."""
    outcomes: tuple[Outcome, ...] = ()
    """A message row's outcomes (sent, delivered, ...), in time order."""

    @property
    def how(self) -> str:
        """The channel in words ('text', 'voice call', 'incident page')."""
        return CHANNEL_WORDS.get(self.channel, self.channel)


def without_phones(value: Any) -> Any:
    """``value`` with every phone-number field removed, at any depth."""
    if isinstance(value, dict):
        return {k: without_phones(v) for k, v in value.items() if k not in PHONE_KEYS}
    if isinstance(value, list):
        return [without_phones(v) for v in value]
    return value


def _data(event: Envelope) -> dict[str, Any]:
    data = event.data
    dumped = data.model_dump(mode="json") if hasattr(data, "model_dump") else data
    return without_phones(dumped) if isinstance(dumped, dict) else {"value": dumped}


def _generic(event: Envelope) -> Entry:
    """The entry of a type without its own wording: who produced it, and its type in words."""
    return Entry(
        actor=producer_words(event.producer),
        channel="system",
        summary=event.type.replace(".", " ").replace("_", " "),
        details=_data(event),
    )


@dataclass(frozen=True)
class Wording:
    """How one event type reads on a timeline: who (a name, or from the event), through which channel, what."""

    who: str | Text
    channel: str | Text
    what: Text
    details: Callable[[Any], dict[str, Any]] = _data


def _part(part: str | Text, event: Envelope, telling: Telling) -> str:
    return part(event, telling) if callable(part) else part


def timeline_entry(event: Envelope, telling: Telling = PLAIN) -> Entry:
    """The entry an event adds to its incident's timeline (``WORDING``; a generic one for types not listed)."""
    wording = WORDING.get(type(event))
    if wording is None:
        return _generic(event)
    who, channel = _part(wording.who, event, telling), _part(wording.channel, event, telling)
    return Entry(who, channel, wording.what(event, telling), wording.details(event))


# -- what each event type says on a timeline: one table (any other type gets the generic entry) ----------------

WORDING: dict[type[Envelope], Wording] = {
    # reports, and what is added to them
    IncidentReported: Wording(reporter, lambda e, t: e.data.reporter.channel, reported),
    NaloxoneAdministered: Wording(recorder, recorded_through, naloxone_given),
    EmsArrived: Wording(recorder, recorded_through, ems_arrived),
    IncidentRelocated: Wording(recorder, "api", relocated),
    IncidentCancelled: Wording(recorder, "api", lambda e, t: f"incident cancelled: {e.data.reason}"),
    # paging and the response
    DispatchOffered: Wording("dispatch", "system", paged),
    DispatchUnfilled: Wording("dispatch", "system", unfilled),
    DispatchAcknowledged: Wording(responder, "sms", lambda e, t: f"accepted page {e.data.code}"),
    DispatchDeclined: Wording(responder, "sms", lambda e, t: f"declined page {e.data.code}"),
    DispatchTimedOut: Wording(
        "dispatch",
        "system",
        lambda e, t: (
            f"page {e.data.code} to {t.person(e.data.responder_id)} not answered by "
            f"{t.moment(e.data.deadline, e.occurred_at)}"
        ),
    ),
    DispatchUnreachable: Wording(
        "dispatch",
        "system",
        lambda e, t: f"page {e.data.code} could not reach {t.person(e.data.responder_id)}: {e.data.reason}",
    ),
    DispatchWithdrawn: Wording("dispatch", "system", withdrawn),
    DispatchExtraAcceptance: Wording(responder, "sms", accepted_late),
    DispatchEscalated: Wording("dispatch", "system", escalated),
    DispatchAlarmRaised: Wording("dispatch", "system", alarm_raised),
    DispatchAlarmStopped: Wording("dispatch", "system", alarm_stopped),
    ResponderEnRoute: Wording(responder, progress_channel, lambda e, t: "en route"),
    ResponderArrived: Wording(responder, progress_channel, lambda e, t: "on scene"),
    DispatchCompleted: Wording(
        responder,
        progress_channel,
        lambda e, t: "done" + (": the incident is closed" if e.data.closes_incident else ""),
    ),
    ProgressReported: Wording(
        by("reported_by"), "app", lambda e, t: f"pressed “{words(e.data.stage)}” on the incident page"
    ),
    # messages: each request is a row; what became of it folds into that row (``timeline_entries``)
    NotificationRequested: Wording(producer, message_channel, message_request, message_details),
    SmsSent: Wording("messaging", "sms", message_report),
    CallPlaced: Wording("messaging", "voice", message_report),
    SmsFailed: Wording("messaging", lambda e, t: e.data.channel, message_report),
    NotificationDropped: Wording("messaging", lambda e, t: e.data.channel, message_report),
    SmsStatusUpdated: Wording("phone network", "sms", lambda e, t: f"text {words(e.data.status)}"),
    # documentation
    DocumentationFieldsCompleted: Wording(by("completed_by"), "workspace", documentation_completed),
    DocumentationAttested: Wording(
        by("attested_by"), "workspace", lambda e, t: f"documentation attested ({words(e.data.attester_role)})"
    ),
    DocumentationSignedOff: Wording(by("signed_off_by"), "workspace", signed_off),
    # follow-up tasks
    FollowUpCreated: Wording("follow-up rules", "system", followup_created),
    FollowUpAssigned: Wording(
        assigner, assigned_through, lambda e, t: f"follow-up assigned to {t.person(e.data.assignee_id)}"
    ),
    FollowUpCompleted: Wording(
        by("completed_by"), "workspace", lambda e, t: f"follow-up completed: {words(e.data.outcome)}"
    ),
    FollowUpRescheduled: Wording(
        by("rescheduled_by"),
        "workspace",
        lambda e, t: f"follow-up rescheduled to {t.moment(e.data.due_at, e.occurred_at)}",
    ),
    FollowUpOverdue: Wording(
        "follow-up rules",
        "system",
        lambda e, t: (
            f"follow-up overdue since {t.moment(e.data.due_at, e.occurred_at)}; {len(e.data.notified)} people told"
        ),
    ),
    FollowUpCancelled: Wording(
        by("cancelled_by"), "system", lambda e, t: f"follow-up cancelled ({words(e.data.reason)})"
    ),
    # the field (issue 18): check-ins (a duress signal is staff only: ``access.staff_only``)
    CheckInStarted: Wording(responder, progress_channel, check_in_started),
    CheckInPrompted: Wording("dispatch", "system", check_in_prompted),
    CheckInConfirmed: Wording(responder, progress_channel, check_in_confirmed),
    CheckInMissed: Wording("dispatch", "system", check_in_missed),
    CheckInDuress: Wording("dispatch", "system", duress),
    CheckInEnded: Wording(responder, channel_or_system, check_in_ended),
    PairWait: Wording("dispatch", "system", pair_wait),
    # field reports
    EtaGiven: Wording(responder, "sms", eta_given),
    EtaOverdue: Wording("dispatch", "system", eta_overdue),
    CannotLocate: Wording(responder, "sms", cannot_locate),
    BackupRequested: Wording(responder, "sms", backup_requested),
    VitalsRecorded: Wording(responder, progress_channel, vitals),
    EmsCalled: Wording(field_reporter, progress_channel, ems_called),
    EmsOverdue: Wording("dispatch", "system", ems_overdue),
    IncidentReassessed: Wording(by("recorded_by"), "app", reassessed),
    # naloxone in the bag
    NaloxoneStockChanged: Wording("dispatch", channel_or_system, stock_changed),
    NaloxoneRestockReported: Wording(by("recorded_by"), "app", restock_reported),
    NaloxoneLeftBehind: Wording(responder, progress_channel, left_behind),
    NaloxoneStockLow: Wording("dispatch", "system", stock_low),
}


# -- follow-up commands the task refused -----------------------------------------------------------------------

REFUSED_COMMANDS = {
    "followup.assigned": ("assignment", "assigned_by"),
    "followup.completed": ("completion", "completed_by"),
    "followup.rescheduled": ("reschedule", "rescheduled_by"),
}
FREE_TEXT = frozenset({"note", "reason"})
"""What a person typed with a command: a refused command's text may be about another incident's client."""


def refused_entry(event: Envelope, why: str) -> Entry:
    """The entry of a follow-up command that changed nothing: who tried what, why it was refused; not its text."""
    what, by = REFUSED_COMMANDS[event.type]
    actor = getattr(event.data, by)
    details = {k: v for k, v in _data(event).items() if k not in FREE_TEXT} | {"refused": why}
    channel = "system" if actor == "rules" else "workspace"
    return Entry(actor, channel, f"follow-up {what} refused: {why}", details)


def with_outcomes(entry: Entry, outcomes: Sequence[Outcome], telling: Telling) -> Entry:
    """A message row with what became of it: 'page text to Cleo Clinician (clinician): sent 09:00:13, delivered
    09:00:15'."""
    if not outcomes:
        return entry
    said = ", ".join(
        f"{o.words} {telling.short_clock(o.at)}" + (f" ({o.detail})" if o.detail else "") for o in outcomes
    )
    return Entry(entry.actor, entry.channel, f"{entry.summary}: {said}", entry.details, outcomes=tuple(outcomes))


def timeline_entries(
    events: Sequence[Envelope], telling: Telling = PLAIN, statuses: Iterable[DeliveryStatus] = ()
) -> list[Entry]:
    """The entries of one incident's events, in the order given (stream order), one per event.

    A follow-up command is folded into its task first (``followups.refused_commands``), so one the task refused
    shows as refused. A message's reports (and the network's ``statuses`` of its text) fold into its request's
    entry: theirs carry ``folded_into``, the request's its ``outcomes``."""
    refused = refused_commands(events)
    messages = fold_messages(events, statuses)
    entries = []
    for event in events:
        if event.id in refused:
            entries.append(refused_entry(event, refused[event.id]))
            continue
        entry = timeline_entry(event, telling)
        if event.id in messages.folded_into:
            entry = Entry(entry.actor, entry.channel, entry.summary, entry.details, messages.folded_into[event.id])
        elif event.id in messages.outcomes:
            entry = with_outcomes(entry, messages.outcomes[event.id], telling)
        entries.append(entry)
    return entries


# issue 17: the referral's and the person record's incident events (referral_sentences.py)
WORDING |= {
    kind: Wording(by(who) if who in ("actor", "sent_by", "chosen_by") else who, channel, what)
    for kind, (who, channel, what) in REFERRAL_WORDING.items()
}


def _attempt(e: Any, t: Any) -> str:
    d = e.data
    said = f"outreach attempt {d.number} by {d.channel}: " + ("reached" if d.reached else "not reached")
    if d.offered:
        said += "; offered " + ", ".join(words(o) for o in d.offered)
    if d.accepted:
        said += "; accepted " + ", ".join(words(o) for o in d.accepted)
    if d.safety_plan_reviewed is not None:
        said += "; safety plan " + ("reviewed" if d.safety_plan_reviewed else "not reviewed")
    if d.further_contact is not None:
        said += "; further contact " + ("agreed" if d.further_contact else "declined")
    return said


# issue 19: the outreach series (domain/outreach.py)
WORDING |= {
    FollowUpAttemptRecorded: Wording(by("recorded_by"), "workspace", _attempt),
    FollowUpSeriesEnded: Wording(
        by("ended_by"),
        "workspace",
        lambda e, t: f"outreach series ended after {e.data.attempts} attempt(s): {words(e.data.outcome)}",
    ),
}


def _bridge(e: Any, t: Any) -> str:
    d = e.data
    said = f"MOUD bridge ({words(d.medication.value)})"
    if d.dose_mg is not None:
        said += f": {d.dose_mg:g} mg given at {t.moment(d.dose_given_at, e.occurred_at)}"
    if d.prescription_days:
        said += f"; prescription for {d.prescription_days} day(s)"
    return said + f"; clinic appointment {t.moment(d.appointment_at, e.occurred_at)}"


# issue 19: MOUD continuity (services/contract/moud.py)
WORDING |= {
    MoudBridgeRecorded: Wording(by("recorded_by"), "workspace", _bridge),
    MoudAppointmentKept: Wording(
        by("recorded_by"),
        "workspace",
        lambda e, t: f"MOUD bridge appointment kept ({t.moment(e.data.kept_at, e.occurred_at)})",
    ),
}


# issue 19: rest after a hard call (services/dispatcher/rest.py)
WORDING |= {
    ResponderRestStarted: Wording(
        "dispatch",
        "system",
        lambda e, t: (
            f"{t.person(e.data.responder_id)} rests until {t.moment(e.data.until, e.occurred_at)} after "
            f"{e.data.what}: passed over in routing while anyone else can go"
        ),
    ),
    ResponderRestEnded: Wording(
        by("ended_by"), "workspace", lambda e, t: f"{t.person(e.data.responder_id)}'s rest ended early"
    ),
}
