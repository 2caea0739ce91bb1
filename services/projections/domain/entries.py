"""What each contract event says on a timeline. Pure: one function per event type (``timeline_entry.register``:
one list, after the functions), and a generic entry for the rest.

Entries never carry phone numbers (the reporter's callback, SMS recipients). A type this module does not know
yet (a new event added to the contract after this was written) still gets an entry, built from its envelope.
A follow-up command its task refused when it was applied says so (``timeline_entries``), never "completed".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import singledispatch
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


@singledispatch
def timeline_entry(event: Envelope) -> Entry:
    """The entry an event adds to its incident's timeline (a generic one for types not listed here)."""
    return Entry(
        actor=event.producer,
        channel="system",
        summary=event.type.replace(".", " ").replace("_", " "),
        details=_data(event),
    )


def _responder(responder_id: Any) -> str:
    return f"responder {responder_id}"


def report_entry(event: IncidentReported) -> Entry:
    data = event.data
    return Entry(
        actor=f"reporter ({data.reporter.relation or 'unknown relation'})",
        channel=data.reporter.channel,
        summary=f"{data.kind.value.replace('_', ' ')} reported, {data.priority.value}; needs {', '.join(data.needs)}",
        details=_data(event),
    )


def page_offered_entry(event: DispatchOffered) -> Entry:
    data = event.data
    reason = data.reason
    return Entry(
        actor="dispatcher",
        channel="system",
        summary=(
            f"paged {data.responder_role} as {reason.team_role} (step {data.step}, {reason.rung}, "
            f"{reason.distance_km:.1f} km, {reason.rule}); acknowledge by {data.ack_deadline.isoformat()}"
        ),
        details=_data(event),
    )


def unfilled_entry(event: DispatchUnfilled) -> Entry:
    data = event.data
    shortfalls = f" ({', '.join(data.shortfalls)})" if data.shortfalls else ""
    return Entry(
        "dispatcher", "system", f"nobody could be paged at step {data.step}: {data.reason}{shortfalls}", _data(event)
    )


def notification_requested_entry(event: NotificationRequested) -> Entry:
    data = event.data
    return Entry(
        event.producer,
        "system",
        f"{data.channel.upper() if data.channel == 'sms' else 'voice call'} requested ({data.template})",
        {"notification_id": str(data.notification_id), "template": data.template, "channel": data.channel},
    )


def sms_sent_entry(event: SmsSent) -> Entry:
    data = event.data
    return Entry("notifier", "sms", f"SMS sent ({data.status}, {data.segments} segment(s))", _data(event))


def sms_failed_entry(event: SmsFailed) -> Entry:
    data = event.data
    return Entry("notifier", "sms", f"SMS failed: {data.error_code} {data.error_message}", _data(event))


def sms_status_entry(event: SmsStatusUpdated) -> Entry:
    return Entry("twilio", "sms", f"SMS {event.data.status}", _data(event))


def page_accepted_entry(event: DispatchAcknowledged) -> Entry:
    data = event.data
    return Entry(_responder(data.responder_id), "sms", f"page {data.code} accepted", _data(event))


def page_declined_entry(event: DispatchDeclined) -> Entry:
    data = event.data
    return Entry(_responder(data.responder_id), "sms", f"page {data.code} declined", _data(event))


def page_timed_out_entry(event: DispatchTimedOut) -> Entry:
    data = event.data
    return Entry(
        "dispatcher", "system", f"page {data.code} not acknowledged by {data.deadline.isoformat()}", _data(event)
    )


def page_unreachable_entry(event: DispatchUnreachable) -> Entry:
    data = event.data
    return Entry("dispatcher", "system", f"page {data.code} could not reach the responder: {data.reason}", _data(event))


def page_withdrawn_entry(event: DispatchWithdrawn) -> Entry:
    data = event.data
    return Entry("dispatcher", "system", f"page {data.code} withdrawn ({data.reason})", _data(event))


def late_acceptance_entry(event: DispatchExtraAcceptance) -> Entry:
    data = event.data
    outcome = "kept as backup" if data.outcome == "backup" else "stood down"
    return Entry(_responder(data.responder_id), "sms", f"page {data.code} accepted late, {outcome}", _data(event))


def escalation_entry(event: DispatchEscalated) -> Entry:
    data = event.data
    return Entry(
        "dispatcher",
        "system",
        f"escalated from step {data.from_step} to {data.to_step} ({data.rung}) because {data.reason.replace('_', ' ')}",
        _data(event),
    )


def en_route_entry(event: ResponderEnRoute) -> Entry:
    return Entry(_responder(event.data.responder_id), "sms", "en route", _data(event))


def on_scene_entry(event: ResponderArrived) -> Entry:
    return Entry(_responder(event.data.responder_id), "sms", "on scene", _data(event))


def response_completed_entry(event: DispatchCompleted) -> Entry:
    return Entry(_responder(event.data.responder_id), "sms", "response completed (DONE)", _data(event))


def documentation_completed_entry(event: DocumentationFieldsCompleted) -> Entry:
    data = event.data
    names = sorted(data.fields.model_dump(exclude_defaults=True))
    return Entry(
        data.completed_by, "workspace", f"documentation completed: {', '.join(names) or 'nothing'}", _data(event)
    )


def documentation_attested_entry(event: DocumentationAttested) -> Entry:
    data = event.data
    return Entry(data.attested_by, "workspace", f"documentation attested ({data.attester_role})", _data(event))


def documentation_signed_off_entry(event: DocumentationSignedOff) -> Entry:
    data = event.data
    verb = "signed off" if data.decision == "approved" else "returned for changes"
    return Entry(data.signed_off_by, "workspace", f"documentation {verb} by the director", _data(event))


def followup_created_entry(event: FollowUpCreated) -> Entry:
    data = event.data
    return Entry(
        "follow-up rules",
        "system",
        f"follow-up {data.rule.replace('_', ' ')} for a {data.owner_role.value.replace('_', ' ')}, "
        f"due {data.due_at.isoformat()}",
        _data(event),
    )


def followup_assigned_entry(event: FollowUpAssigned) -> Entry:
    data = event.data
    by_rules = data.assigned_by == "rules"
    return Entry(
        "follow-up rules" if by_rules else data.assigned_by,
        "system" if by_rules else "workspace",
        f"follow-up assigned to {_responder(data.assignee_id)}",
        _data(event),
    )


def followup_completed_entry(event: FollowUpCompleted) -> Entry:
    data = event.data
    return Entry(data.completed_by, "workspace", f"follow-up completed: {data.outcome.replace('_', ' ')}", _data(event))


def followup_rescheduled_entry(event: FollowUpRescheduled) -> Entry:
    data = event.data
    return Entry(data.rescheduled_by, "workspace", f"follow-up rescheduled to {data.due_at.isoformat()}", _data(event))


def followup_overdue_entry(event: FollowUpOverdue) -> Entry:
    data = event.data
    return Entry(
        "follow-up rules",
        "system",
        f"follow-up overdue since {data.due_at.isoformat()}; {len(data.notified)} people told",
        _data(event),
    )


def followup_cancelled_entry(event: FollowUpCancelled) -> Entry:
    data = event.data
    return Entry(data.cancelled_by, "system", f"follow-up cancelled ({data.reason.replace('_', ' ')})", _data(event))


def _recorder(recorded_by: str | None) -> str:
    return recorded_by or "intake"


def naloxone_entry(event: NaloxoneAdministered) -> Entry:
    data = event.data
    response = f", response {data.response}" if data.response else ", response not yet known"
    return Entry(
        _recorder(data.recorded_by),
        "api",
        f"naloxone given at {data.given_at.isoformat()} ({data.product}, {data.route}) by "
        f"{(data.given_by_role or 'someone').replace('_', ' ')}{response}",
        _data(event),
    )


def ems_arrived_entry(event: EmsArrived) -> Entry:
    data = event.data
    return Entry(
        _recorder(data.recorded_by),
        "api",
        f"EMS arrived at {data.arrived_at.isoformat()} ({data.agency or 'agency not given'})",
        _data(event),
    )


def relocated_entry(event: IncidentRelocated) -> Entry:
    data = event.data
    where = "outside the service area" if data.outside_service_area else f"zone {data.zone or 'unknown'}"
    return Entry(
        _recorder(data.recorded_by),
        "api",
        f"person relocated ({where}): {data.reason or 'no reason given'}",
        _data(event),
    )


def cancelled_entry(event: IncidentCancelled) -> Entry:
    data = event.data
    return Entry(_recorder(data.recorded_by), "api", f"incident cancelled: {data.reason}", _data(event))


# -- what each event type says on a timeline: one list (any other type gets the generic entry) ---------------

timeline_entry.register(IncidentReported, report_entry)
timeline_entry.register(NaloxoneAdministered, naloxone_entry)
timeline_entry.register(EmsArrived, ems_arrived_entry)
timeline_entry.register(IncidentRelocated, relocated_entry)
timeline_entry.register(IncidentCancelled, cancelled_entry)

timeline_entry.register(DispatchOffered, page_offered_entry)
timeline_entry.register(DispatchUnfilled, unfilled_entry)
timeline_entry.register(DispatchAcknowledged, page_accepted_entry)
timeline_entry.register(DispatchDeclined, page_declined_entry)
timeline_entry.register(DispatchTimedOut, page_timed_out_entry)
timeline_entry.register(DispatchUnreachable, page_unreachable_entry)
timeline_entry.register(DispatchWithdrawn, page_withdrawn_entry)
timeline_entry.register(DispatchExtraAcceptance, late_acceptance_entry)
timeline_entry.register(DispatchEscalated, escalation_entry)
timeline_entry.register(ResponderEnRoute, en_route_entry)
timeline_entry.register(ResponderArrived, on_scene_entry)
timeline_entry.register(DispatchCompleted, response_completed_entry)

timeline_entry.register(NotificationRequested, notification_requested_entry)
timeline_entry.register(SmsSent, sms_sent_entry)
timeline_entry.register(SmsFailed, sms_failed_entry)
timeline_entry.register(SmsStatusUpdated, sms_status_entry)

timeline_entry.register(DocumentationFieldsCompleted, documentation_completed_entry)
timeline_entry.register(DocumentationAttested, documentation_attested_entry)
timeline_entry.register(DocumentationSignedOff, documentation_signed_off_entry)

timeline_entry.register(FollowUpCreated, followup_created_entry)
timeline_entry.register(FollowUpAssigned, followup_assigned_entry)
timeline_entry.register(FollowUpCompleted, followup_completed_entry)
timeline_entry.register(FollowUpRescheduled, followup_rescheduled_entry)
timeline_entry.register(FollowUpOverdue, followup_overdue_entry)
timeline_entry.register(FollowUpCancelled, followup_cancelled_entry)


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
