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

from services.contract.caring import CARING_TEMPLATES
from services.contract.envelope import CrisisKind, Priority, ShortCode, Strict
from services.contract.referral import ReferralAlarmAnswered

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


ReferralLink = Annotated[
    str,
    Field(
        max_length=100,
        pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._-]+)*/rf/[A-Za-z0-9_-]{64}$",
        description="a program's page for one referral: CRISIS_WORKSPACE_PUBLIC_URL + /rf/ + an opaque signed token "
        "(projections/referral_links.py) naming the referral and the program, nothing about the person",
    ),
]

_LINK_TOKEN = re.compile(r"/(r|rf|p)/([A-Za-z0-9_-]{64}|[A-Za-z0-9_-]{40})(?![A-Za-z0-9_-])")


def without_link_tokens(text: str | None) -> str | None:
    """``text`` with the token of every signed link in it left out ("/r/...", "/rf/...", "/p/..."): a text as the
    stream records it (``sms.sent``) is read on timelines by others than its recipient, and a link opens a page."""
    return _LINK_TOKEN.sub(lambda m: f"/{m.group(1)}/...", text) if text else text


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


# ---- safety check-ins and field deadlines (issue 18, F1) ----

ClockTime = Annotated[
    str,
    Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM in the organisation's time zone"),
]


class CheckInPrompt(Strict):
    """Before a check-in is due: "Reply OK <code> by <HH:MM>"."""

    code: ShortCode
    due: ClockTime


class CheckInNoted(Strict):
    """The answer to OK (and, identically, to a duress word): "OK noted, next check-in by <HH:MM>"."""

    code: ShortCode
    next_due: ClockTime


class ResponderAtPlace(Strict):
    """About a responder, to their supervisor or partner: the staff name, the incident's code, and where they were
    last known to be by a gazetteer entry or zone (never coordinates or typed text)."""

    responder_name: StaffName
    code: ShortCode | None = Field(default=None, description="the incident's code (None: on no incident)")
    place: PlaceRef | None = Field(default=None, description="the gazetteer entry near the last known location")
    zone: PlaceRef | None = Field(default=None, description="the service zone of the last known location")


class CheckInMissedAlert(ResponderAtPlace):
    minutes_overdue: int = Field(ge=0, le=99_999)


class ResponderLate(Strict):
    responder_name: StaffName
    code: ShortCode
    minutes_late: int = Field(ge=0, le=99_999)


class EmsNotConfirmed(Strict):
    code: ShortCode
    minutes: int = Field(ge=0, le=99_999, description="since 911 was called (or the report)")


# ---- end check-ins (F1) ----


# ---- re-assessment on scene (issue 18, F4) ----


class PriorityChanged(Strict):
    """A clinician re-scored the person on scene and triage gave another priority: to the supervisor. Codes and
    priorities only (never the score, the instrument or anything about the person)."""

    code: ShortCode = Field(description="the incident's short code")
    from_priority: Priority
    to_priority: Priority


# ---- end re-assessment (F4) ----


# ---- naloxone in the bag (issue 18, F3) ----


class RestockConfirmed(Strict):
    """RESTOCK noted: how many kits were added and how many usable kits the responder now has."""

    added: int = Field(ge=0, le=500)
    usable: int = Field(ge=0, le=9_999)


class KitsLeftNoted(Strict):
    """KIT noted: kits left with the person or family at an incident; the usable kits left (None: the responder's
    stock was never recorded, and the text asks for a RESTOCK)."""

    code: ShortCode
    count: int = Field(ge=1, le=20)
    usable: int | None = Field(default=None, ge=0, le=9_999)


class StockLow(Strict):
    """To the supervisor: a responder's usable naloxone kits fell to the low-stock threshold."""

    responder_name: StaffName
    usable: int = Field(ge=0, le=9_999)


# ---- end naloxone (F3) ----


# ---- field reports by text (issue 18, F2) ----

ReplyCommand = Literal[
    "accept",
    "decline",
    "en_route",
    "arrived",
    "done",
    "status",
    "help",
    "ok",
    "clear",
    "naloxone",
    "ems_arrived",
    "nofind",
    "backup",
    "vitals",
    "called_911",
    "restock",
    "left_behind",
]
"""A command a responder texts (the dispatcher's ``domain/replies.py`` reads them; the notifier names its keyword)."""

ReplyPart = Literal[
    "code",
    "minutes",
    "dose",
    "route",
    "response",
    "vitals",
    "respiratory_rate",
    "spo2",
    "pulse",
    "responsiveness",
    "count",
    "lot",
    "expiry",
    "extra",
]
"""The part of a command that was not understood: a fixed name, never the text typed."""


class FieldNoted(Strict):
    """A field report by text was recorded: what it was (never a value the responder typed, never a vital)."""

    code: ShortCode
    what: Literal[
        "eta", "naloxone", "ems_arrived", "ems_called", "cannot_locate", "backup_paged", "backup_none", "vitals"
    ]
    minutes: int | None = Field(default=None, ge=1, le=240, description="the ETA given (what = eta)")


class ReplyNotUnderstood(Strict):
    """The command word was read but one part was not: which command, which part (fixed names), and the code."""

    command: ReplyCommand
    part: ReplyPart
    code: ShortCode | None = Field(default=None, description="the code the example shows (None: '<code>')")


class FieldAlert(Strict):
    """To the responder's supervisor: the responder cannot find the person, or asked for backup nobody could give."""

    responder_name: StaffName
    code: ShortCode
    what: Literal["cannot_locate", "backup_unfilled"]
    caller_asked: bool = Field(default=False, description="cannot_locate: the caller was texted to confirm")


# ---- end field reports (F2) ----


class NoParams(Strict):
    pass


class ReferralOffer(Strict):
    """To a program: a referral is waiting. A code and a signed link only: never the person, the level of care, or
    anything a page would say (the link, opened, shows the needs)."""

    code: ShortCode
    link: ReferralLink | None = Field(
        default=None, description="None when no CRISIS_WORKSPACE_PUBLIC_URL is set: the program then answers by SMS"
    )


class ReferralCodeOnly(Strict):
    code: ShortCode


ReferralAnswerNoted = Literal["received", "accepted", "declined", "info_needed", "admitted", "no_show"]


class ReferralNoted(Strict):
    """A program's answer by SMS was recorded: which, for which code."""

    code: ShortCode
    answer: ReferralAnswerNoted


class AvailabilityNoted(Strict):
    """A program's BEDS / FULL / SLOT text was recorded: beds open now (None: not said), and whether a slot was."""

    beds_open: int | None = Field(default=None, ge=0, le=10000)
    slot: bool = False


class ReferralOverdue(Strict):
    """To the people paged: nobody accepted referral ``code`` by its deadline (declined, no answer); ``repeat``."""

    code: ShortCode
    declined: int = Field(ge=0, le=3)
    unanswered: int = Field(ge=0, le=3)
    repeat: int = Field(default=1, ge=1, le=99)


class FamilyUpdate(Strict):
    """To a family contact under an active consent: one of the fixed messages (FamilyMessage), nothing else."""

    message: Literal["help_on_the_way", "responder_with_them", "person_safe", "support_guidance", "admitted_to_care"]


class CallerUpdate(Strict):
    """To the caller who reported (their callback): help is on the way, or a responder has arrived. Nothing about the
    person: the caller hears only that their own report is being answered."""

    update: Literal["help_on_the_way", "responder_with_them"]


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
    "priority_changed": PriorityChanged,  # F4: re-assessment on scene
    # F1: safety check-ins, pairs only, late ETA, EMS not confirmed
    "checkin_prompt": CheckInPrompt,
    "checkin_confirmed": CheckInNoted,
    "checkin_reminder": CodeOnly,
    "checkin_call": CodeOnly,
    "checkin_cleared": CodeOnly,
    "checkin_missed_alert": CheckInMissedAlert,
    "checkin_call_911": ResponderAtPlace,
    "duress_alert": ResponderAtPlace,
    "pair_wait": CodeOnly,
    "pair_alert": ResponderAtPlace,
    "eta_overdue": ResponderLate,
    "ems_overdue": EmsNotConfirmed,
    # end F1
    # F3: naloxone in the bag
    "restock_confirmed": RestockConfirmed,
    "kits_left_noted": KitsLeftNoted,
    "stock_low": StockLow,
    # F2: field reports by text
    "field_noted": FieldNoted,
    "reply_not_understood": ReplyNotUnderstood,
    "reply_help_field": NoParams,
    "reply_help_kit": NoParams,
    "field_alert": FieldAlert,
    "caller_confirm_location": NoParams,
    # end F2
    # issue 17: referrals, program replies, family and caller updates
    "referral_offer": ReferralOffer,
    "referral_withdrawn": ReferralCodeOnly,
    "referral_noted": ReferralNoted,
    "program_reply_help": NoParams,
    "availability_noted": AvailabilityNoted,
    "referral_overdue": ReferralOverdue,
    "referral_alarm_answered": ReferralAlarmAnswered,  # in referral.py
    **CARING_TEMPLATES,  # issue 19: caring contacts (caring.py)
    "referral_no_show": ReferralCodeOnly,
    "family_update": FamilyUpdate,
    "caller_update": CallerUpdate,
    # end issue 17
    "legacy_v1": NoParams,
}
"""Template name -> the parameters it takes. The notifier has wording for every one in every language."""

RETIRED_FREE_TEXT: dict[str, tuple[str, ...]] = {"page_offer": ("area",), "supervisor_alert": ("area",)}
"""Parameters that templates no longer take because they carried free text (notification.requested v2:
``area`` was the address as the reporter typed it)."""


def without_retired_free_text(template: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` of a request made before v3, without the free text it may carry: that is never rendered. A page
    requested that way names no place (the notifier cannot tell a typed address from a resolved one), only the
    distance; everything else about it is unchanged."""
    retired = RETIRED_FREE_TEXT.get(template, ())
    return {name: value for name, value in params.items() if name not in retired}
