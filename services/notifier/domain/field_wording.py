"""The wording of the field's texts and calls (check-ins, pairs only, late ETA, EMS not confirmed, naloxone
stock), in English and Spanish, under the rules ``templates.py`` states; ``FIELD_WORDING`` joins its table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.notifier.domain.segment_fit import fit_name
from services.notifier.domain.wording_parts import Wording as _Wording
from services.notifier.domain.wording_parts import spoken_digits, staff_name

# --- safety check-ins and field deadlines (issue 18, F1) ---------------------------------------------------

_CHECK_IN_CALL = {  # the keys to press are added by the call's keypad prompt (notifier/domain/voice_keypad.py)
    "en": (
        "This is dispatch checking on you for incident {digits}. Your safety check-in is overdue. "
        "Please reply to our text with OK and the code {digits}."
    ),
    "es": (
        "Le llama el despacho para verificar su seguridad en el incidente {digits}. Su control esta vencido. "
        "Por favor responda a nuestro mensaje con OK y el codigo {digits}."
    ),
}


def _check_in_call(p: dict[str, Any], lang: str) -> str:
    return _CHECK_IN_CALL[lang].format(digits=spoken_digits(p["code"]))


_LAST_KNOWN = {
    "en": (" Last known near {a}.", " Last known in zone {a}."),
    "es": (" Visto cerca de {a}.", " Visto en zona {a}."),
}


_SCENE = {"en": (" Scene near {a}.", " Scene in zone {a}."), "es": (" Lugar cerca de {a}.", " Lugar en zona {a}.")}


def _about_responder(build: Callable[[str, str], str], phrases: dict[str, tuple[str, str]] = _LAST_KNOWN) -> _Wording:
    """A text about a responder (their roster name) and where they were last known (a gazetteer name, else the
    zone, else nothing): ``build(name, where phrase)``; a long name is shortened first, then the place."""

    def wording(p: dict[str, Any], lang: str) -> str:
        name = staff_name(p["responder_name"])
        name = name if len(name) <= 30 else name[:28].rstrip(" ,.;:-") + ".."
        near, in_zone = phrases[lang]
        phrase, place = (near, p["place"]) if p.get("place") else (in_zone, p.get("zone") or "")
        if not place:
            return fit_name(lambda n: build(n, ""), name)
        return fit_name(lambda a: build(name, phrase.format(a=a)), place)

    return wording


def _code_of(p: dict[str, Any], lang: str) -> str:
    return f" ({p['code']})" if p.get("code") else ""


def _missed_alert(p: dict[str, Any], lang: str) -> str:
    code, late = p["code"], p["minutes_overdue"]
    if lang == "es":
        return _about_responder(lambda n, w: f"CONTROL NO RESPONDIDO: {n} en {code}, {late} min tarde.{w} Llamele ya.")(
            p, lang
        )
    return _about_responder(lambda n, w: f"CHECK-IN MISSED: {n} on {code}, {late} min overdue.{w} Call them now.")(
        p, lang
    )


def _call_911_alert(p: dict[str, Any], lang: str) -> str:
    code = _code_of(p, lang)
    if lang == "es":
        return _about_responder(lambda n, w: f"LLAME AL 911 YA: {n}{code} no responde al control.{w}")(p, lang)
    return _about_responder(lambda n, w: f"CALL 911 NOW: {n}{code} has not checked in.{w} Send help.")(p, lang)


def _duress_alert(p: dict[str, Any], lang: str) -> str:
    code = _code_of(p, lang)
    if lang == "es":
        return _about_responder(lambda n, w: f"ALERTA SILENCIOSA: {n}{code} puede estar en peligro.{w} Actue ya.")(
            p, lang
        )
    return _about_responder(lambda n, w: f"SILENT ALERT: {n}{code} may be in danger.{w} Act now, discreetly.")(p, lang)


def _pair_alert(p: dict[str, Any], lang: str) -> str:
    code = p["code"] or "-"
    if lang == "es":
        return _about_responder(
            lambda n, w: f"{n} esta sin pareja en {code}, que requiere dos personas; espera a otra.{w} Envie apoyo.",
            _SCENE,
        )(p, lang)
    return _about_responder(
        lambda n, w: f"{n} is alone on {code}, a two-person call, and was told to wait.{w} Send a partner.", _SCENE
    )(p, lang)


def _eta_overdue(p: dict[str, Any], lang: str) -> str:
    code, late = p["code"], p["minutes_late"]
    name = staff_name(p["responder_name"])
    if lang == "es":
        return fit_name(lambda n: f"{n} va {late} min tarde sobre su ETA a {code} y no ha llegado. Verifique.", name)
    return fit_name(lambda n: f"{n} is {late} min past their ETA for {code} and has not arrived. Please check.", name)


def _ems_overdue(p: dict[str, Any], lang: str) -> str:
    if lang == "es":
        return f"EMS sin confirmar en el lugar de {p['code']} a {p['minutes']} min de la llamada al 911. Verifique."
    return f"EMS not confirmed on scene for {p['code']} {p['minutes']} min after 911 was called. Please check."


_F1_WORDING: dict[str, _Wording] = {
    "checkin_prompt": lambda p, lang: (
        f"Control de seguridad {p['code']}: responda OK {p['code']} antes de las {p['due']} "
        f"(LIBRE {p['code']} al salir)."
        if lang == "es"
        else f"Safety check-in for {p['code']}: reply OK {p['code']} by {p['due']} (CLEAR {p['code']} when you leave)."
    ),
    "checkin_confirmed": lambda p, lang: (
        f"OK anotado para {p['code']}, proximo control antes de las {p['next_due']}."
        if lang == "es"
        else f"OK noted for {p['code']}, next check-in by {p['next_due']}."
    ),
    "checkin_reminder": lambda p, lang: (
        f"Su control de seguridad {p['code']} vence ahora. Responda OK {p['code']} si esta bien."
        if lang == "es"
        else f"Your safety check-in for {p['code']} is due now. Reply OK {p['code']} if you are safe."
    ),
    "checkin_call": _check_in_call,
    "checkin_cleared": lambda p, lang: (
        f"Control de seguridad {p['code']} terminado. Cuidese."
        if lang == "es"
        else f"Safety check-in for {p['code']} ended. Stay safe."
    ),
    "checkin_missed_alert": _missed_alert,
    "checkin_call_911": _call_911_alert,
    "duress_alert": _duress_alert,
    "pair_wait": lambda p, lang: (
        f"{p['code']} requiere dos personas: espere a su pareja antes de entrar. Su supervisor ya lo sabe."
        if lang == "es"
        else f"{p['code']} needs two responders: wait for your partner before going in. Your supervisor knows."
    ),
    "pair_alert": _pair_alert,
    "eta_overdue": _eta_overdue,
    "ems_overdue": _ems_overdue,
}


# --- end F1 -------------------------------------------------------------------------------------------------


# ---- naloxone in the bag (issue 18, F3): counts and codes only; a kit left names no kind of incident ----


def _kits(n: int, usable: str = "") -> str:
    """'1 kit', '3 kits'; with ``usable`` ('usable'): '3 usable kits'."""
    return f"{n} {usable + ' ' if usable else ''}{'kit' if n == 1 else 'kits'}"


def _restock_confirmed(p: dict[str, Any], lang: str) -> str:
    if lang == "es":
        return f"Reposicion anotada: {_kits(p['added'])} de naloxona. Kits utilizables ahora: {p['usable']}."
    return f"Restock noted: {_kits(p['added'])} of naloxone added. You now have {_kits(p['usable'], 'usable')}."


def _kits_left_noted(p: dict[str, Any], lang: str) -> str:
    count, code, usable = p["count"], p["code"], p["usable"]
    if lang == "es":
        left = f"{_kits(count)} {'dejado' if count == 1 else 'dejados'} en {code}"
        then = "Envie REPONER <n> para anotar su bolsa." if usable is None else f"Kits utilizables: {usable}."
        return f"Anotado: {left}. {then}"
    then = "Text RESTOCK <n> to record your bag." if usable is None else f"You have {_kits(usable, 'usable')} left."
    return f"Noted: {_kits(count)} left at {code}. {then}"


def _stock_low(p: dict[str, Any], lang: str) -> str:
    name, usable = staff_name(p["responder_name"]), p["usable"]
    if lang == "es":
        return fit_name(lambda n: f"Kits de naloxona utilizables de {n}: {usable}. Organice la reposicion.", name)
    return fit_name(lambda n: f"{n} has {_kits(usable, 'usable')} of naloxone left. Please arrange a restock.", name)


_F3_WORDING = {
    "restock_confirmed": _restock_confirmed,
    "kits_left_noted": _kits_left_noted,
    "stock_low": _stock_low,
}

# ---- end naloxone (F3) ----

FIELD_WORDING: dict[str, _Wording] = {**_F1_WORDING, **_F3_WORDING}
"""template -> its wording, for every field template."""
