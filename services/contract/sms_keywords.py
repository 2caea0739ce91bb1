"""Twilio's reserved SMS keywords, and what each means for a phone's opt-out state.

Twilio acts on these keywords itself (on a long code it stops delivering to a phone that texted STOP, and
answers the keyword with its own reply), so our record must follow the same rules or the dispatcher will
keep paging a phone Twilio has blocked. Twilio matches a keyword only when it is the whole message, in any
letter case, with surrounding whitespace ignored; so do we.

Opt-in deliberately leaves out YES. Twilio's default opt-in list is START, YES and UNSTOP, but "YES" is
also how a responder accepts a page ("YES 4821", or a bare "YES" with one open page). Counting every
accept as an opt-in would fill the record with false changes, so only START and UNSTOP count. The one case
where this differs from Twilio: a phone that texted STOP and later a bare YES is opted in again at Twilio
but still opted out here. That errs on the side of not paging someone who asked to stop; the README tells
operators to remove YES from the Messaging Service's opt-in keywords so both agree.
"""

from __future__ import annotations

from enum import StrEnum

OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})


class KeywordEffect(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def keyword_of(body: str) -> tuple[str, KeywordEffect] | None:
    """The reserved keyword ``body`` consists of, with its effect; None for any other message."""
    word = body.strip().upper()
    if word in OPT_OUT_KEYWORDS:
        return word, KeywordEffect.OPT_OUT
    if word in OPT_IN_KEYWORDS:
        return word, KeywordEffect.OPT_IN
    if word in HELP_KEYWORDS:
        return word, KeywordEffect.HELP
    return None
