"""Which events are writes of a clinical record by a signed-in person, for the audit log (HIPAA 164.312(b)).

Every change to a record (an incident's documentation and updates, a follow-up task) is an event on the
stream that names the credential's subject who made it. ``record_written`` picks that out of one event, so the
audit entry comes from the record of the change itself: exactly one per change, whichever service took the
request, and again the same one if the event is delivered twice. A follow-up command its task refused when it
was applied (``followups.refused_commands``, the fold the timeline uses too) is entered as ``refused``, not as
``recorded``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

# event type -> the data field naming the subject who wrote it
WRITERS = {
    "documentation.fields_completed": "completed_by",
    "documentation.attested": "attested_by",
    "documentation.signed_off": "signed_off_by",
    "followup.assigned": "assigned_by",
    "followup.completed": "completed_by",
    "followup.rescheduled": "rescheduled_by",
    "followup.cancelled": "cancelled_by",
    "incident.naloxone_administered": "recorded_by",
    "incident.ems_arrived": "recorded_by",
    "incident.relocated": "recorded_by",
    "incident.cancelled": "recorded_by",
    "dispatch.progress_reported": "reported_by",
    "incident.reassessed": "recorded_by",
    "naloxone.restock_reported": "recorded_by",
    "field.ems_called": "recorded_by",  # from the incident page (a text names nobody signed in: not a write here)
    "followup.attempt_recorded": "recorded_by",  # the outreach series (issue 19)
    "followup.series_ended": "ended_by",
}
SYSTEM_WRITERS = frozenset({"rules", "system", "rules: on call"})
"""Changes the services make by rule (assigning a new task, cancelling tasks with their incident): no person."""


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit log: who (``subject`` in ``role``, and which responder if one) did ``action`` to
    which record, when, with what ``outcome``: a read ``read``, ``denied`` or ``not_found``; a change ``recorded``,
    ``refused`` (its record's state refused it when it was applied) or ``denied`` (another service refused the
    caller). ``event_id``: the event that records a change (None for a read)."""

    at: datetime
    subject: str
    role: str
    responder_id: UUID | None
    action: str
    record_type: str
    record_id: str
    outcome: str
    event_id: UUID | None = None


@dataclass(frozen=True)
class RecordWritten:
    subject: str
    responder_id: UUID | None
    action: str
    record_type: str
    record_id: str


def record_written(event_type: str, data: object, incident_id: UUID | None) -> RecordWritten | None:
    """The audit facts of a person's write, or None when the event is not one (or no person made it)."""
    field = WRITERS.get(event_type)
    subject = getattr(data, field, None) if field else None
    if not subject or subject in SYSTEM_WRITERS:
        return None
    task_id = getattr(data, "task_id", None)
    record_type, record_id = ("followup", task_id) if task_id is not None else ("incident", incident_id)
    if record_id is None:
        return None
    return RecordWritten(
        subject=subject,
        responder_id=getattr(data, "responder_id", None),
        action=f"write:{event_type}",
        record_type=record_type,
        record_id=str(record_id),
    )


READ_WORDS = {
    "board": "opened the board",
    "timeline": "read the timeline",
    "documentation": "read the documentation",
    "documentation:attest": "read the documentation to attest it",
    "documentation:sign-off": "read the documentation to sign it off",
    "export:html": "exported the documentation (print page)",
    "export:pdf": "exported the documentation (PDF)",
    "export:fhir": "exported the documentation (FHIR)",
    "tasks": "listed follow-up tasks",
    "task": "read a follow-up task",
    "metrics": "read the metrics",
    "dead_letters": "read the dead letters",
    "audit": "read the audit log",
    "responder_page": "opened the responder's incident page",
    "responder_link": "opened the incident page from a text's link",
}
WRITE_WORDS = {
    "documentation.fields_completed": "saved documentation fields",
    "documentation.attested": "attested the documentation",
    "documentation.signed_off": "signed the documentation off",
    "followup.assigned": "assigned a follow-up task",
    "followup.completed": "completed a follow-up task",
    "followup.rescheduled": "rescheduled a follow-up task",
    "followup.cancelled": "cancelled a follow-up task",
    "incident.naloxone_administered": "recorded a naloxone dose",
    "incident.ems_arrived": "recorded that EMS arrived",
    "incident.relocated": "recorded a new location",
    "incident.cancelled": "cancelled the incident",
    "dispatch.progress_reported": "pressed a progress button on the incident page",
    "incident.reassessed": "re-assessed the person on scene",
    "naloxone.restock_reported": "reported a naloxone restock",
    "field.ems_called": "recorded that 911 was called",
}


def action_words(action: str) -> str:
    """An audit entry's action as a director reads it ('write:incident.cancelled' -> 'cancelled the incident');
    an action not listed reads as itself."""
    if action.startswith("write:"):
        written = action.removeprefix("write:")
        return WRITE_WORDS.get(written, f"changed the record ({written})")
    base, _, detail = action.partition(":")
    if action in READ_WORDS:
        return READ_WORDS[action]
    if base in READ_WORDS:
        return f"{READ_WORDS[base]} ({detail.replace('_', ' ')})"
    return action.replace("_", " ")
