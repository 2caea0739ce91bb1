"""Every message the system sends, by name, with the parameters it may carry.

Senders (the dispatcher, the projections' follow-up rules) ask for a message by template name and
parameters; the notifier owns the wording (in each supported language) and renders it. Parameters are
PHI-free by construction: priorities, opaque codes, a general area or response address, distances,
counts and staff names. There is no free-text parameter, so no client detail can reach an SMS.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.contract.envelope import Priority, ShortCode, Strict

Language = Literal["en", "es"]


class PageOffer(Strict):
    """A page: go to this area, reply to accept. P1 renders in one SMS segment."""

    priority: Priority
    code: ShortCode
    area: str = Field(max_length=80, description="general area or response address, never a client detail")
    distance_km: float | None = Field(default=None, ge=0)
    call_911: bool = Field(default=False, description="the reporter has not called EMS yet")


class PageReminder(Strict):
    priority: Priority
    code: ShortCode


class VoicePage(Strict):
    """Spoken by a voice call: an urgent page is waiting, and how to accept it."""

    priority: Priority
    code: ShortCode


class CodeOnly(Strict):
    code: ShortCode


class AlreadyTaken(Strict):
    code: ShortCode
    outcome: Literal["backup", "stand_down"]


class OpenCodes(Strict):
    codes: list[ShortCode] = Field(max_length=20)


class SupervisorAlert(Strict):
    priority: Priority
    code: ShortCode
    reason: Literal[
        "nobody_on_call",
        "nobody_qualified",
        "all_busy",
        "ladder_exhausted",
        "outside_service_area",
        "escalated",
    ]
    area: str | None = Field(
        default=None, max_length=80, description="general area or response address, never a client detail"
    )


class ResponderUnreachable(Strict):
    responder_name: str = Field(max_length=100, description="a staff member's name, not a client's")
    reason: Literal["opted_out", "undeliverable"]


class TaskDue(Strict):
    task_code: ShortCode
    due_in_hours: int = Field(ge=0)


class SystemAlert(Strict):
    """The system could not do something by itself and a person must look: which service, and a reference."""

    reference: str = Field(pattern=r"^DL-\d{1,12}$", description="DL-<stream sequence of the message>")
    service: str = Field(pattern=r"^[a-z0-9_.-]{1,40}$", description="the consumer that gave up")


class NoParams(Strict):
    pass


TEMPLATES: dict[str, type[Strict]] = {
    "page_offer": PageOffer,
    "page_reminder": PageReminder,
    "voice_page": VoicePage,
    "page_covered": CodeOnly,
    "page_withdrawn": CodeOnly,
    "ack_confirmed": CodeOnly,
    "already_taken": AlreadyTaken,
    "decline_confirmed": CodeOnly,
    "en_route_confirmed": CodeOnly,
    "arrived_confirmed": CodeOnly,
    "done_confirmed": CodeOnly,
    "status_summary": OpenCodes,
    "reply_help": NoParams,
    "reply_unknown": OpenCodes,
    "reply_ambiguous": OpenCodes,
    "location_noted": NoParams,
    "location_unknown": NoParams,
    "supervisor_alert": SupervisorAlert,
    "responder_unreachable": ResponderUnreachable,
    "open_pages_bundle": OpenCodes,
    "task_due": TaskDue,
    "task_overdue": TaskDue,
    "system_alert": SystemAlert,
    "legacy_v1": NoParams,
}
"""Template name -> the parameters it takes. The notifier has wording for every one in every language."""
