"""The contract's codes as a director reads them: channels, producers, ladder rungs, shortfalls, reasons. Pure
tables; a code not listed reads as itself with its underscores as spaces (``words``)."""

from __future__ import annotations

CHANNEL_WORDS = {
    "sms": "text",
    "voice": "voice call",
    "app": "incident page",
    "api": "API",
    "workspace": "workspace",
    "system": "system",
    "hotline": "hotline",
    "web": "web form",
    "staff": "staff",
}

PRODUCER_WORDS = {
    "dispatcher": "dispatch",
    "dispatcher.seed": "roster",
    "notifier": "messaging",
    "intake_gateway": "intake",
    "projections": "follow-up rules",
}

RUNG_WORDS = {"candidates": "front line", "supervisor": "on-call supervisor", "director": "clinical director"}

SHORTFALL_WORDS = {
    "nobody_on_call": "nobody is on call",
    "all_busy": "everyone on call is busy",
    "locations_stale": "the on-call locations are out of date",
    "outside_radius": "everyone on call is too far away",
    "nobody_with_skill": "nobody on call has the skill needed",
    "all_unreachable": "everyone on call is unreachable",
    "ladder_exhausted": "every step of the ladder was tried",
    "everyone_qualified_already_paged": "everyone qualified was already paged",
    "peer_steps_exhausted": "no peer coach accepted; the team goes on without one",
}

ESCALATION_WORDS = {
    "timed_out": "nobody answered in time",
    "declined": "the page was declined",
    "unreachable": "the responder could not be reached",
    "nobody_to_page": "nobody could be paged",
    "nobody_qualified": "nobody qualified could be paged",
}

WITHDRAWN_WORDS = {
    "covered": "someone else accepted",
    "cancelled": "the incident was cancelled",
    "completed": "the response was completed",
}

ALARM_STOPPED_WORDS = {
    "accepted": "someone accepted",
    "cancelled": "the incident was cancelled",
    "disposition_recorded": "a disposition was recorded",
}

# -- the field (issue 18) --

CHECK_IN_STEP_WORDS = {
    "reminder": "reminder sent",
    "call": "voice call placed",
    "supervisor_paged": "supervisor and partner paged",
    "call_911": "supervisor told to call 911",
}

CHECK_IN_END_WORDS = {
    "clear": "CLEAR: the responder is safe and done checking in",
    "done": "the responder is done",
    "cancelled": "the incident was cancelled",
    "completed": "the response was completed",
}

LAST_KNOWN_WORDS = {
    "scene": "on scene",
    "reported": "their last reported location",
    "home_base": "home base, nothing newer",
}

AVPU_WORDS = {"voice": "responds to voice", "pain": "responds to pain"}  # alert, unresponsive: as they are
INSTRUMENT_WORDS = {"cows": "COWS", "ciwa_ar": "CIWA-Ar", "c_ssrs": "C-SSRS"}
STOCK_REASON_WORDS = {"dose_given": "a dose given", "left_behind": "left with the person or family"}  # others: as is

SPECIAL_WORDS = {
    "ems_now": "EMS now",
    "ems": "EMS",
    "p1": "P1",
    "transported_to_ed": "transported to ED",
    "ems_called": "EMS called",
    "moderately_severe": "moderately severe",
}


def words(code: str) -> str:
    """A code in words: 'naloxone_carrier' -> 'naloxone carrier', 'ems_now' -> 'EMS now'."""
    return SPECIAL_WORDS.get(code, code.replace("_", " "))


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
