"""What each contract event says on a timeline. Pure: one table (``WORDING``: event type -> who, channel, what)
read by one function (``timeline_entry``), and a generic entry for the rest.

Entries never carry phone numbers (the reporter's callback, SMS recipients). A type this module does not know
yet (a new event added to the contract after this was written) still gets an entry, built from its envelope.
A follow-up command its task refused when it was applied says so (``timeline_entries``), never "completed".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.contract.events import (
    DispatchAcknowledged,
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
    Envelope,
    FollowUpAssigned,
    FollowUpCancelled,
    FollowUpCompleted,
    FollowUpCreated,
    FollowUpOverdue,
    FollowUpRescheduled,
    IncidentCancelled,
    IncidentRelocated,
    IncidentReported,
    NaloxoneAdministered,
    NotificationRequested,
    ProgressReported,
    ResponderArrived,
    ResponderEnRoute,
    SmsFailed,
    SmsSent,
    SmsStatusUpdated,
)
from services.projections.domain.followups import refused_commands

PHONE_KEYS = frozenset({"to", "from_number", "to_number", "callback", "phone"})


@dataclass(frozen=True)
class Entry:
    actor: str
    channel: str
    summary: str
    details: dict[str, Any]


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
        actor=event.producer,
        channel="system",
        summary=event.type.replace(".", " ").replace("_", " "),
        details=_data(event),
    )


Text = Callable[[Any], str]
"""A part of an entry, from the event (its ``e.data`` holds the event's own fields)."""


@dataclass(frozen=True)
class Wording:
    """How one event type reads on a timeline: who (a name, or from the event), through which channel, what."""

    who: str | Text
    channel: str | Text
    what: Text
    details: Callable[[Any], dict[str, Any]] = _data


def _part(part: str | Text, event: Envelope) -> str:
    return part(event) if callable(part) else part


def timeline_entry(event: Envelope) -> Entry:
    """The entry an event adds to its incident's timeline (``WORDING``; a generic one for types not listed)."""
    wording = WORDING.get(type(event))
    if wording is None:
        return _generic(event)
    return Entry(_part(wording.who, event), _part(wording.channel, event), wording.what(event), wording.details(event))


# -- who did it ---------------------------------------------------------------------------------------------------


def responder(e: Any) -> str:
    return _responder(e.data.responder_id)


def _responder(responder_id: Any) -> str:
    return f"responder {responder_id}"


def progress_channel(e: Any) -> str:
    """A text (sms), or a button on the responder's incident page (app)."""
    return e.data.channel


def recorder(e: Any) -> str:
    return e.data.recorded_by or "intake"


def producer(e: Any) -> str:
    return e.producer


def by(field: str) -> Text:
    """The person the event names in ``field`` (``completed_by``, ``attested_by``, ...)."""
    return lambda e: getattr(e.data, field)


def reporter(e: Any) -> str:
    return f"reporter ({e.data.reporter.relation or 'unknown relation'})"


def assigner(e: Any) -> str:
    return "follow-up rules" if e.data.assigned_by == "rules" else e.data.assigned_by


def assigned_through(e: Any) -> str:
    return "system" if e.data.assigned_by == "rules" else "workspace"


# -- what happened: the longer sentences ----------------------------------------------------------------------


def reported(e: Any) -> str:
    d = e.data
    return f"{d.kind.value.replace('_', ' ')} reported, {d.priority.value}; needs {', '.join(d.needs)}"


def paged(e: Any) -> str:
    d, reason = e.data, e.data.reason
    return (
        f"paged {d.responder_role} as {reason.team_role} (step {d.step}, {reason.rung}, "
        f"{reason.distance_km:.1f} km, {reason.rule}); acknowledge by {d.ack_deadline.isoformat()}"
    )


def unfilled(e: Any) -> str:
    d = e.data
    shortfalls = f" ({', '.join(d.shortfalls)})" if d.shortfalls else ""
    return f"nobody could be paged at step {d.step}: {d.reason}{shortfalls}"


def notification_requested(e: Any) -> str:
    d = e.data
    return f"{d.channel.upper() if d.channel == 'sms' else 'voice call'} requested ({d.template})"


def notification_details(e: Any) -> dict[str, Any]:
    d = e.data
    return {"notification_id": str(d.notification_id), "template": d.template, "channel": d.channel}


def accepted_late(e: Any) -> str:
    outcome = "kept as backup" if e.data.outcome == "backup" else "stood down"
    return f"page {e.data.code} accepted late, {outcome}"


def escalated(e: Any) -> str:
    d = e.data
    return f"escalated from step {d.from_step} to {d.to_step} ({d.rung}) because {d.reason.replace('_', ' ')}"


def documentation_completed(e: Any) -> str:
    names = sorted(e.data.fields.model_dump(exclude_defaults=True))
    return f"documentation completed: {', '.join(names) or 'nothing'}"


def signed_off(e: Any) -> str:
    verb = "signed off" if e.data.decision == "approved" else "returned for changes"
    return f"documentation {verb} by the director"


def followup_created(e: Any) -> str:
    d = e.data
    return (
        f"follow-up {d.rule.replace('_', ' ')} for a {d.owner_role.value.replace('_', ' ')}, due {d.due_at.isoformat()}"
    )


def naloxone_given(e: Any) -> str:
    d = e.data
    response = f", response {d.response}" if d.response else ", response not yet known"
    return (
        f"naloxone given at {d.given_at.isoformat()} ({d.product}, {d.route}) by "
        f"{(d.given_by_role or 'someone').replace('_', ' ')}{response}"
    )


def relocated(e: Any) -> str:
    d = e.data
    where = "outside the service area" if d.outside_service_area else f"zone {d.zone or 'unknown'}"
    return f"person relocated ({where}): {d.reason or 'no reason given'}"


# -- what each event type says on a timeline: one table (any other type gets the generic entry) ----------------

WORDING: dict[type[Envelope], Wording] = {
    # reports, and what is added to them
    IncidentReported: Wording(reporter, lambda e: e.data.reporter.channel, reported),
    NaloxoneAdministered: Wording(recorder, "api", naloxone_given),
    EmsArrived: Wording(
        recorder,
        "api",
        lambda e: f"EMS arrived at {e.data.arrived_at.isoformat()} ({e.data.agency or 'agency not given'})",
    ),
    IncidentRelocated: Wording(recorder, "api", relocated),
    IncidentCancelled: Wording(recorder, "api", lambda e: f"incident cancelled: {e.data.reason}"),
    # paging and the response
    DispatchOffered: Wording("dispatcher", "system", paged),
    DispatchUnfilled: Wording("dispatcher", "system", unfilled),
    DispatchAcknowledged: Wording(responder, "sms", lambda e: f"page {e.data.code} accepted"),
    DispatchDeclined: Wording(responder, "sms", lambda e: f"page {e.data.code} declined"),
    DispatchTimedOut: Wording(
        "dispatcher", "system", lambda e: f"page {e.data.code} not acknowledged by {e.data.deadline.isoformat()}"
    ),
    DispatchUnreachable: Wording(
        "dispatcher", "system", lambda e: f"page {e.data.code} could not reach the responder: {e.data.reason}"
    ),
    DispatchWithdrawn: Wording("dispatcher", "system", lambda e: f"page {e.data.code} withdrawn ({e.data.reason})"),
    DispatchExtraAcceptance: Wording(responder, "sms", accepted_late),
    DispatchEscalated: Wording("dispatcher", "system", escalated),
    ResponderEnRoute: Wording(responder, progress_channel, lambda e: "en route"),
    ResponderArrived: Wording(responder, progress_channel, lambda e: "on scene"),
    DispatchCompleted: Wording(responder, progress_channel, lambda e: "response completed (DONE)"),
    ProgressReported: Wording(
        by("reported_by"), "app", lambda e: f"{e.data.stage.replace('_', ' ')} pressed on the incident page"
    ),
    # messages
    NotificationRequested: Wording(producer, "system", notification_requested, notification_details),
    SmsSent: Wording("notifier", "sms", lambda e: f"SMS sent ({e.data.status}, {e.data.segments} segment(s))"),
    SmsFailed: Wording("notifier", "sms", lambda e: f"SMS failed: {e.data.error_code} {e.data.error_message}"),
    SmsStatusUpdated: Wording("twilio", "sms", lambda e: f"SMS {e.data.status}"),
    # documentation
    DocumentationFieldsCompleted: Wording(by("completed_by"), "workspace", documentation_completed),
    DocumentationAttested: Wording(
        by("attested_by"), "workspace", lambda e: f"documentation attested ({e.data.attester_role})"
    ),
    DocumentationSignedOff: Wording(by("signed_off_by"), "workspace", signed_off),
    # follow-up tasks
    FollowUpCreated: Wording("follow-up rules", "system", followup_created),
    FollowUpAssigned: Wording(
        assigner, assigned_through, lambda e: f"follow-up assigned to {_responder(e.data.assignee_id)}"
    ),
    FollowUpCompleted: Wording(
        by("completed_by"), "workspace", lambda e: f"follow-up completed: {e.data.outcome.replace('_', ' ')}"
    ),
    FollowUpRescheduled: Wording(
        by("rescheduled_by"), "workspace", lambda e: f"follow-up rescheduled to {e.data.due_at.isoformat()}"
    ),
    FollowUpOverdue: Wording(
        "follow-up rules",
        "system",
        lambda e: f"follow-up overdue since {e.data.due_at.isoformat()}; {len(e.data.notified)} people told",
    ),
    FollowUpCancelled: Wording(
        by("cancelled_by"), "system", lambda e: f"follow-up cancelled ({e.data.reason.replace('_', ' ')})"
    ),
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


def timeline_entries(events: Sequence[Envelope]) -> list[Entry]:
    """The entries of one incident's events, in the order given (stream order). A follow-up command is folded
    into its task first (``followups.refused_commands``), so one the task refused shows as refused."""
    refused = refused_commands(events)
    return [refused_entry(e, refused[e.id]) if e.id in refused else timeline_entry(e) for e in events]
