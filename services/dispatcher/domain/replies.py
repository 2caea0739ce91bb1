"""Reading a responder's SMS reply. Pure, and tolerant of case, accents, spacing and punctuation.

Every keyword is understood from every responder, whatever language their texts are in: a Spanish-speaking
coach who types "Si 7047" or "AYUDA" means what "Y 7047" and "HELP" mean (``KEYWORDS`` and ``FIELD_KEYWORDS``,
one row per command, the words of each language). Accents are optional ("SÍ" = "SI", "LLEGUÉ" = "LLEGUE"), and so
are the spaces inside a phrase ("EN ROUTE" = "ENROUTE"). A code may follow any keyword ("DONE 4821", "TERMINADO
4821"); it may be left out when only one page or incident fits. ``AT <place>`` (Spanish ``ESTOY EN <lugar>``) says
where the responder is now.

What a responder reports from the field (``FIELD_KEYWORDS``) carries more: ``Y <code> <minutes>`` (an ETA),
``NARCAN <code> [dose] [route] [response]``, ``VITALS <code> RR 12 SPO2 94 HR 88 AVPU V``, ``RESTOCK <n> [LOT x]
[EXP yyyy-mm]``, ``KIT <code> <n> [LOT x]``. When the command word was read but a part was not, the reply says
which part (``Reply.problem``: a fixed name from ``PARTS``, never the text typed) and nothing is recorded. A
classic reply (``KEYWORDS``) followed by words that are not a code stays "not understood" as before ("yes
please"), except an accept whose code was read and whose minutes were not.

A configured duress word anywhere in a reply (a whole word, case and accents ignored) reads as ``OK`` with
``duress`` set: the check-ins decide what it means.

STOP and START are not read here: they are the carrier's and Twilio's opt-out keywords, recorded by the gateway.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import date
from typing import get_args

from services.contract.events import ReplyPart, VitalsRecordedData

KEYWORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "accept": {"en": ("Y", "YES"), "es": ("SÍ", "SI", "ACEPTO")},
    "decline": {"en": ("N", "NO"), "es": ("NO", "PASO")},
    "en_route": {
        "en": ("OTW", "EN ROUTE", "ON MY WAY"),
        "es": ("EN CAMINO", "VOY", "VOY EN CAMINO", "ESTOY EN CAMINO"),
    },
    "arrived": {
        "en": ("ARRIVED", "ON SCENE"),
        "es": ("LLEGUÉ", "YA LLEGUÉ", "EN EL LUGAR", "ESTOY EN EL LUGAR"),
    },
    "done": {"en": ("DONE",), "es": ("TERMINADO", "TERMINÉ", "YA TERMINÉ")},
    "status": {"en": ("STATUS",), "es": ("ESTADO",)},
    "help": {"en": ("HELP", "?"), "es": ("AYUDA",)},
}
"""command -> language -> the words that ask for it (with the accents a phone may add; they are optional)."""

FIELD_KEYWORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "ok": {"en": ("OK", "SAFE"), "es": ("BIEN", "ESTOY BIEN")},
    "clear": {"en": ("CLEAR",), "es": ("LIBRE",)},
    "naloxone": {"en": ("NARCAN", "NALOXONE"), "es": ("NALOXONA",)},
    "ems_arrived": {"en": ("EMS", "EMS HERE", "EMS ARRIVED"), "es": ("AMBULANCIA", "LLEGÓ AMBULANCIA")},
    "nofind": {"en": ("NOFIND", "CANNOT FIND", "CANT FIND"), "es": ("NO ENCUENTRO", "NO LO ENCUENTRO")},
    "backup": {"en": ("BACKUP",), "es": ("REFUERZO", "APOYO")},
    "vitals": {"en": ("VITALS",), "es": ("SIGNOS",)},
    "called_911": {"en": ("911", "CALLED 911"), "es": ("LLAMÉ 911", "LLAMÉ AL 911")},
    "restock": {"en": ("RESTOCK",), "es": ("REPONER", "REPUSE")},
    "left_behind": {"en": ("KIT", "KITS", "KIT LEFT"), "es": ("DEJÉ", "DEJÉ KIT")},
}
"""The field reports, like ``KEYWORDS``. "NO ENCUENTRO" is read before "NO": the longest phrase wins."""

HELP_TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "field": {"en": ("FIELD",), "es": ("CAMPO",)},
    "kit": {"en": ("KIT", "KITS"), "es": ("KIT", "NALOXONA")},
}
"""``HELP FIELD`` / ``AYUDA CAMPO`` lists the field reports, ``HELP KIT`` / ``AYUDA KIT`` the naloxone stock."""

LOCATION_WORDS: dict[str, str] = {"en": "AT", "es": "ESTOY EN"}
"""The words before a place: "AT 5th and Main", "ESTOY EN Union Station"."""

Part = ReplyPart
PARTS: tuple[str, ...] = get_args(Part)
"""What ``Reply.problem`` may name: the part of a command that was not understood ("extra": words after it)."""

ETA_MINUTES = (1, 240)
RESTOCK_KITS = (1, 100)
LEFT_KITS = (1, 20)
NALOXONE_PRODUCTS = ("nasal_4mg", "injection_0_4mg")
VITALS = ("respiratory_rate", "spo2", "pulse")


@dataclass(frozen=True)
class Reply:
    command: str  # KEYWORDS, FIELD_KEYWORDS, "at" or "unknown"
    code: str | None = None
    place: str | None = None
    minutes: int | None = None  # accept with ETA: "Y 4821 12"
    product: str | None = None  # naloxone: "nasal_4mg" | "injection_0_4mg" (None: not said)
    route: str | None = None  # naloxone: "intranasal" | "intramuscular" | "intravenous" (None: not said)
    vitals: dict[str, int | str] | None = None  # respiratory_rate, spo2, pulse (ints), responsiveness (AVPU)
    count: int | None = None  # restock / left_behind kits
    lot: str | None = None  # restock / left_behind: "LOT AB12"
    expires_on: date | None = None  # restock: "EXP 2027-06" (-> last day of the month) or "EXP 2027-06-30"
    problem: str | None = None  # a PARTS name: the command word was read, that part was not; nothing is recorded
    duress: bool = False  # a configured duress word was in the text: command is "ok"
    response: str | None = None  # naloxone: "improved" | "unchanged" | "worse" (None: not said)
    agency: str | None = None  # EMS arrived: the agency's name as texted ("EMS 4821 DENVER HEALTH")
    topic: str | None = None  # help: "field" or "kit" (None: the main list)


def plain(text: str) -> str:
    """``text`` as replies are compared: accents dropped, upper case, inner spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).upper().split())


def _key(words: str) -> str:
    return plain(words).replace(" ", "")


def _table(keywords: dict[str, dict[str, tuple[str, ...]]]) -> dict[str, str]:
    return {
        _key(word): name for name, by_language in keywords.items() for words in by_language.values() for word in words
    }


_COMMANDS = _table(KEYWORDS) | _table(FIELD_KEYWORDS)
_TOPICS = _table(HELP_TOPICS)
_LONGEST = max(
    len(plain(w).split()) for t in (KEYWORDS, FIELD_KEYWORDS) for b in t.values() for ws in b.values() for w in ws
)
_CODE = re.compile(r"^\d{4}$")
_AT = re.compile(
    r"^\s*(?:" + "|".join(r"\s+".join(w.split()) for w in LOCATION_WORDS.values()) + r")\s+(.{2,200}?)\s*$",
    re.IGNORECASE | re.DOTALL,
)


class _NotUnderstood(Exception):
    def __init__(self, part: Part) -> None:
        self.part = part


def parse_reply(body: str, duress_words: Collection[str] = ()) -> Reply:
    """What the responder asked for. Anything else is ``unknown`` and gets a helpful answer.

    A keyword is read before a place, so "ESTOY EN CAMINO" is en route, not a place called "camino"; the longest
    keyword phrase wins ("NO ENCUENTRO" is not "NO").
    """
    tokens = _tokens(body)
    if _has_duress_word(body, duress_words):
        return Reply("ok", code=next((t for t in tokens if _CODE.match(t)), None), duress=True)
    for size in range(min(_LONGEST, len(tokens)), 0, -1):
        command = _COMMANDS.get("".join(tokens[:size]))
        if command is None:
            continue
        reply = _read(command, tokens[size:])
        if reply.problem is None or command in FIELD_KEYWORDS or reply.code is not None:
            return reply
        break  # a classic keyword followed by words that are not a code: "yes please"
    at = _AT.match(body)
    if at is not None:
        return Reply("at", place=" ".join(at[1].split()))
    return Reply("unknown")


def _tokens(body: str) -> list[str]:
    text = re.sub(r"(?<=\d),(?=\d)", ".", plain(body))  # "0,4 MG": a decimal comma
    text = re.sub(r"[’'`]", "", text)
    text = re.sub(r"[,;:#=()\[\]\"]", " ", text)
    tokens = [t.strip("¡¿").rstrip(".!?") or ("?" if "?" in t else "") for t in text.split()]
    return [t for t in tokens if t]


def _has_duress_word(body: str, words: Collection[str]) -> bool:
    text = " ".join(_tokens(body))
    for word in words:
        phrase = plain(word)
        if phrase and re.search(r"(?<![A-Z0-9])" + re.escape(phrase) + r"(?![A-Z0-9])", text):
            return True
    return False


def _read(command: str, rest: list[str]) -> Reply:
    code = rest[0] if rest and _CODE.match(rest[0]) else None
    after = rest[1:] if code is not None else rest
    reader = _READERS.get(command, _code_only)
    try:
        return replace(reader(after, code is not None), command=command, code=code)
    except _NotUnderstood as failed:
        return Reply(command, code=code, problem=failed.part)


# ---- one reader per command: the words after the keyword and the code -> the reply's other fields -----------


def _code_only(rest: list[str], has_code: bool) -> Reply:
    if rest:
        raise _NotUnderstood("extra" if has_code else "code")
    return Reply("")


def _help(rest: list[str], has_code: bool) -> Reply:
    return Reply("", topic=_TOPICS.get("".join(rest)) if rest else None)


_MINUTE_WORDS = frozenset({"M", "MIN", "MINS", "MINUTE", "MINUTES", "MINUTO", "MINUTOS"})
_ETA_WORDS = frozenset({"ETA", "IN", "EN"})


def _accept(rest: list[str], has_code: bool) -> Reply:
    words = [w for w in rest if w not in _ETA_WORDS]
    if not words:
        return Reply("") if not rest else _fail("minutes" if has_code else "code")
    glued = re.fullmatch(r"(\d{1,3})(M|MIN|MINS)", words[0])
    number, unit = (glued[1], True) if glued else (words[0], words[1:2] and words[1] in _MINUTE_WORDS)
    if not number.isdigit() or len(words) > (1 if glued else 1 + int(bool(unit))):
        raise _NotUnderstood("minutes" if has_code else "code")
    if not has_code and not unit:
        raise _NotUnderstood("code")  # "Y 48": a mistyped code, not an ETA
    return Reply("", minutes=_within(int(number), ETA_MINUTES, "minutes"))


_DOSES = {"4": "nasal_4mg", "4.0": "nasal_4mg", "0.4": "injection_0_4mg", ".4": "injection_0_4mg"}
_PRODUCT_WORDS = {"INJECTION": "injection_0_4mg", "INYECCION": "injection_0_4mg", "SPRAY": "nasal_4mg"}
_ROUTES = {
    **dict.fromkeys(("IN", "NASAL", "INTRANASAL", "NOSE", "NARIZ"), "intranasal"),
    **dict.fromkeys(("IM", "INTRAMUSCULAR", "MUSCLE", "MUSCULO"), "intramuscular"),
    **dict.fromkeys(("IV", "INTRAVENOUS", "INTRAVENOSA", "INTRAVENOSO", "VENA"), "intravenous"),
}
_RESPONSES = {
    **dict.fromkeys(("IMPROVED", "BETTER", "RESPONDED", "MEJOR", "MEJORO", "RESPONDIO"), "improved"),
    **dict.fromkeys(("UNCHANGED", "SAME", "IGUAL", "SINCAMBIO"), "unchanged"),
    **dict.fromkeys(("WORSE", "PEOR"), "worse"),
}


def _naloxone(rest: list[str], has_code: bool) -> Reply:
    said: dict[str, str] = {}
    words = list(rest)
    while words:
        word = words.pop(0)
        if words and words[0] == "MG" and re.fullmatch(r"[\d.]+", word):
            word += words.pop(0)
        amount = re.fullmatch(r"(\d*\.?\d+)(MG)?", word)
        if amount:
            _say(said, "product", _DOSES.get(amount[1]), "dose")
        elif word in _PRODUCT_WORDS:
            _say(said, "product", _PRODUCT_WORDS[word], "dose")
        elif word in _ROUTES:
            _say(said, "route", _ROUTES[word], "route")
        elif word in _RESPONSES:
            _say(said, "response", _RESPONSES[word], "response")
        else:
            raise _NotUnderstood("dose" if any(c.isdigit() for c in word) else "route")
    if said.get("product") == "nasal_4mg" and said.get("route", "intranasal") != "intranasal":
        raise _NotUnderstood("route")  # a nasal spray is given in the nose
    return Reply("", product=said.get("product"), route=said.get("route"), response=said.get("response"))


def _say(said: dict[str, str], name: str, value: str | None, part: Part) -> None:
    """One value per part: an unknown one, or a second that differs, is not understood."""
    if value is None or said.get(name, value) != value:
        raise _NotUnderstood(part)
    said[name] = value


_EMS_FILLER = frozenset({"ARRIVED", "HERE", "ON", "SCENE", "LLEGO", "AQUI", "YA"})


def _ems_arrived(rest: list[str], has_code: bool) -> Reply:
    agency = " ".join(w for w in rest if w not in _EMS_FILLER)[:100] or None
    if agency is not None and not re.fullmatch(r"[A-Z0-9 .&-]+", agency):
        raise _NotUnderstood("extra")
    return Reply("", agency=agency)


_VITAL_LABELS = {
    **dict.fromkeys(("RR", "RESP", "FR"), "respiratory_rate"),
    **dict.fromkeys(("SPO2", "SAT", "O2", "SPO"), "spo2"),
    **dict.fromkeys(("HR", "PULSE", "FC", "PULSO"), "pulse"),
    **dict.fromkeys(("AVPU", "AVDN", "LOC"), "responsiveness"),
}
_AVPU = {
    **dict.fromkeys(("A", "ALERT", "ALERTA"), "alert"),
    **dict.fromkeys(("V", "VOICE", "VERBAL", "VOZ"), "voice"),
    **dict.fromkeys(("P", "PAIN", "D", "DOLOR"), "pain"),
    **dict.fromkeys(("U", "UNRESPONSIVE", "N", "NADA", "INCONSCIENTE"), "unresponsive"),
}
_GLUED_VITAL = re.compile(r"^(SPO2|[A-Z]+)(\d+%?)$")


def _vitals(rest: list[str], has_code: bool) -> Reply:
    words: list[str] = []
    for word in rest:
        glued = None if word in _VITAL_LABELS else _GLUED_VITAL.match(word)
        words.extend((glued[1], glued[2]) if glued and glued[1] in _VITAL_LABELS else (word,))
    values: dict[str, int | str] = {}
    while words:
        name = _VITAL_LABELS.get(words.pop(0))
        if name is None:
            raise _NotUnderstood("vitals")
        value = words.pop(0) if words else ""
        if name == "responsiveness":
            if value not in _AVPU:
                raise _NotUnderstood("responsiveness")
            values[name] = _AVPU[value]
            continue
        number = value.rstrip("%")
        if not number.isdigit():
            raise _NotUnderstood(name)  # type: ignore[arg-type]
        values[name] = _within(int(number), _VITAL_RANGES[name], name)  # type: ignore[arg-type]
    if not values:
        raise _NotUnderstood("vitals")
    return Reply("", vitals=values)


def _vital_range(name: str) -> tuple[int, int]:
    """The range the contract accepts for a vital (``VitalsRecordedData``): one source for both."""
    metadata = VitalsRecordedData.model_fields[name].metadata
    low = next(item.ge for item in metadata if hasattr(item, "ge"))
    high = next(item.le for item in metadata if hasattr(item, "le"))
    return low, high


_VITAL_RANGES = {name: _vital_range(name) for name in VITALS}
_LOT_WORDS = frozenset({"LOT", "LOTE"})
_EXPIRY_WORDS = frozenset({"EXP", "EXPIRES", "EXPIRY", "VENCE", "VENC", "CAD", "CADUCA"})


def _kits(limits: tuple[int, int], expiry: bool) -> Callable[[list[str], bool], Reply]:
    def read(rest: list[str], has_code: bool) -> Reply:
        if not rest or not rest[0].isdigit():
            raise _NotUnderstood("count")
        count, words = _within(int(rest[0]), limits, "count"), rest[1:]
        lot = expires_on = None
        while words:
            word = words.pop(0)
            value = words.pop(0) if words else ""
            if word in _LOT_WORDS and lot is None:
                if not re.fullmatch(r"[A-Z0-9-]{1,40}", value):
                    raise _NotUnderstood("lot")
                lot = value
            elif word in _EXPIRY_WORDS and expiry and expires_on is None:
                expires_on = _expiry(value)
            else:
                raise _NotUnderstood("extra")
        return Reply("", count=count, lot=lot, expires_on=expires_on)

    return read


def _expiry(value: str) -> date:
    """ "2027-06" (the month's last day), "2027-06-30", "2027/06" or "06/2027"."""
    match = re.fullmatch(r"(\d{4})[-/](\d{1,2})(?:[-/](\d{1,2}))?", value) or re.fullmatch(r"(\d{1,2})/(\d{4})", value)
    if match is None:
        raise _NotUnderstood("expiry")
    if len(match[1]) == 4:
        year, month, day = int(match[1]), int(match[2]), match[3]
    else:
        year, month, day = int(match[2]), int(match[1]), None
    try:
        return date(year, month, int(day) if day else calendar.monthrange(year, month)[1])
    except ValueError:
        raise _NotUnderstood("expiry") from None


def _within(value: int, limits: tuple[int, int], part: Part) -> int:
    if not limits[0] <= value <= limits[1]:
        raise _NotUnderstood(part)
    return value


def _fail(part: Part) -> Reply:
    raise _NotUnderstood(part)


_READERS: dict[str, Callable[[list[str], bool], Reply]] = {
    "accept": _accept,
    "help": _help,
    "naloxone": _naloxone,
    "ems_arrived": _ems_arrived,
    "vitals": _vitals,
    "restock": _kits(RESTOCK_KITS, expiry=True),
    "left_behind": _kits(LEFT_KITS, expiry=False),
}
"""How the words after a command's keyword and code are read; every other command takes nothing more."""


def free_code(preferred: str, in_use: Collection[str]) -> str:
    """``preferred``, or the next 4-digit code after it that the responder is not using or just used.

    A reply names its page by code, so two open pages of one responder must never share one, and a
    code is not handed out again soon after its page closed (a late "Y" must not accept a new page).
    """
    number = int(preferred)
    for step in range(9000):
        candidate = str(1000 + (number - 1000 + step) % 9000)
        if candidate not in in_use:
            return candidate
    raise ValueError("every code is in use")
