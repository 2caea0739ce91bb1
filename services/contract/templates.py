"""Every message the system sends, by name, with the parameters it may carry.

Senders (the dispatcher, the projections' follow-up rules) ask for a message by template name and
parameters; the notifier owns the wording (in each supported language) and renders it. Parameters are
PHI-free by construction: priorities, opaque codes, distances, counts, a staff member's name from the
roster, a service's consumer name, and places the system itself resolved. Nothing a reporter typed (the
address, access notes, a place name, a name) can be a parameter: a place is a ``PlaceRef``, the reference
of an entry or a service zone of the organisation's gazetteer, and the notifier prints the name its own
copy of the gazetteer has for it (or nothing, for a reference it does not know). A reference is a digest:
it has no room for words.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal

from pydantic import Field

from services.contract.envelope import CrisisKind, Priority, ShortCode, Strict

Language = Literal["en", "es"]

PlaceRef = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{16}$",
        description="a place the system resolved: place_ref() of the name of a gazetteer entry or service zone; "
        "the notifier prints the name from its own copy of the gazetteer, never anything a reporter typed",
    ),
]
StaffName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        description="a staff member's name, from the roster (ResponderProfile.name), never a client's",
    ),
]


def place_ref(name: str) -> str:
    """The reference of a gazetteer entry's or a service zone's name, as it stands in the gazetteer file.

    The same name gives the same reference in every service (case and spacing aside), so the dispatcher
    can refer to a place and the notifier can look its name up in its own copy of the file.
    """
    canonical = " ".join(name.split()).casefold()
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class PageOffer(Strict):
    """A page: where (a place the system resolved), how far, reply to accept. P1 renders in one SMS segment.

    The SMS names ``place`` when the notifier knows it, else ``zone``, else no place at all: the address
    and the details are in the authenticated app.
    """

    priority: Priority
    code: ShortCode
    place: PlaceRef | None = Field(default=None, description="the gazetteer entry at the scene, if one is that close")
    zone: PlaceRef | None = Field(default=None, description="the service zone the scene is in")
    distance_km: float | None = Field(default=None, ge=0, description="from the responder to the scene")
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


ResponderLink = Annotated[
    str,
    Field(
        max_length=100,
        # GSM-7 characters only (no "~"), a host and path from the sender's settings, then an opaque token
        pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._-]+)*/r/[A-Za-z0-9_-]{40}$",
        description="the responder's incident page: CRISIS_WORKSPACE_PUBLIC_URL + /r/ + an opaque signed token "
        "(services/runtime/signed_links.py), which names nobody and nothing of the incident",
    ),
]


_LINK_TOKEN = re.compile(r"/r/[A-Za-z0-9_-]{40}(?![A-Za-z0-9_-])")


def without_link_tokens(text: str | None) -> str | None:
    """``text`` with the token of every responder link in it left out ("/r/..."): a text as the stream records it
    (``sms.sent``) is read on timelines by others than its recipient, and a link opens its responder's page."""
    return _LINK_TOKEN.sub("/r/...", text) if text else text


class AcceptConfirmed(Strict):
    """The accept confirmation; ``link`` (when the dispatcher signs links) opens the responder's incident page."""

    code: ShortCode
    link: ResponderLink | None = None


class AlreadyTaken(Strict):
    code: ShortCode
    outcome: Literal["backup", "stand_down"]


class OpenCodes(Strict):
    codes: list[ShortCode] = Field(max_length=20)


class StatusSummary(OpenCodes):
    """STATUS: the pages waiting for the responder's answer (``codes``) and the incidents they accepted and are
    still on (``accepted``), each with what they can reply next."""

    accepted: list[ShortCode] = Field(default_factory=list, max_length=20)


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
    place: PlaceRef | None = Field(default=None, description="the gazetteer entry at the scene, if one is that close")
    zone: PlaceRef | None = Field(default=None, description="the service zone the scene is in")


class ResponderUnreachable(Strict):
    responder_name: StaffName
    reason: Literal["opted_out", "undeliverable"]


class TaskDue(Strict):
    task_code: ShortCode
    due_in_hours: int = Field(ge=0)
    incident_code: ShortCode | None = Field(
        default=None, description="the short code of the incident the task is about (None: asked for before it was)"
    )


class NobodyAccepted(Strict):
    """Every step of the ladder was tried and nobody accepted: to the supervisors and clinical directors.

    The kind is printed as a neutral label naming the response, never the condition (no overdose or withdrawal
    wording tied to a person); nothing else but the priority, the incident's code and counts.
    """

    priority: Priority
    code: ShortCode = Field(description="the incident's short code")
    kind: CrisisKind
    minutes_since_report: int = Field(ge=0, le=99_999)
    repeat: int = Field(ge=1, le=99_999, description="1 when the ladder ran out, then 2, 3, ...")


class AlarmAnswered(Strict):
    """A NOBODY ACCEPTED alarm ended: to everyone it was sounding for, so nobody acts on a covered incident."""

    code: ShortCode = Field(description="the incident's short code")
    reason: Literal["accepted", "cancelled", "disposition_recorded"]


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
    "ack_confirmed": AcceptConfirmed,
    "already_taken": AlreadyTaken,
    "decline_confirmed": CodeOnly,
    "en_route_confirmed": CodeOnly,
    "arrived_confirmed": CodeOnly,
    "done_confirmed": CodeOnly,
    "status_summary": StatusSummary,
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
    "nobody_accepted": NobodyAccepted,
    "nobody_accepted_call": NobodyAccepted,
    "alarm_answered": AlarmAnswered,
    "legacy_v1": NoParams,
}
"""Template name -> the parameters it takes. The notifier has wording for every one in every language."""

RETIRED_FREE_TEXT: dict[str, tuple[str, ...]] = {"page_offer": ("area",), "supervisor_alert": ("area",)}
"""Parameters that templates no longer take because they carried free text (notification.requested v2:
``area`` was the address as the reporter typed it)."""


def without_retired_free_text(template: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` of a request made before v3, without the free text it may carry: that is never rendered.

    A page requested that way names no place (the notifier cannot tell a typed address from a resolved
    one), only the distance; everything else about it is unchanged.
    """
    retired = RETIRED_FREE_TEXT.get(template, ())
    return {name: value for name, value in params.items() if name not in retired}
