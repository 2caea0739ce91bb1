"""The wording of the answers to a responder's own texts: STATUS, HELP, a reply not understood, an ambiguous one.

Pure, and part of ``templates`` (which renders them): each function takes a template's validated parameters and a
language. The keywords they name are the ones the dispatcher reads (``services/dispatcher/domain/replies.py``),
in the responder's language: a Spanish text names the Spanish keywords.
"""

from __future__ import annotations

from typing import Any

from services.notifier.domain.segment_fit import MORE, fit_codes, fit_two

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
    "en": "Dispatch: Y/N <code> accept/pass, OTW en route, ARRIVED on scene, DONE finished, AT <place> your location, "
    "STATUS your pages, STOP/START texts off/on.",
    "es": "Despacho: SI/NO <codigo> acepta/pasa, EN CAMINO, LLEGUE, TERMINADO, ESTOY EN <lugar> su ubicacion, "
    "ESTADO sus avisos, STOP/START sin/con mensajes.",
}

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
