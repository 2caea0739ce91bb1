"""The wording of issue 17's texts, in English and Spanish, under the rules ``templates.py`` states: to a program
(a referral waiting, withdrawn, an answer noted, availability noted, the reply commands), to the on-call supervisor
(nobody accepted a referral in time), to the follow-up coach (an admission was missed), to a family contact under
consent, and to the caller. ``REFERRAL_WORDING`` joins the notifier's table.

None of them names the person, a program (to a family), a substance, a diagnosis or treatment: a program learns the
needs only on its signed page; a family member hears only what the consent's scope allows (FamilyMessage).
"""

from __future__ import annotations

from typing import Any

from services.notifier.domain.wording_parts import Wording as _Wording


def _referral_offer(p: dict[str, Any], lang: str) -> str:
    code, link = p["code"], p.get("link") or ""
    if lang == "es":
        return f"Referencia {code} {link or 'pendiente.'} Responda ACEPTAR {code} o RECHAZAR {code}"
    return f"Referral {code} {link or 'waiting.'} Reply ACCEPT {code} or DECLINE {code}"


def _referral_withdrawn(p: dict[str, Any], lang: str) -> str:
    if lang == "es":
        return f"La referencia {p['code']} ya no es necesaria. Gracias."
    return f"Referral {p['code']} is no longer needed. Thank you."


_ANSWERS = {
    "en": {
        "received": "received",
        "accepted": "accepted",
        "declined": "declined",
        "info_needed": "on hold: we will send what you asked for",
        "admitted": "arrival confirmed",
        "no_show": "no arrival noted",
    },
    "es": {
        "received": "recibida",
        "accepted": "aceptada",
        "declined": "rechazada",
        "info_needed": "en espera: le enviaremos lo que pidio",
        "admitted": "llegada confirmada",
        "no_show": "no llego: anotado",
    },
}


def _referral_noted(p: dict[str, Any], lang: str) -> str:
    answer = _ANSWERS[lang][p["answer"]]
    if lang == "es":
        return f"Anotado: referencia {p['code']} {answer}. Gracias."
    return f"Noted: referral {p['code']} {answer}. Thank you."


def _program_reply_help(p: dict[str, Any], lang: str) -> str:
    if lang == "es":
        return (
            "Responda ACEPTAR <codigo> <horas>, RECHAZAR <codigo> LLENO, INFO <codigo>, LLEGO <codigo>, "
            "NOLLEGO <codigo>, CAMAS <n>, LLENO, CITA <aaaa-mm-dd> <hh:mm>."
        )
    return (
        "Reply ACCEPT <code> <hours>, DECLINE <code> FULL, INFO <code>, ARRIVED <code>, NOSHOW <code>, BEDS <n>, FULL, "
        "SLOT <yyyy-mm-dd> <hh:mm>."
    )


def _availability_noted(p: dict[str, Any], lang: str) -> str:
    beds, slot = p.get("beds_open"), p.get("slot")
    if lang == "es":
        said = f"{beds} camas libres" if beds is not None else "proxima admision"
        return f"Disponibilidad anotada: {said}{' y proxima admision' if slot and beds is not None else ''}. Gracias."
    said = f"{beds} beds open" if beds is not None else "next intake slot"
    return f"Availability noted: {said}{' and next intake slot' if slot and beds is not None else ''}. Thank you."


def _referral_overdue(p: dict[str, Any], lang: str) -> str:
    code, declined, unanswered, repeat = p["code"], p["declined"], p["unanswered"], p.get("repeat", 1)
    if lang == "es":
        again = f"Aviso {repeat}: " if repeat > 1 else ""
        return (
            f"{again}Nadie acepto la referencia {code} a tiempo ({declined} rechazos, {unanswered} sin respuesta). "
            f"Responda Y {code} para encargarse."
        )
    again = f"Repeat {repeat}: " if repeat > 1 else ""
    return (
        f"{again}Nobody accepted referral {code} in time ({declined} declined, {unanswered} no answer). "
        f"Reply Y {code} to take it."
    )


_ALARM_ANSWERED = {
    "en": {
        "taken_by_you": "Referral {code} is yours: find the next program in the app. The others were told.",
        "taken": "Referral {code} was taken by a colleague. Nothing to do.",
        "accepted": "Referral {code}: a program accepted. Nothing to do.",
        "cancelled": "Referral {code} was cancelled. Nothing to do.",
        "admitted": "Referral {code}: the person was admitted. Nothing to do.",
    },
    "es": {
        "taken_by_you": "La referencia {code} es suya: busque otro programa en la app. Avisamos a los demas.",
        "taken": "Un colega se encargo de la referencia {code}. Nada que hacer.",
        "accepted": "Referencia {code}: un programa acepto. Nada que hacer.",
        "cancelled": "La referencia {code} fue cancelada. Nada que hacer.",
        "admitted": "Referencia {code}: la persona fue admitida. Nada que hacer.",
    },
}


def _referral_no_show(p: dict[str, Any], lang: str) -> str:
    if lang == "es":
        return f"La admision de la referencia {p['code']} paso sin llegada. Contacte hoy; detalles en la app."
    return f"Referral {p['code']}: the admission window passed without an arrival. Reach out today; details in the app."


_FAMILY = {
    "en": {
        "help_on_the_way": "Crisis team update: help is on the way. Reply STOP to end these texts.",
        "responder_with_them": "Crisis team update: a team member is with them now. Reply STOP to end these texts.",
        "person_safe": "Crisis team update: they are safe for now. Reply STOP to end these texts.",
        "support_guidance": (
            "If someone cannot be woken, breathes slowly or has blue lips: call 911, use a rescue nasal spray "
            "if you have one, stay with them. Support: call or text 988."
        ),
        "admitted_to_care": (
            "Crisis team update: they have arrived where they were going. Reply STOP to end these texts."
        ),
    },
    "es": {
        "help_on_the_way": "Equipo de crisis: la ayuda va en camino. Responda STOP para no recibir mas.",
        "responder_with_them": (
            "Equipo de crisis: alguien del equipo esta con la persona. Responda STOP para no recibir mas."
        ),
        "person_safe": "Equipo de crisis: la persona esta a salvo por ahora. Responda STOP para no recibir mas.",
        "support_guidance": (
            "Si alguien no despierta, respira lento o tiene labios azules: llame al 911, use un spray nasal de "
            "rescate si tiene, quedese con la persona. Apoyo: 988."
        ),
        "admitted_to_care": "Equipo de crisis: la persona llego a donde iba. Responda STOP para no recibir mas.",
    },
}

_CALLER = {
    "en": {
        "help_on_the_way": "About the call you made: help is on the way. If anyone stops breathing, call 911.",
        "responder_with_them": "About the call you made: our team has arrived. Thank you for calling.",
    },
    "es": {
        "help_on_the_way": "Sobre su llamada: la ayuda va en camino. Si alguien deja de respirar, llame al 911.",
        "responder_with_them": "Sobre su llamada: nuestro equipo llego. Gracias por llamar.",
    },
}


REFERRAL_WORDING: dict[str, _Wording] = {
    "referral_offer": _referral_offer,
    "referral_withdrawn": _referral_withdrawn,
    "referral_noted": _referral_noted,
    "program_reply_help": _program_reply_help,
    "availability_noted": _availability_noted,
    "referral_overdue": _referral_overdue,
    "referral_alarm_answered": lambda p, lang: _ALARM_ANSWERED[lang][p["reason"]].format(code=p["code"]),
    "referral_no_show": _referral_no_show,
    "family_update": lambda p, lang: _FAMILY[lang][p["message"]],
    "caller_update": lambda p, lang: _CALLER[lang][p["update"]],
}
"""template -> its wording, for every issue-17 template."""
