"""The wording of the answers to a responder's own texts: STATUS, HELP, a reply not understood, an ambiguous one.

Pure, and part of ``templates`` (which renders them): each function takes a template's validated parameters and a
language. The keywords they name are the ones the dispatcher reads (``services/dispatcher/domain/replies.py``),
in the responder's language: a Spanish text names the Spanish keywords.
"""

from __future__ import annotations

from typing import Any

from services.contract.gsm7 import to_gsm7
from services.notifier.domain.segment_fit import MORE, fit_codes, fit_name, fit_two

_STATUS = {
    "en": {
        "none": "You have no open pages and no incident in progress.",
        "open": "Your open pages: {c}. Reply Y <code> to accept or N <code> to pass.",
        "accepted": "Accepted, still on: {a}. Reply OTW (en route), ARRIVED (on scene) or DONE (finished), "
        "with the code.",
        "both": "Open pages: {c} (reply Y or N and the code). Accepted: {a} (reply OTW, ARRIVED or DONE and the code).",
    },
    "es": {
        "none": "No tiene avisos abiertos ni incidentes en curso.",
        "open": "Sus avisos abiertos: {c}. Responda SI <codigo> para aceptar o NO <codigo> para pasar.",
        "accepted": "Aceptados, en curso: {a}. Responda EN CAMINO, LLEGUE (en el lugar) o TERMINADO, con el codigo.",
        "both": "Avisos abiertos: {c} (SI o NO y el codigo). Aceptados: {a} (EN CAMINO, LLEGUE o TERMINADO y el "
        "codigo).",
    },
}

_HELP = {
    "en": "Dispatch: Y/N <code> accept/pass, OTW en route, ARRIVED, DONE, AT <place>, STATUS, STOP/START. "
    "Y <code> <min>: with ETA. More: HELP FIELD/KIT",
    "es": "Despacho: SI/NO <codigo> acepta/pasa, EN CAMINO, LLEGUE, TERMINADO, ESTOY EN <lugar>, ESTADO, STOP/START. "
    "SI <codigo> <min>: llegada. Mas: AYUDA CAMPO/KIT",
}
"""HELP: the classic replies (an ETA in minutes may follow the accept) and where the rest are listed."""

_HELP_FIELD = {
    "en": "With the code: OK/CLEAR check-in, NARCAN 4MG/0.4MG IN/IM/IV, EMS arrived, 911 called, NOFIND, BACKUP, "
    "VITALS RR 12 SPO2 94 HR 88 AVPU A",
    "es": "Con el codigo: BIEN/LIBRE control, NALOXONA 4MG/0.4MG IN/IM/IV, AMBULANCIA llego, LLAME 911, "
    "NO ENCUENTRO, REFUERZO, SIGNOS FR 12 SAT 94 FC 88 AVDN A",
}
"""HELP FIELD: what a responder reports from the scene, each followed by the incident's code."""

_HELP_KIT = {
    "en": "Kits: RESTOCK <n> LOT <lot> EXP 2027-06 after refilling your bag (LOT, EXP optional). "
    "KIT <code> <n> for kits left with the person or family.",
    "es": "Kits: REPONER <n> LOTE <lote> VENCE 2027-06 al reponer su bolsa (LOTE, VENCE opcionales). "
    "DEJE <codigo> <n> por kits dejados con la persona o familia.",
}
"""HELP KIT: the naloxone stock's replies."""

_UNKNOWN = {
    "en": ("Sorry, we did not understand. Reply Y or N and the code, or HELP for every reply.", " Open: {c}."),
    "es": ("Perdon, no entendimos. Responda SI o NO y el codigo, o AYUDA para ver todo.", " Abiertos: {c}."),
}

_AMBIGUOUS = {
    "en": "You have several open pages ({c}). Reply Y or N with the code, for example Y {example}.",
    "es": "Tiene varios avisos abiertos ({c}). Responda SI o NO con el codigo, por ejemplo SI {example}.",
}
_SOME_CODE = {"en": "<code>", "es": "<codigo>"}


def status_summary(p: dict[str, Any], lang: str) -> str:
    """The pages waiting for an answer (Y/N), apart from the incidents already accepted (OTW, ARRIVED, DONE)."""
    wording, codes, accepted = _STATUS[lang], p["codes"], p["accepted"]
    if codes and accepted:
        return fit_two(lambda c, a: wording["both"].format(c=c, a=a), codes, accepted, MORE[lang])
    if accepted:
        return fit_codes(lambda a: wording["accepted"].format(a=a), accepted, MORE[lang])
    if codes:
        return fit_codes(lambda c: wording["open"].format(c=c), codes, MORE[lang])
    return wording["none"]


def reply_help(p: dict[str, Any], lang: str) -> str:
    """Every reply the dispatcher reads, in the responder's words."""
    return _HELP[lang]


def reply_unknown(p: dict[str, Any], lang: str) -> str:
    head, listing = _UNKNOWN[lang]
    codes = p["codes"]
    return head if not codes else fit_codes(lambda c: head + listing.format(c=c), codes, MORE[lang])


def reply_ambiguous(p: dict[str, Any], lang: str) -> str:
    codes = p["codes"]
    example = codes[0] if codes else _SOME_CODE[lang]
    return fit_codes(lambda c: _AMBIGUOUS[lang].format(c=c, example=example), codes, MORE[lang])


def reply_help_field(p: dict[str, Any], lang: str) -> str:
    return _HELP_FIELD[lang]


def reply_help_kit(p: dict[str, Any], lang: str) -> str:
    return _HELP_KIT[lang]


# ---- field reports by text: the confirmation, the clear error, the supervisor's alert, the caller's text ------

_NOTED = {
    "en": {
        "eta": "Noted: ETA {minutes} min for {code}. Reply ARRIVED {code} on scene.",
        "naloxone": "Noted for {code}: dose given. Thank you.",
        "ems_arrived": "Noted for {code}: EMS on scene. Thank you.",
        "ems_called": "Noted for {code}: 911 called. Reply EMS {code} when they arrive.",
        "cannot_locate": "Noted for {code}: person not found. Your supervisor was told.",
        "backup_paged": "Backup paged for {code}. Your supervisor sees it on the board.",
        "backup_none": "No backup is free for {code} right now. Your supervisor was told.",
        "vitals": "Noted for {code}: vitals recorded. Thank you.",
    },
    "es": {
        "eta": "Anotado: llegada en {minutes} min para {code}. Responda LLEGUE {code} al llegar.",
        "naloxone": "Anotado para {code}: dosis dada. Gracias.",
        "ems_arrived": "Anotado para {code}: EMS en el lugar. Gracias.",
        "ems_called": "Anotado para {code}: se llamo al 911. Responda AMBULANCIA {code} cuando llegue.",
        "cannot_locate": "Anotado para {code}: persona no encontrada. Su supervisor fue avisado.",
        "backup_paged": "Refuerzo avisado para {code}. Su supervisor lo ve en el tablero.",
        "backup_none": "No hay refuerzo libre para {code} ahora. Su supervisor fue avisado.",
        "vitals": "Anotado para {code}: signos vitales registrados. Gracias.",
    },
}


def field_noted(p: dict[str, Any], lang: str) -> str:
    """What was recorded, by name only: never a value the responder typed."""
    return _NOTED[lang][p["what"]].format(code=p["code"], minutes=p["minutes"])


_PARTS = {
    "en": {
        "code": "the code",
        "minutes": "the minutes (1-240)",
        "dose": "the dose (4MG or 0.4MG)",
        "route": "the route (IN, IM or IV)",
        "response": "the response (BETTER, SAME or WORSE)",
        "vitals": "the vitals",
        "respiratory_rate": "the breathing rate (RR 0-80)",
        "spo2": "the SpO2 (50-100)",
        "pulse": "the pulse (HR 20-250)",
        "responsiveness": "AVPU (A, V, P or U)",
        "count": "the number of kits",
        "lot": "the lot",
        "expiry": "the expiry (EXP 2027-06)",
        "extra": "the words after the code",
    },
    "es": {
        "code": "el codigo",
        "minutes": "los minutos (1-240)",
        "dose": "la dosis (4MG o 0.4MG)",
        "route": "la via (IN, IM o IV)",
        "response": "la respuesta (MEJOR, IGUAL o PEOR)",
        "vitals": "los signos",
        "respiratory_rate": "la frec. respiratoria (FR 0-80)",
        "spo2": "la saturacion (SAT 50-100)",
        "pulse": "el pulso (FC 20-250)",
        "responsiveness": "AVDN (A, V, D o N)",
        "count": "el numero de kits",
        "lot": "el lote",
        "expiry": "el vencimiento (VENCE 2027-06)",
        "extra": "las palabras tras el codigo",
    },
}
"""The part not understood, named with what it should be (ranges as ``VitalsRecordedData`` takes them)."""

_EXAMPLES = {
    "en": {
        "accept": "Y {c} 15",
        "decline": "N {c}",
        "en_route": "OTW {c}",
        "arrived": "ARRIVED {c}",
        "done": "DONE {c}",
        "status": "STATUS",
        "help": "HELP",
        "ok": "OK {c}",
        "clear": "CLEAR {c}",
        "naloxone": "NARCAN {c} 4MG IN",
        "ems_arrived": "EMS {c}",
        "nofind": "NOFIND {c}",
        "backup": "BACKUP {c}",
        "vitals": "VITALS {c} RR 12 SPO2 94 HR 88 AVPU A",
        "called_911": "911 {c}",
        "restock": "RESTOCK 2 LOT AB12 EXP 2027-06",
        "left_behind": "KIT {c} 1",
    },
    "es": {
        "accept": "SI {c} 15",
        "decline": "NO {c}",
        "en_route": "EN CAMINO {c}",
        "arrived": "LLEGUE {c}",
        "done": "TERMINADO {c}",
        "status": "ESTADO",
        "help": "AYUDA",
        "ok": "BIEN {c}",
        "clear": "LIBRE {c}",
        "naloxone": "NALOXONA {c} 4MG IN",
        "ems_arrived": "AMBULANCIA {c}",
        "nofind": "NO ENCUENTRO {c}",
        "backup": "REFUERZO {c}",
        "vitals": "SIGNOS {c} FR 12 SAT 94 FC 88 AVDN A",
        "called_911": "LLAME 911 {c}",
        "restock": "REPONER 2 LOTE AB12 VENCE 2027-06",
        "left_behind": "DEJE {c} 1",
    },
}
"""A correct reply of each command, in the responder's language, with their code when the reply had one."""

_NOT_UNDERSTOOD = {
    "en": ("Not understood: {part}. Example: {example}. {more} lists all.", "HELP FIELD", "HELP KIT", "HELP"),
    "es": ("No entendimos {part}. Ejemplo: {example}. {more} para ver todo.", "AYUDA CAMPO", "AYUDA KIT", "AYUDA"),
}
_KIT_COMMANDS = ("restock", "left_behind")
_CLASSIC_COMMANDS = ("accept", "decline", "en_route", "arrived", "done", "status", "help")


def reply_not_understood(p: dict[str, Any], lang: str) -> str:
    """Which part of which command was not understood, a correct example, and the HELP that lists them."""
    wording, field, kit, classic = _NOT_UNDERSTOOD[lang]
    command = p["command"]
    more = kit if command in _KIT_COMMANDS else classic if command in _CLASSIC_COMMANDS else field
    example = _EXAMPLES[lang][command].format(c=p["code"] or _SOME_CODE[lang])
    return wording.format(part=_PARTS[lang][p["part"]], example=example, more=more)


_FIELD_ALERT = {
    ("en", "cannot_locate"): "{n} cannot find the person for {code}.{caller} Please check the board.",
    ("en", "backup_unfilled"): "{n} asked for backup on {code}: nobody qualified is free. Please send someone.",
    ("es", "cannot_locate"): "{n} no encuentra a la persona de {code}.{caller} Revise el tablero.",
    ("es", "backup_unfilled"): "{n} pidio refuerzo en {code}: no hay nadie calificado libre. Envie a alguien.",
}
_CALLER_ASKED = {"en": " The caller was asked to confirm the location.", "es": " Se pidio al llamante confirmar."}


def field_alert(p: dict[str, Any], lang: str) -> str:
    """To the supervisor: the responder (a roster name, shortened to fit) and the incident's code."""
    caller = _CALLER_ASKED[lang] if p["caller_asked"] else ""
    wording = _FIELD_ALERT[lang, p["what"]]
    name = " ".join(to_gsm7(p["responder_name"]).split()) or "-"
    return fit_name(lambda n: wording.format(n=n, code=p["code"], caller=caller), name)


_CALLER = {
    "en": "Crisis team: our responder could not find the person at the location given. Please call us back or "
    "call 911 to say where they are.",
    "es": "Equipo de crisis: no encontramos a la persona en el lugar indicado. Llamenos o llame al 911 para "
    "decirnos donde esta.",
}


def caller_confirm_location(p: dict[str, Any], lang: str) -> str:
    """To the reporter's callback number after NOFIND: nothing about the person, only the ask."""
    return _CALLER[lang]
