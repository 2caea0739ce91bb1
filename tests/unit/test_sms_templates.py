"""Every outgoing text comes from a template: PHI-free, GSM-7, one segment, in English and Spanish.

And nothing a reporter typed can be printed: a place is a reference that only the notifier's own copy of the
gazetteer can turn into a name, and every other parameter has a shape no words fit in.
"""

from __future__ import annotations

import itertools
import json
import re
import typing
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from services.contract.events import NotificationRequested, NotificationRequestedData, decode_event, new_event
from services.contract.gsm7 import GSM7_BASIC, count_segments, is_gsm7, septets, to_gsm7
from services.contract.templates import (
    TEMPLATES,
    CallerUpdate,
    FamilyUpdate,
    FieldNoted,
    ReferralAlarmAnswered,
    ReferralNoted,
    ReplyCommand,
    ReplyPart,
    place_ref,
    without_retired_free_text,
)
from services.notifier.domain.place_names import PlaceBook, printable_name
from services.notifier.domain.templates import (
    LANGUAGES,
    VOICE_TEMPLATES,
    TemplateError,
    has_wording,
    render,
)
from tests.factories import T0

_LONG = "Calle Ñandú Álvarez [Edificio {B}] ~ 12ª — “Entrada” €5 | ½ km 北 😀 " * 3
LONG_PLACE = next(_LONG[:n] for n in range(len(_LONG), 0, -1) if printable_name(_LONG[:n]))  # the longest kept
LONG_ZONE = "Zona Ñandú-Álvarez " * 4
LONG_NAME = "Dr. Zoë Ångström-Łukasiewicz O’Brien [on call] " * 3
ALL_CODES = [f"{n:04d}" for n in range(9980, 10000)]  # 20 codes, the most a list may hold
LONGEST_LINK = "https://" + "w" * 49 + "/r/" + "Z_-9" * 10  # the longest base URL the dispatcher accepts (57)

BOOK = PlaceBook.of(places=[LONG_PLACE, "5th St & Main", "Union Station"], zones=["central", LONG_ZONE])
LONG_PLACE_REF, LONG_ZONE_REF = place_ref(LONG_PLACE), place_ref(LONG_ZONE)
WHERE = [  # place and zone references: both known, zone only, unknown to this notifier, none
    {"place": LONG_PLACE_REF, "zone": LONG_ZONE_REF},
    {"place": None, "zone": LONG_ZONE_REF},
    {"place": place_ref("somewhere this notifier never heard of"), "zone": None},
    {"place": None, "zone": None},
]

WORST_CASE: dict[str, list[dict[str, Any]]] = {
    "page_offer": [
        {"priority": p, "code": "9999", **w, "distance_km": d, "call_911": c}
        for p, w, d, c in itertools.product(
            ("P1", "P2", "P3"), WHERE, (None, 0.04, 9.96, 999.4, 123456.0), (True, False)
        )
    ],
    "page_reminder": [{"priority": p, "code": "9999"} for p in ("P1", "P2", "P3")],
    "voice_page": [{"priority": "P1", "code": "4821"}],
    "page_covered": [{"code": "9999"}],
    "page_withdrawn": [{"code": "9999"}],
    "ack_confirmed": [{"code": "9999"}, {"code": "9999", "link": LONGEST_LINK}],
    "already_taken": [{"code": "9999", "outcome": o} for o in ("backup", "stand_down")],
    "decline_confirmed": [{"code": "9999"}],
    "en_route_confirmed": [{"code": "9999"}],
    "arrived_confirmed": [{"code": "9999"}],
    "done_confirmed": [{"code": "9999"}],
    "status_summary": [
        {"codes": []},
        {"codes": ["1234"]},
        {"codes": ALL_CODES},
        {"codes": [], "accepted": ALL_CODES},
        {"codes": ALL_CODES, "accepted": ALL_CODES},
    ],
    "reply_help": [{}],
    "reply_unknown": [{"codes": []}, {"codes": ALL_CODES}],
    "reply_ambiguous": [{"codes": []}, {"codes": ALL_CODES[:2]}, {"codes": ALL_CODES}],
    "location_noted": [{}],
    "location_unknown": [{}],
    "supervisor_alert": [
        {"priority": "P1", "code": "9999", "reason": r, **w}
        for r in (
            "nobody_on_call",
            "nobody_qualified",
            "all_busy",
            "ladder_exhausted",
            "outside_service_area",
            "escalated",
        )
        for w in WHERE
    ],
    "responder_unreachable": [{"responder_name": LONG_NAME[:100], "reason": r} for r in ("opted_out", "undeliverable")],
    "open_pages_bundle": [{"codes": ["1234"]}, {"codes": ALL_CODES[:3]}, {"codes": ALL_CODES}],
    "task_due": [
        {"task_code": "9999", "due_in_hours": h, "incident_code": c} for h in (0, 1, 10**9) for c in ("9999", None)
    ],
    "task_overdue": [{"task_code": "9999", "due_in_hours": 10**9, "incident_code": c} for c in ("9999", None)],
    "alarm_answered": [{"code": "9999", "reason": r} for r in ("accepted", "cancelled", "disposition_recorded")],
    "nobody_accepted": [
        {"priority": p, "code": "9999", "kind": k, "minutes_since_report": 99_999, "repeat": 99_999}
        for p in ("P1", "P2")
        for k in ("overdose", "withdrawal", "self_harm_risk")
    ],
    "nobody_accepted_call": [
        {"priority": "P1", "code": "4821", "kind": k, "minutes_since_report": 99_999, "repeat": 1}
        for k in ("overdose", "withdrawal", "self_harm_risk")
    ],
    "system_alert": [{"reference": "DL-999999999999", "service": "intake_gateway_incident_state"}],
    "priority_changed": [  # F4
        {"code": "9999", "from_priority": f, "to_priority": t} for f in ("P1", "P2", "P3") for t in ("P1", "P2", "P3")
    ],
    # F1: check-ins, pairs only, late ETA, EMS not confirmed
    "checkin_prompt": [{"code": "9999", "due": "23:59"}],
    "checkin_confirmed": [{"code": "9999", "next_due": "23:59"}],
    "checkin_reminder": [{"code": "9999"}],
    "checkin_call": [{"code": "4821"}],
    "checkin_cleared": [{"code": "9999"}],
    "checkin_missed_alert": [
        {"responder_name": LONG_NAME[:100], "code": "9999", "minutes_overdue": 99_999, **w} for w in WHERE
    ],
    "checkin_call_911": [{"responder_name": LONG_NAME[:100], "code": c, **w} for w in WHERE for c in ("9999", None)],
    "duress_alert": [{"responder_name": LONG_NAME[:100], "code": c, **w} for w in WHERE for c in ("9999", None)],
    "pair_wait": [{"code": "9999"}],
    "pair_alert": [{"responder_name": LONG_NAME[:100], "code": "9999", **w} for w in WHERE],
    "eta_overdue": [{"responder_name": LONG_NAME[:100], "code": "9999", "minutes_late": 99_999}],
    "ems_overdue": [{"code": "9999", "minutes": 99_999}],
    # end F1
    # F3: naloxone in the bag
    "restock_confirmed": [{"added": a, "usable": u} for a in (1, 500) for u in (0, 1, 9_999)],
    "kits_left_noted": [{"code": "9999", "count": c, "usable": u} for c in (1, 20) for u in (None, 0, 1, 9_999)],
    "stock_low": [{"responder_name": LONG_NAME[:100], "usable": u} for u in (0, 1, 9_999)],
    # end F3
    # F2: field reports by text
    "field_noted": [
        {"code": "9999", "what": w, "minutes": m}
        for w in typing.get_args(FieldNoted.model_fields["what"].annotation)
        for m in (None, 240)
        if m or w != "eta"
    ],
    "reply_not_understood": [
        {"command": c, "part": p, "code": code}
        for c in typing.get_args(ReplyCommand)
        for p in typing.get_args(ReplyPart)
        for code in ("9999", None)
    ],
    "reply_help_field": [{}],
    "reply_help_kit": [{}],
    "field_alert": [
        {"responder_name": LONG_NAME[:100], "code": "9999", "what": w, "caller_asked": a}
        for w in ("cannot_locate", "backup_unfilled")
        for a in (True, False)
    ],
    "caller_confirm_location": [{}],
    # end F2
    # issue 17: referrals, programs, family and caller
    "referral_offer": [{"code": "9999", "link": "https://w" + "x" * 19 + ".org/rf/" + "A" * 64}, {"code": "9999"}],
    "referral_withdrawn": [{"code": "9999"}],
    "referral_noted": [
        {"code": "9999", "answer": a} for a in typing.get_args(ReferralNoted.model_fields["answer"].annotation)
    ],
    "program_reply_help": [{}],
    "availability_noted": [
        {"beds_open": b, "slot": s} for b in (None, 0, 10000) for s in (True, False) if b is not None or s
    ],
    "referral_overdue": [
        {"code": "9999", "declined": 3, "unanswered": 3},
        {"code": "9999", "declined": 0, "unanswered": 3, "repeat": 99},
    ],
    "referral_alarm_answered": [
        {"code": "9999", "reason": r} for r in typing.get_args(ReferralAlarmAnswered.model_fields["reason"].annotation)
    ],
    "referral_no_show": [{"code": "9999"}],
    "family_update": [{"message": m} for m in typing.get_args(FamilyUpdate.model_fields["message"].annotation)],
    "caller_update": [{"update": u} for u in typing.get_args(CallerUpdate.model_fields["update"].annotation)],
    "caring_contact": [{"number": n} for n in range(1, 25)],
    "caring_reply_ack": [{}],
    "caring_reply_alert": [{"code": "9999"}, {"code": "9999", "repeat": 99}],
    "caring_alarm_answered": [{"code": "9999", "reason": r} for r in ("taken_by_you", "taken")],
    "outreach_unreachable": [
        {"task_code": "9999", "incident_code": "9999", "attempts": 20},
        {"task_code": "9999", "attempts": 1},
    ],
    "legacy_v1": [{}],
}

CASES = [(name, params, lang) for name, cases in WORST_CASE.items() for params in cases for lang in LANGUAGES]

# What an SMS must never say (DOMAIN.md): substances, diagnoses, crisis kinds, programme names.
FORBIDDEN = re.compile(
    r"fentanyl|fentanilo|heroin|alcohol|opioid|opioide|opiate|cocaine|cocaina|overdos|sobredosis|withdraw|"
    r"abstinencia|suicid|self.?harm|autolesion|naloxon|narcan|methadon|metadona|buprenorph|suboxone|moud|detox|"
    r"rehab|addict|adiccion|substance|sustancia",
    re.IGNORECASE,
)


def test_every_template_has_worst_case_parameters_here() -> None:
    assert set(WORST_CASE) == set(TEMPLATES)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_has_its_own_wording_in_every_language(template: str, language: str) -> None:
    assert has_wording(template, language)


@pytest.mark.parametrize(("template", "params", "language"), CASES)
def test_every_sms_is_basic_gsm7_and_one_segment_for_worst_case_parameters(
    template: str, params: dict, language: str
) -> None:
    rendered = render(template, params, language, BOOK)

    assert rendered.language == language
    assert all(char in GSM7_BASIC for char in rendered.text), rendered.text
    assert "{" not in rendered.text and "}" not in rendered.text  # no unfilled placeholder
    if template not in VOICE_TEMPLATES:
        assert septets(rendered.text) <= 160, rendered.text
        assert rendered.segments == 1


LONGEST_NAMES = PlaceBook.of(places=["x" * 80, "[{}]~|^€\\" * 8, LONG_PLACE], zones=["z" * 80])


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("place", ["x" * 80, "[{}]~|^€\\" * 8, LONG_PLACE, None])
def test_a_p1_page_is_one_segment_and_keeps_the_reply_commands(language: str, place: str | None) -> None:
    where = {"place": place_ref(place) if place else None, "zone": place_ref("z" * 80)}
    params = {"priority": "P1", "code": "4821", **where, "distance_km": 12345.6, "call_911": True}

    rendered = render("page_offer", params, language, LONGEST_NAMES)

    assert count_segments(rendered.text) == 1
    assert "Y 4821" in rendered.text and "N 4821" in rendered.text and "911" in rendered.text
    assert rendered.text.startswith("P1")


def test_the_page_reads_like_the_domain_example_when_the_gazetteer_knows_the_place() -> None:
    params = {"priority": "P1", "code": "4821", "place": place_ref("5th St & Main"), "distance_km": 0.8}

    assert render("page_offer", params, "en", BOOK).text == (
        "P1 response needed near 5th St & Main (0.8 km). Reply Y 4821 to accept, N 4821 to pass."
    )
    assert render("page_offer", params | {"call_911": True}, "es", BOOK).text == (
        "P1: se necesita respuesta cerca de 5th St & Main (0,8 km). Llame al 911 si nadie lo hizo. "
        "Responda Y 4821 para aceptar, N 4821 para pasar."
    )


def test_a_page_names_the_zone_when_no_place_is_known_and_else_only_the_distance() -> None:
    unknown = place_ref("a place only the sender has heard of")
    zone_only = {"priority": "P1", "code": "4821", "place": unknown, "zone": place_ref("central"), "distance_km": 0.4}

    assert render("page_offer", zone_only, "en", BOOK).text == (
        "P1 response needed in zone central (0.4 km). Reply Y 4821 to accept, N 4821 to pass."
    )
    assert render("page_offer", zone_only, "es", BOOK).text.startswith(
        "P1: se necesita respuesta en la zona central (0,4 km)."
    )
    assert render("page_offer", zone_only, "en").text == (  # a notifier without a gazetteer prints no place
        "P1 response needed (0.4 km). Reply Y 4821 to accept, N 4821 to pass."
    )


def test_the_language_is_chosen_by_the_request_and_falls_back_to_english() -> None:
    english = render("ack_confirmed", {"code": "4821"}, "en")
    spanish = render("ack_confirmed", {"code": "4821"}, "es")
    unknown = render("ack_confirmed", {"code": "4821"}, "fr")

    assert english.text == "Accepted 4821. Thank you - details in the app."
    assert spanish.text.startswith("Aceptado 4821.") and spanish.language == "es"
    assert unknown.text == english.text and unknown.language == "en"


def test_the_accept_confirmation_carries_the_link_to_the_incident_page_when_it_is_given() -> None:
    link = "http://127.0.0.1:8081/r/" + "A" * 40

    assert render("ack_confirmed", {"code": "4821", "link": link}, "en").text == (
        f"Accepted 4821. Thank you - details: {link}"
    )
    assert (
        render("ack_confirmed", {"code": "4821", "link": link}, "es").text
        == f"Aceptado 4821. Gracias - detalles: {link}"
    )
    for not_a_link in ("http://127.0.0.1:8081/r/short", "http://host/r/" + "A" * 40 + "?x=1", "javascript:alert(1)"):
        with pytest.raises(TemplateError):
            render("ack_confirmed", {"code": "4821", "link": not_a_link}, "en")


# --- nothing a reporter typed can be printed ----------------------------------------------------------------

REPORTED_ADDRESS = "Jorvik Quellbrand 34yo OD fent + xylazine HIV+ bipolar II pregnant, behind the laundromat"
ADVERSARIAL = [
    REPORTED_ADDRESS,
    "pregnant",
    "PREGNANT",
    "pregnent",  # misspelt
    "preggers",
    "p r e g n a n t",  # spaced letters
    "p-r-e-g-n-a-n-t",
    "pr3gn4nt",  # digits for letters
    "0verd0se",
    "h1v p0s1t1ve",
    "o.v.e.r.d.o.s.e",
    "fentanil",  # misspelt
    "fetty",  # street names
    "tranq",
    "H.I.V.",
    "VIH positivo",  # other languages
    "embarazada",
    "esquizofrenia",
    "schwanger",
    "enceinte",
    "беременна",
    "妊娠中",
    "рrеgnаnt",  # Cyrillic letters that look Latin
    "ＰＲＥＧＮＡＮＴ",  # full-width
    "Jorvik Quellbrand",  # a generated name
    "JQ",
    "4821 pregnant",  # a valid value with words after it
    "P1 pregnant",
    "DL-12 pregnant",
    "central pregnant",
    place_ref("Union Station") + " pregnant",
    place_ref("Union Station").upper(),
    "backup pregnant",
    "\npregnant",
    "",
]

F1_ABOUT_RESPONDER = ("checkin_missed_alert", "checkin_call_911", "duress_alert", "pair_alert", "eta_overdue")

PRINTED_AS_GIVEN = {
    ("responder_unreachable", "responder_name"): "a staff member's name, from the roster",
    ("system_alert", "service"): "the consumer that gave up",
    **{(t, "responder_name"): "a staff member's name, from the roster" for t in F1_ABOUT_RESPONDER},  # F1
    ("stock_low", "responder_name"): "a staff member's name, from the roster",  # F3
    ("field_alert", "responder_name"): "a staff member's name, from the roster",  # F2
}
"""Parameters printed as the sender gave them: a name from the roster (entered by an administrator) and the
name of a service's consumer (set by the system). Nothing else, and neither comes from a report."""

FIELDS = [
    (template, field)
    for template, model in sorted(TEMPLATES.items())
    for field in model.model_fields
    if (template, field) not in PRINTED_AS_GIVEN
]


def words(text: str) -> set[str]:
    """Words and numbers of ``text`` as a reader would see them: case, accents and look-alike forms folded."""
    folded = to_gsm7(text).casefold()
    return {w for w in re.findall(r"[^\W_]+", folded) if len(w) > 1}


TEMPLATE_WORDS = {w for name, params, lang in CASES for w in words(render(name, params, lang, BOOK).text)}
"""Every word the templates themselves use (for the worst-case parameters above) in either language."""


def with_value(template: str, field: str, value: str) -> dict[str, Any]:
    """The template's first worst-case parameters, with ``value`` in ``field`` (in a list, for a list field)."""
    params = dict(WORST_CASE[template][0])
    annotation = TEMPLATES[template].model_fields[field].annotation
    params[field] = [value] if typing.get_origin(annotation) is list else value
    return params


def assert_not_printed(template: str, field: str, value: str, language: str) -> None:
    """``value`` in ``field`` is refused, or none of its words is printed (digits alone are codes, not words)."""
    try:
        text = render(template, with_value(template, field, value), language, BOOK).text
    except TemplateError:
        return  # refused: the best outcome
    leaked = {w for w in (words(value) - TEMPLATE_WORDS) & words(text) if not w.isdigit()}
    assert not leaked, (template, field, value, text)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("template", "field"), FIELDS)
def test_no_parameter_of_any_template_prints_text_it_was_given(template: str, field: str, language: str) -> None:
    for value in ADVERSARIAL:
        assert_not_printed(template, field, value, language)


@pytest.mark.parametrize(("template", "field"), FIELDS)
@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.from_regex(r"[A-Za-z0-9+.\- ]{2,40}", fullmatch=True), language=st.sampled_from(LANGUAGES))
def test_no_parameter_of_any_template_prints_generated_text(
    template: str, field: str, value: str, language: str
) -> None:
    assert_not_printed(template, field, value, language)


def test_only_a_roster_name_and_a_consumer_name_are_printed_as_given_and_their_docs_say_so() -> None:
    for (template, field), provenance in PRINTED_AS_GIVEN.items():
        assert provenance in (TEMPLATES[template].model_fields[field].description or ""), (template, field)
    text = render("responder_unreachable", {"responder_name": "Generated Staff", "reason": "opted_out"}, "en").text
    assert text.startswith("Generated Staff cannot be reached")


@pytest.mark.parametrize(
    ("template", "params"),
    [
        ("page_offer", {"priority": "P1", "code": "John Smith"}),
        ("page_offer", {"priority": "overdose", "code": "4821"}),
        ("page_offer", {"priority": "P1", "code": "4821", "client": "John Smith"}),
        ("page_offer", {"priority": "P1", "code": "4821", "area": "5th St & Main"}),  # the retired free text
        ("page_offer", {"priority": "P1", "code": "4821", "place": "Union Station"}),  # a name, not a reference
        ("page_offer", {"priority": "P1", "code": "4821", "zone": "central"}),
        ("supervisor_alert", {"priority": "P1", "code": "4821", "reason": "fentanyl overdose"}),
        ("supervisor_alert", {"priority": "P1", "code": "4821", "reason": "escalated", "area": "Main St"}),
        ("open_pages_bundle", {"codes": ["heroin"]}),
        ("task_due", {"task_code": "4821", "due_in_hours": 1, "note": "withdrawal follow-up"}),
        ("already_taken", {"code": "4821", "outcome": "suicide risk"}),
        ("no_such_template", {}),
    ],
)
def test_client_details_cannot_be_passed_as_parameters(template: str, params: dict) -> None:
    with pytest.raises(TemplateError):
        render(template, params, "en", BOOK)


def test_a_request_made_before_v3_is_read_without_its_free_text_area() -> None:
    old = {"priority": "P1", "code": "4821", "area": REPORTED_ADDRESS, "distance_km": 0.4}

    params = without_retired_free_text("page_offer", old)

    assert params == {"priority": "P1", "code": "4821", "distance_km": 0.4}
    assert render("page_offer", params, "en", BOOK).text == (
        "P1 response needed (0.4 km). Reply Y 4821 to accept, N 4821 to pass."
    )
    assert without_retired_free_text("task_due", {"task_code": "1", "area": "x"}) == {"task_code": "1", "area": "x"}


def test_a_v2_page_request_on_the_stream_is_read_as_v3_without_its_area() -> None:
    request = NotificationRequestedData(
        notification_id=uuid4(),
        incident_id=uuid4(),
        page_id=uuid4(),
        to="+15550190001",
        template="page_offer",
        params={"priority": "P1", "code": "4821", "distance_km": 0.4},
        priority="P1",
    )
    event = new_event(NotificationRequested, request, event_id=uuid4(), occurred_at=T0, producer="tests")
    published = json.loads(event.to_json())
    published["schema_version"] = 2
    published["data"]["params"]["area"] = REPORTED_ADDRESS

    event = decode_event(json.dumps(published).encode())

    assert event.schema_version == 3 and event.data.params == {"priority": "P1", "code": "4821", "distance_km": 0.4}


def test_the_place_book_leaves_out_names_that_say_what_a_page_is_about() -> None:
    book = PlaceBook.of(
        places=["Sunrise Methadone Clinic", "Harbor Recovery House", "Union Station", "Calle Álamo 5", "x" * 81],
        zones=["central", "Detox Annex"],
    )

    assert dict(book.places) == {
        place_ref("Union Station"): "Union Station",
        place_ref("Calle Álamo 5"): "Calle Alamo 5",
    }
    assert dict(book.zones) == {place_ref("central"): "central"}
    assert book.left_out == 4
    assert book.place(place_ref("Sunrise Methadone Clinic")) is None and book.place(None) is None
    assert place_ref("  Union   STATION ") == place_ref("Union Station")  # spacing and case aside


@pytest.mark.parametrize("template", ["nobody_accepted", "nobody_accepted_call"])
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["overdose", "withdrawal", "self_harm_risk"])
def test_nobody_accepted_names_the_response_never_the_condition(template: str, language: str, kind: str) -> None:
    params = {"priority": "P1", "code": "4821", "kind": kind, "minutes_since_report": 7, "repeat": 2}
    text = render(template, params, language).text
    assert not FORBIDDEN.search(text), text
    assert ("4, 8, 2, 1" if template in VOICE_TEMPLATES else "P1 4821") in text
    assert "7 min" in text


def test_a_task_text_names_its_incident_when_the_request_does() -> None:
    assert render("task_due", {"task_code": "7400", "due_in_hours": 3, "incident_code": "4821"}).text == (
        "Follow-up task 7400 for incident 4821 is due in 3 h. Details in the app."
    )
    assert render("task_overdue", {"task_code": "7400", "due_in_hours": 0, "incident_code": "4821"}, "es").text == (
        "La tarea de seguimiento 7400 del incidente 4821 esta vencida. Detalles en la app."
    )
    assert render("task_due", {"task_code": "7400", "due_in_hours": 0}).text == (  # requested before it was named
        "Follow-up task 7400 is due now. Details in the app."
    )


def test_voice_page_spells_the_code_digit_by_digit() -> None:
    for language in LANGUAGES:
        text = render("voice_page", {"priority": "P1", "code": "4821"}, language).text
        assert "4, 8, 2, 1" in text
        assert "4821" not in text
        assert "Y" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Calle Álamo 5", "Calle Alamo 5"),
        ("Peña & Müller", "Peña & Müller"),
        ("“Quoted” – [x]", '"Quoted" - (x)'),
        ("€5 ~ a|b", "EUR5 - a/b"),
        ("emoji 😀 here", "emoji here"),
        ("line\nbreak\ttab", "line break tab"),
    ],
)
def test_to_gsm7_transliterates_into_the_basic_set(text: str, expected: str) -> None:
    converted = to_gsm7(text)
    assert converted == expected
    assert all(char in GSM7_BASIC for char in converted)


@pytest.mark.parametrize(
    ("text", "segments"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3), ("[" * 80, 1), ("[" * 81, 2), ("á" * 70, 1)],
)
def test_segments_are_counted_like_the_provider(text: str, segments: int) -> None:
    assert count_segments(text) == segments
    assert is_gsm7(text) == ("á" not in text)
