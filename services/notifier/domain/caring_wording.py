"""The wording of the caring-contacts texts (issue 19), English and Spanish, one GSM-7 segment each.

Caring contacts are brief and ask nothing (DOMAIN.md): no name, nothing about the crisis, a way to reply and a
way to stop. The n-th text takes the n-th wording, round the list, so a year of texts does not read the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_CONTACT = {
    "en": (
        "Hi, just thinking of you today and hoping you are doing okay. No need to reply. Text STOP to stop these.",
        "We are still here for you. If you want to talk, reply to this text any time. Text STOP to stop these.",
        "Hoping this week is treating you kindly. We are glad you are here. Text STOP to stop these messages.",
        "Checking in to say you matter to us. Reply if you would like a call. Text STOP to stop these messages.",
    ),
    "es": (
        "Hola, pensamos en usted hoy y esperamos que este bien. No hace falta responder. STOP para dejar de recibir.",
        "Seguimos aqui para usted. Si quiere hablar, responda cuando quiera. Envie STOP para no recibir mas.",
        "Esperamos que esta semana le vaya bien. Nos alegra que este aqui. Envie STOP para no recibir mas.",
        "Le escribimos para decirle que usted nos importa. Responda si quiere una llamada. STOP para no recibir mas.",
    ),
}
_ACK = {
    "en": "Thank you for writing. Someone from our team will call you soon. In danger now? Call or text 988, or 911.",
    "es": (
        "Gracias por escribir. Alguien de nuestro equipo le llamara pronto. En peligro ahora? "
        "Llame o escriba al 988 o 911."
    ),
}


def _alert(p: dict[str, Any], lang: str) -> str:
    code, repeat = p["code"], p.get("repeat", 1)
    if lang == "es":
        again = f"Aviso {repeat}: " if repeat > 1 else ""
        return (
            f"{again}Contactos de apoyo: una persona respondio y pide contacto. Codigo {code}. "
            f"Responda Y {code} para encargarse."
        )
    again = f"Repeat {repeat}: " if repeat > 1 else ""
    return f"{again}Caring contacts: a person replied and asks for contact. Code {code}. Reply Y {code} to take it."


_ANSWERED = {
    "en": {
        "taken_by_you": "Reply {code} is yours: call them from the person's page in the app. The others were told.",
        "taken": "Reply {code} was taken by a colleague. Nothing to do.",
    },
    "es": {
        "taken_by_you": (
            "La respuesta {code} es suya: llame desde la pagina de la persona en la app. Avisamos a los demas."
        ),
        "taken": "Un colega se encargo de la respuesta {code}. Nada que hacer.",
    },
}


def _unreachable(p: dict[str, Any], lang: str) -> str:
    incident = f" (incident {p['incident_code']})" if p.get("incident_code") else ""
    if lang == "es":
        incidente = f" (incidente {p['incident_code']})" if p.get("incident_code") else ""
        return (
            f"Tarea de seguimiento {p['task_code']}{incidente}: nadie respondio en {p['attempts']} intentos. "
            "Decida el siguiente paso en la app."
        )
    return (
        f"Outreach task {p['task_code']}{incident}: nobody reached in {p['attempts']} attempts. "
        "Decide the next step in the app."
    )


CARING_WORDING: dict[str, Callable[[dict[str, Any], str], str]] = {
    "caring_contact": lambda p, lang: _CONTACT[lang][(p["number"] - 1) % len(_CONTACT[lang])],
    "caring_reply_ack": lambda p, lang: _ACK[lang],
    "caring_reply_alert": _alert,
    "caring_alarm_answered": lambda p, lang: _ANSWERED[lang][p["reason"]].format(code=p["code"]),
    "outreach_unreachable": _unreachable,  # the outreach series (issue 19 section 1)
}
"""template -> its wording, for every issue-19 caring-contacts template."""
