"""What a treatment program may text back (issue 17): answers to a referral by its code, and its own availability.

Pure. ``parse_program_reply`` reads one SMS (English or Spanish, any case) into a typed ``ProgramReply``; anything
it cannot read is ``NotUnderstood`` (answered with the commands, never with what was typed).

    ACCEPT <code> [<hours>]      ACEPTAR     an admission window from now for <hours> (default: the desk's)
    DECLINE <code> [FULL|LEVEL|PAYER|POP|MED]  RECHAZAR [LLENO|NIVEL|PAGO|POB|MED]
    INFO <code> [INS|MED|MEDS|ID|CONTACT]      what the program needs before it decides (MED: medical history)
    ARRIVED <code> / ADMITTED <code>           LLEGO / LLEGÓ / ADMITIDO   the person arrived
    NOSHOW <code>                              NOLLEGO                    the person did not come
    BEDS <n> / FULL                            CAMAS <n> / LLENO          beds open now
    SLOT <YYYY-MM-DD> <HH:MM>                  CITA <AAAA-MM-DD> <HH:MM>  the next intake slot, the org's local time
    HELP                                       AYUDA                      the commands
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from services.contract.events import DeclineReason, InfoNeeded

ANSWERS = {
    "ACCEPT": "accept", "ACEPTAR": "accept", "ACEPTO": "accept",
    "DECLINE": "decline", "RECHAZAR": "decline", "RECHAZO": "decline",
    "INFO": "info",
    "ARRIVED": "arrived", "ADMITTED": "arrived", "LLEGO": "arrived", "ADMITIDO": "arrived",
    "NOSHOW": "no_show", "NOLLEGO": "no_show",
}  # fmt: skip
DECLINE_WORDS = {
    "FULL": DeclineReason.NO_CAPACITY, "LLENO": DeclineReason.NO_CAPACITY,
    "LEVEL": DeclineReason.LEVEL_OF_CARE, "NIVEL": DeclineReason.LEVEL_OF_CARE,
    "PAYER": DeclineReason.PAYER, "PAGO": DeclineReason.PAYER, "INSURANCE": DeclineReason.PAYER,
    "POP": DeclineReason.POPULATION, "POB": DeclineReason.POPULATION,
    "MED": DeclineReason.MEDICAL, "MEDICAL": DeclineReason.MEDICAL,
}  # fmt: skip
INFO_WORDS = {
    "INS": InfoNeeded.INSURANCE, "INSURANCE": InfoNeeded.INSURANCE, "SEGURO": InfoNeeded.INSURANCE,
    "MED": InfoNeeded.MEDICAL_HISTORY, "HISTORY": InfoNeeded.MEDICAL_HISTORY, "HISTORIA": InfoNeeded.MEDICAL_HISTORY,
    "MEDS": InfoNeeded.MEDICATION_LIST, "ID": InfoNeeded.IDENTIFICATION, "CONTACT": InfoNeeded.CONTACT,
}  # fmt: skip
MAX_HOURS = 14 * 24


@dataclass(frozen=True)
class ReferralAnswer:
    answer: str  # accept, decline, info, arrived, no_show
    code: str
    hours: int | None = None
    reason: DeclineReason = DeclineReason.OTHER
    needed: tuple[InfoNeeded, ...] = (InfoNeeded.OTHER,)


@dataclass(frozen=True)
class BedsReport:
    beds_open: int


@dataclass(frozen=True)
class SlotReport:
    """The program's next intake slot, in UTC (read as the organisation's local time)."""

    next_intake_at: datetime


@dataclass(frozen=True)
class HelpAsked:
    pass


@dataclass(frozen=True)
class NotUnderstood:
    pass


ProgramReply = ReferralAnswer | BedsReport | SlotReport | HelpAsked | NotUnderstood
_SLOT = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})\s+(\d{1,2}):(\d{2})")


def _words(text: str) -> list[str]:
    """Upper-case words split on spaces, commas and hyphens between letters ("NO-SHOW"), edge punctuation dropped.
    A sign stays on its number ("BEDS -1" is not 1 bed) and fails the digits checks below."""
    spaced = re.sub(r"[,;/]|(?<=[A-Z])-(?=[A-Z])", " ", _plain(text))
    return [word for word in (w.strip(".:!?#()\"'") for w in spaced.split()) if word]


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()


def _slot(text: str, time_zone: tzinfo) -> ProgramReply:
    """``SLOT 2026-12-07 09:30`` (after the word): that local wall time in ``time_zone``, as UTC."""
    found = _SLOT.fullmatch(text.strip())
    if found is None:
        return NotUnderstood()
    year, month, day, hour, minute = (int(part) for part in found.groups())
    try:
        local = datetime(year, month, day, hour, minute, tzinfo=time_zone)
    except ValueError:
        return NotUnderstood()
    return SlotReport(local.astimezone(UTC))


def parse_program_reply(text: str, time_zone: tzinfo = UTC) -> ProgramReply:
    """One SMS from a program; ``time_zone`` is the organisation's, for a SLOT's local date and time."""
    plain = _plain(text[:320]).strip()
    head = plain.split(maxsplit=1)[0] if plain else ""
    if head in ("SLOT", "CITA"):
        return _slot(plain[len(head) :], time_zone)
    words = _words(text[:320])
    if not words:
        return NotUnderstood()
    head, rest = words[0], words[1:]
    if head in ("HELP", "AYUDA"):
        return HelpAsked()
    if head in ("FULL", "LLENO") and not rest:
        return BedsReport(0)
    if head in ("BEDS", "CAMAS"):
        if len(rest) == 1 and rest[0].isdigit() and int(rest[0]) <= 10000:
            return BedsReport(int(rest[0]))
        return NotUnderstood()
    if head == "NO" and rest[:1] == ["SHOW"]:
        head, rest = "NOSHOW", rest[1:]
    answer = ANSWERS.get(head)
    if answer is None or not rest or not re.fullmatch(r"\d{4}", rest[0]):
        return NotUnderstood()
    code, extra = rest[0], rest[1:]
    if answer == "accept":
        if not extra:
            return ReferralAnswer("accept", code)
        if len(extra) == 1 and extra[0].isdigit() and 1 <= int(extra[0]) <= MAX_HOURS:
            return ReferralAnswer("accept", code, hours=int(extra[0]))
        return NotUnderstood()
    if answer == "decline":
        reason = DECLINE_WORDS.get(extra[0], DeclineReason.OTHER) if extra else DeclineReason.OTHER
        return ReferralAnswer("decline", code, reason=reason)
    if answer == "info":
        needed = tuple(dict.fromkeys(INFO_WORDS[w] for w in extra if w in INFO_WORDS)) or (InfoNeeded.OTHER,)
        return ReferralAnswer("info", code, needed=needed)
    return ReferralAnswer(answer, code) if not extra else NotUnderstood()
