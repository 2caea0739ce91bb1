"""The wording of every message, in English and Spanish. Pure: parameters in, text out.

Senders name a template and its typed parameters (``services.contract.templates``); only this module
turns them into words. The rules the wording keeps (DOMAIN.md, "What an SMS may say"):

- No client detail can get in, and nothing a reporter typed: parameters are priorities, opaque codes,
  distances, counts, a staff member's name from the roster, and places by reference (``PlaceRef``). A
  place is printed only as the name this notifier's ``PlaceBook`` (its own copy of the gazetteer) has for
  the reference; an unknown reference prints nothing. So a page says "near Union Station", "in zone
  central" or only the distance, and the address is in the authenticated app.
- GSM-7 only, so a text costs what it looks like: Spanish is written without the accents GSM-7 lacks
  ("codigo", "esta"), while the ones it has (é, ñ) stay allowed.
- One segment: every SMS template fits 160 septets for its worst-case parameters. When it would not, a
  page switches to its compact wording, then a name is shortened ("..") and long code lists end in
  "+N more". A P1 page is therefore never split or reordered by a carrier.
- ``voice_page`` and ``nobody_accepted_call`` are speech, not SMS: digits are spelled out one by one so
  text-to-speech reads "4, 8, 2, 1" rather than "four thousand eight hundred twenty-one".
- NOBODY ACCEPTED names the response an incident's kind needs ("urgent medical response"), never the kind.

A language without wording for a template falls back to English.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.contract.events import TEMPLATES
from services.contract.gsm7 import count_segments
from services.notifier.domain import reply_wording
from services.notifier.domain.caring_wording import CARING_WORDING
from services.notifier.domain.field_wording import FIELD_WORDING
from services.notifier.domain.place_names import NO_PLACES, PlaceBook
from services.notifier.domain.referral_wording import REFERRAL_WORDING
from services.notifier.domain.reply_wording import reply_ambiguous, reply_help, reply_unknown, status_summary
from services.notifier.domain.segment_fit import MORE, fit_codes, fit_name, fits
from services.notifier.domain.wording_parts import Wording, spoken_digits, staff_name
from services.notifier.domain.wording_parts import both as _both

DEFAULT_LANGUAGE = "en"
LANGUAGES = ("en", "es")
VOICE_TEMPLATES = frozenset({"voice_page", "nobody_accepted_call", "checkin_call"})


class TemplateError(ValueError):
    """The template is unknown or its parameters are invalid: the request can never be rendered."""


@dataclass(frozen=True)
class Rendered:
    """A rendered message: its text, the language it is in (after fallback) and its SMS segments."""

    text: str
    language: str
    segments: int


def render(
    template: str, params: Mapping[str, Any], language: str = DEFAULT_LANGUAGE, places: PlaceBook = NO_PLACES
) -> Rendered:
    """The text of ``template`` with ``params`` in ``language`` (English if that language has no wording).

    A place reference is printed as the name ``places`` has for it, or not at all.
    Raises TemplateError for an unknown template or parameters its model rejects.
    """
    model = TEMPLATES.get(template)
    wording = _WORDING.get(template)
    if model is None or wording is None:
        raise TemplateError(f"unknown template {template!r}")
    try:
        typed = model.model_validate(dict(params))
    except ValueError as exc:
        raise TemplateError(f"invalid parameters for {template!r}") from exc
    values = typed.model_dump()
    if "place" in values:
        values["place"], values["zone"] = places.place(values["place"]), places.zone(values["zone"])
    used = language if language in wording else DEFAULT_LANGUAGE
    text = wording[used](values, used)
    return Rendered(text=text, language=used, segments=count_segments(text))


# --- shared pieces -----------------------------------------------------------------------------------------


def _distance(km: float | None, language: str) -> str:
    if km is None:
        return ""
    if km < 10:
        figure = f"{km:.1f}"
        if language == "es":
            figure = figure.replace(".", ",")
    elif km < 1000:
        figure = f"{km:.0f}"
    else:
        figure = ">999"
    return f" ({figure} km)"


_CALL_911 = {"en": " Call 911 if not done.", "es": " Llame al 911 si nadie lo hizo."}
_REASONS = {
    "en": {
        "nobody_on_call": "nobody is on call",
        "nobody_qualified": "nobody qualified is available",
        "all_busy": "all responders are busy",
        "ladder_exhausted": "nobody accepted",
        "outside_service_area": "outside the service area",
        "escalated": "escalated to you",
    },
    "es": {
        "nobody_on_call": "nadie esta de guardia",
        "nobody_qualified": "no hay nadie calificado disponible",
        "all_busy": "todo el equipo esta ocupado",
        "ladder_exhausted": "nadie acepto",
        "outside_service_area": "fuera del area de servicio",
        "escalated": "escalado a usted",
    },
}
_UNREACHABLE = {
    "en": {"opted_out": "texted STOP", "undeliverable": "texts are not delivered"},
    "es": {"opted_out": "envio STOP", "undeliverable": "los mensajes no llegan"},
}
_SPOKEN_PRIORITY = {"en": "priority {n}", "es": "prioridad {n}"}


# --- one function per template, each taking the validated parameters and a language ---------------------


_NEAR = {"en": (" near {n}", " in zone {n}"), "es": (" cerca de {n}", " en la zona {n}")}


def _where(p: dict[str, Any], lang: str) -> tuple[str, str]:
    """The phrase for a page's place (``{n}`` standing for the name) and the name: place, else zone, else none."""
    near, in_zone = _NEAR[lang]
    if p["place"]:
        return near, p["place"]
    if p["zone"]:
        return in_zone, p["zone"]
    return "", ""


def _page_offer(p: dict[str, Any], lang: str) -> str:
    priority, code = p["priority"], p["code"]
    distance = _distance(p["distance_km"], lang)
    call_911 = _CALL_911[lang] if p["call_911"] else ""
    if lang == "es":
        full = "{pr}: se necesita respuesta{w}{d}.{c} Responda Y {code} para aceptar, N {code} para pasar."
        compact = "{pr}{w}{d}.{c} Y {code} acepta, N {code} pasa"
    else:
        full = "{pr} response needed{w}{d}.{c} Reply Y {code} to accept, N {code} to pass."
        compact = "{pr}{w}{d}.{c} Y {code} accept, N {code} pass"
    phrase, name = _where(p, lang)

    def build(wording: str, n: str) -> str:
        return wording.format(pr=priority, w=phrase.format(n=n), d=distance, c=call_911, code=code)

    text = build(full, name)
    if fits(text):
        return text
    return fit_name(lambda n: build(compact, n), name)


def _page_reminder(p: dict[str, Any], lang: str) -> str:
    if lang == "es":
        return (
            f"Recordatorio: el aviso {p['priority']} {p['code']} sigue sin respuesta. "
            f"Responda Y {p['code']} para aceptar, N {p['code']} para pasar."
        )
    return (
        f"Reminder: {p['priority']} page {p['code']} still needs a responder. "
        f"Reply Y {p['code']} to accept, N {p['code']} to pass."
    )


_VOICE_PAGE = {
    "en": (
        "This is an urgent {priority} page from dispatch. "
        "To accept, reply to our text message with the letter Y and the code {digits}. "
        "Again: Y, {digits}. To pass, reply N and the code."
    ),
    "es": (
        "Este es un aviso urgente de {priority} del servicio de despacho. "
        "Para aceptar, responda a nuestro mensaje de texto con la letra Y y el codigo {digits}. "
        "Repito: Y, {digits}. Para pasar, responda N y el codigo."
    ),
}


def _voice_page(p: dict[str, Any], lang: str) -> str:
    priority = _SPOKEN_PRIORITY[lang].format(n=str(p["priority"])[1:])
    return _VOICE_PAGE[lang].format(priority=priority, digits=spoken_digits(p["code"]))


def _code_only(en: str, es: str) -> Callable[[dict[str, Any], str], str]:
    return lambda p, lang: (es if lang == "es" else en).format(code=p["code"])


def _accept_confirmed(p: dict[str, Any], lang: str) -> str:
    """With a link (the responder's incident page, signed for them) when the dispatcher gave one."""
    if p["link"] is None:
        return _code_only(
            "Accepted {code}. Thank you - details in the app.",
            "Aceptado {code}. Gracias - los detalles estan en la app.",
        )(p, lang)
    if lang == "es":
        return f"Aceptado {p['code']}. Gracias - detalles: {p['link']}"
    return f"Accepted {p['code']}. Thank you - details: {p['link']}"


def _already_taken(p: dict[str, Any], lang: str) -> str:
    if lang == "es":
        tail = "Quede disponible como apoyo." if p["outcome"] == "backup" else "Puede retirarse, gracias."
        return f"El aviso {p['code']} ya fue aceptado por otra persona. {tail}"
    tail = "Please stay available as backup." if p["outcome"] == "backup" else "You can stand down, thank you."
    return f"Page {p['code']} was already accepted by someone else. {tail}"


def _supervisor_alert(p: dict[str, Any], lang: str) -> str:
    reason = _REASONS[lang][p["reason"]]
    if lang == "es":
        head, tail = f"Aviso {p['priority']} {p['code']}: {reason}", ". Revise el despacho."
        near, in_zone = ". Cerca de {a}", ". Zona {a}"
    else:
        head, tail = f"{p['priority']} page {p['code']}: {reason}", ". Please check the dispatch board."
        near, in_zone = ". Near {a}", ". Zone {a}"
    if p["place"]:
        return fit_name(lambda a: head + near.format(a=a) + tail, p["place"])
    if p["zone"]:
        return fit_name(lambda a: head + in_zone.format(a=a) + tail, p["zone"])
    return head + tail


def _responder_unreachable(p: dict[str, Any], lang: str) -> str:
    reason = _UNREACHABLE[lang][p["reason"]]
    name = staff_name(p["responder_name"])
    if lang == "es":
        return fit_name(lambda n: f"No se puede contactar a {n} por SMS ({reason}). Haga seguimiento.", name)
    return fit_name(lambda n: f"{n} cannot be reached by SMS ({reason}). Please follow up.", name)


def _open_pages_bundle(p: dict[str, Any], lang: str) -> str:
    codes = p["codes"]
    n = len(codes)
    if lang == "es":
        count = "1 aviso abierto" if n == 1 else f"{n} avisos abiertos"
        return fit_codes(
            lambda c: f"{count} ({c}). Responda STATUS para ver detalles, o Y/N y el codigo.", codes, MORE[lang]
        )
    count = "1 open page" if n == 1 else f"{n} open pages"
    return fit_codes(lambda c: f"{count} ({c}). Reply STATUS for details, or Y/N and the code.", codes, MORE[lang])


_FOR_INCIDENT = {"en": " for incident {code}", "es": " del incidente {code}"}


def _task(p: dict[str, Any], lang: str) -> str:
    """The task's code, and the incident's when the request names it (requests made before they did do not)."""
    incident = _FOR_INCIDENT[lang].format(code=p["incident_code"]) if p["incident_code"] else ""
    return f"{p['task_code']}{incident}"


def _task_due(p: dict[str, Any], lang: str) -> str:
    hours = p["due_in_hours"]
    if lang == "es":
        when = "vence ahora" if hours == 0 else f"vence en {hours} h"
        return f"La tarea de seguimiento {_task(p, lang)} {when}. Detalles en la app."
    when = "is due now" if hours == 0 else f"is due in {hours} h"
    return f"Follow-up task {_task(p, lang)} {when}. Details in the app."


def _task_overdue(p: dict[str, Any], lang: str) -> str:
    if lang == "es":
        return f"La tarea de seguimiento {_task(p, lang)} esta vencida. Detalles en la app."
    return f"Follow-up task {_task(p, lang)} is overdue. Details in the app."


# the response a kind needs, never the condition: no overdose or withdrawal wording tied to a person (DOMAIN.md)
_RESPONSE_LABEL = {
    "en": {
        "overdose": "urgent medical response",
        "withdrawal": "medical response",
        "self_harm_risk": "crisis team response",
    },
    "es": {
        "overdose": "respuesta medica urgente",
        "withdrawal": "respuesta medica",
        "self_harm_risk": "respuesta de equipo de crisis",
    },
}


def _nobody_accepted(p: dict[str, Any], lang: str) -> str:
    label, minutes, alert = _RESPONSE_LABEL[lang][p["kind"]], p["minutes_since_report"], p["repeat"]
    if lang == "es":
        return (
            f"NADIE ACEPTO {p['priority']} {p['code']} ({label}), reportado hace {minutes} min. Alerta {alert}. "
            "Asigne a alguien ya en el tablero de despacho."
        )
    return (
        f"NOBODY ACCEPTED {p['priority']} {p['code']} ({label}), reported {minutes} min ago. Alert {alert}. "
        "Assign someone now on the dispatch board."
    )


_ALARM_ANSWERED = {  # (language, why it ended) -> the text
    ("en", "accepted"): "Incident {code} is covered now: someone accepted. No action needed.",
    ("en", "cancelled"): "Incident {code} was cancelled. No action needed.",
    ("en", "disposition_recorded"): "Incident {code}: a disposition was recorded. No action needed.",
    ("es", "accepted"): "El incidente {code} ya esta cubierto: alguien acepto. No hace falta hacer nada.",
    ("es", "cancelled"): "El incidente {code} fue cancelado. No hace falta hacer nada.",
    ("es", "disposition_recorded"): "Incidente {code}: se registro una disposicion. No hace falta hacer nada.",
}


def _alarm_answered(p: dict[str, Any], lang: str) -> str:
    return _ALARM_ANSWERED[lang, p["reason"]].format(code=p["code"])


_NOBODY_ACCEPTED_CALL = {
    "en": (
        "This is an urgent alert from dispatch. Nobody accepted the {priority} incident, code {digits}, "
        "which needs {label}, reported {minutes} minutes ago. Check the dispatch board and assign someone now. "
        "Again: nobody accepted incident {digits}."
    ),
    "es": (
        "Esta es una alerta urgente del despacho. Nadie acepto el incidente de {priority}, codigo {digits}, "
        "una {label}, reportado hace {minutes} minutos. Revise el tablero de despacho y asigne a alguien ya. "
        "Repito: nadie acepto el incidente {digits}."
    ),
}


def _nobody_accepted_call(p: dict[str, Any], lang: str) -> str:
    return _NOBODY_ACCEPTED_CALL[lang].format(
        priority=_SPOKEN_PRIORITY[lang].format(n=str(p["priority"])[1:]),
        digits=spoken_digits(p["code"]),
        label=_RESPONSE_LABEL[lang][p["kind"]],
        minutes=p["minutes_since_report"],
    )


def _system_alert(p: dict[str, Any], lang: str) -> str:
    if lang == "es":
        return (
            f"ALERTA DEL SISTEMA {p['reference']}: {p['service']} no proceso un evento, quiza un incidente. "
            "Revise ya el espacio de trabajo."
        )
    return (
        f"SYSTEM ALERT {p['reference']}: {p['service']} could not process an event, maybe an incident. "
        "Check the workspace now."
    )


_Wording = Wording


def _all_languages(function: _Wording) -> dict[str, _Wording]:
    return {language: function for language in LANGUAGES}


_WORDING: dict[str, dict[str, _Wording]] = {
    name: _all_languages(function)
    for name, function in {
        "page_offer": _page_offer,
        "page_reminder": _page_reminder,
        "voice_page": _voice_page,
        "page_covered": _code_only(
            "Page {code} is covered. No action needed, thank you.",
            "El aviso {code} ya esta cubierto. No hace falta hacer nada, gracias.",
        ),
        "page_withdrawn": _code_only(
            "Page {code} was cancelled. No action needed.",
            "El aviso {code} fue cancelado. No hace falta hacer nada.",
        ),
        "ack_confirmed": _accept_confirmed,
        "already_taken": _already_taken,
        "decline_confirmed": _code_only(
            "Passed on {code}. Thank you, we will page someone else.",
            "Rechazado {code}. Gracias, avisaremos a otra persona.",
        ),
        "en_route_confirmed": _code_only("Noted: en route to {code}.", "Anotado: en camino a {code}."),
        "arrived_confirmed": _code_only("Noted: on scene for {code}.", "Anotado: en el lugar para {code}."),
        "done_confirmed": _code_only(
            "Noted: {code} cleared. Thank you. Please finish the notes in the app.",
            "Anotado: {code} terminado. Gracias. Complete las notas en la app.",
        ),
        "status_summary": status_summary,
        "reply_help": reply_help,
        "reply_unknown": reply_unknown,
        "reply_ambiguous": reply_ambiguous,
        "location_noted": _both("Location noted, thank you.", "Ubicacion anotada, gracias."),
        "location_unknown": _both(
            "Sorry, we could not read that location. Please try again or use the app.",
            "Perdon, no pudimos leer esa ubicacion. Intente de nuevo o use la app.",
        ),
        "supervisor_alert": _supervisor_alert,
        "responder_unreachable": _responder_unreachable,
        "open_pages_bundle": _open_pages_bundle,
        "task_due": _task_due,
        "task_overdue": _task_overdue,
        "system_alert": _system_alert,
        "nobody_accepted": _nobody_accepted,
        "nobody_accepted_call": _nobody_accepted_call,
        "alarm_answered": _alarm_answered,
        # F4: re-assessment on scene changed the priority (codes and priorities only)
        "priority_changed": lambda p, lang: (
            f"La prioridad de {p['code']} cambio de {p['from_priority']} a {p['to_priority']} tras la "
            "reevaluacion en el lugar."
            if lang == "es"
            else f"Priority of {p['code']} changed from {p['from_priority']} to {p['to_priority']} after "
            "re-assessment on scene."
        ),
        # F2: field reports by text (services/notifier/domain/reply_wording.py)
        "field_noted": reply_wording.field_noted,
        "reply_not_understood": reply_wording.reply_not_understood,
        "reply_help_field": reply_wording.reply_help_field,
        "reply_help_kit": reply_wording.reply_help_kit,
        "field_alert": reply_wording.field_alert,
        "caller_confirm_location": reply_wording.caller_confirm_location,
        # end F2
        "legacy_v1": _both(
            "You have a message from dispatch. Reply STATUS for your open pages.",
            "Tiene un mensaje del despacho. Responda STATUS para ver sus avisos abiertos.",
        ),
        **FIELD_WORDING,  # check-ins, pairs only, late ETA, EMS not confirmed, naloxone (field_wording.py)
        **REFERRAL_WORDING,  # referrals, programs, family and caller (referral_wording.py)
        **CARING_WORDING,  # caring contacts (caring_wording.py)
    }.items()
}


def has_wording(template: str, language: str) -> bool:
    """Whether ``template`` has its own wording in ``language`` (otherwise English is used)."""
    return language in _WORDING.get(template, {})
