"""Every outgoing text comes from a template: PHI-free, GSM-7, one segment, in English and Spanish."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from services.contract.templates import TEMPLATES
from services.notifier.domain.gsm import GSM7_BASIC, count_segments, is_gsm7, septets, to_gsm7
from services.notifier.domain.templates import (
    LANGUAGES,
    VOICE_TEMPLATES,
    TemplateError,
    has_wording,
    render,
    scrub,
)

LONG_AREA = "Calle Ñandú Álvarez [Edificio {B}] ~ 12ª — “Entrada” €5 | ½ km 北 😀 " * 3
LONG_NAME = "Dr. Zoë Ångström-Łukasiewicz O’Brien [on call] " * 3
ALL_CODES = [f"{n:04d}" for n in range(9980, 10000)]  # 20 codes, the most a list may hold

WORST_CASE: dict[str, list[dict[str, Any]]] = {
    "page_offer": [
        {"priority": p, "code": "9999", "area": LONG_AREA[:80], "distance_km": d, "call_911": c}
        for p, d, c in itertools.product(("P1", "P2", "P3"), (None, 0.04, 9.96, 999.4, 123456.0), (True, False))
    ],
    "page_reminder": [{"priority": p, "code": "9999"} for p in ("P1", "P2", "P3")],
    "voice_page": [{"priority": "P1", "code": "4821"}],
    "page_covered": [{"code": "9999"}],
    "page_withdrawn": [{"code": "9999"}],
    "ack_confirmed": [{"code": "9999"}],
    "already_taken": [{"code": "9999", "outcome": o} for o in ("backup", "stand_down")],
    "decline_confirmed": [{"code": "9999"}],
    "en_route_confirmed": [{"code": "9999"}],
    "arrived_confirmed": [{"code": "9999"}],
    "done_confirmed": [{"code": "9999"}],
    "status_summary": [{"codes": []}, {"codes": ["1234"]}, {"codes": ALL_CODES}],
    "reply_help": [{}],
    "reply_unknown": [{"codes": []}, {"codes": ALL_CODES}],
    "reply_ambiguous": [{"codes": []}, {"codes": ALL_CODES[:2]}, {"codes": ALL_CODES}],
    "location_noted": [{}],
    "location_unknown": [{}],
    "supervisor_alert": [
        {"priority": "P1", "code": "9999", "reason": r, "area": a}
        for r in (
            "nobody_on_call",
            "nobody_qualified",
            "all_busy",
            "ladder_exhausted",
            "outside_service_area",
            "escalated",
        )
        for a in (None, LONG_AREA[:80])
    ],
    "responder_unreachable": [{"responder_name": LONG_NAME[:100], "reason": r} for r in ("opted_out", "undeliverable")],
    "open_pages_bundle": [{"codes": ["1234"]}, {"codes": ALL_CODES[:3]}, {"codes": ALL_CODES}],
    "task_due": [{"task_code": "9999", "due_in_hours": h} for h in (0, 1, 10**9)],
    "task_overdue": [{"task_code": "9999", "due_in_hours": 10**9}],
    "system_alert": [{"reference": "DL-999999999999", "service": "intake_gateway_incident_state"}],
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
ADVERSARIAL_TEXT = (
    "Fentanyl OVERDOSE house, Heroin Alley & Suicide Ln, self-harm unit, Withdrawal/Detox clinic, "
    "Methadone MOUD programme, alcohol rehab, sobredosis de heroina, opioide"
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
    rendered = render(template, params, language)

    assert rendered.language == language
    assert all(char in GSM7_BASIC for char in rendered.text), rendered.text
    assert "{" not in rendered.text and "}" not in rendered.text  # no unfilled placeholder
    if template not in VOICE_TEMPLATES:
        assert septets(rendered.text) <= 160, rendered.text
        assert rendered.segments == 1


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("area", [LONG_AREA[:80], "x" * 80, "[{}]~|^€\\" * 8, "5th St & Main"])
def test_a_p1_page_is_one_segment_and_keeps_the_reply_commands(language: str, area: str) -> None:
    params = {"priority": "P1", "code": "4821", "area": area, "distance_km": 12345.6, "call_911": True}

    rendered = render("page_offer", params, language)

    assert count_segments(rendered.text) == 1
    assert "Y 4821" in rendered.text and "N 4821" in rendered.text and "911" in rendered.text
    assert rendered.text.startswith("P1")


def test_the_page_reads_like_the_domain_example() -> None:
    params = {"priority": "P1", "code": "4821", "area": "5th St & Main", "distance_km": 0.8}

    assert render("page_offer", params, "en").text == (
        "P1 response needed near 5th St & Main (0.8 km). Reply Y 4821 to accept, N 4821 to pass."
    )
    assert render("page_offer", params | {"call_911": True}, "es").text == (
        "P1: se necesita respuesta cerca de 5th St & Main (0,8 km). Llame al 911 si nadie lo hizo. "
        "Responda Y 4821 para aceptar, N 4821 para pasar."
    )


def test_the_language_is_chosen_by_the_request_and_falls_back_to_english() -> None:
    english = render("ack_confirmed", {"code": "4821"}, "en")
    spanish = render("ack_confirmed", {"code": "4821"}, "es")
    unknown = render("ack_confirmed", {"code": "4821"}, "fr")

    assert english.text == "Accepted 4821. Thank you - details in the app."
    assert spanish.text.startswith("Aceptado 4821.") and spanish.language == "es"
    assert unknown.text == english.text and unknown.language == "en"


@pytest.mark.parametrize(("template", "params", "language"), CASES)
def test_adversarial_free_text_never_brings_clinical_words_in(template: str, params: dict, language: str) -> None:
    adversarial = dict(params)
    for field in ("area", "responder_name"):
        if field in adversarial:
            adversarial[field] = ADVERSARIAL_TEXT[: 80 if field == "area" else 100]

    text = render(template, adversarial, language).text

    assert not FORBIDDEN.search(text), text


@pytest.mark.parametrize(
    ("template", "params"),
    [
        ("page_offer", {"priority": "P1", "code": "John Smith", "area": "Main St"}),
        ("page_offer", {"priority": "overdose", "code": "4821", "area": "Main St"}),
        ("page_offer", {"priority": "P1", "code": "4821", "area": "Main St", "client": "John Smith"}),
        ("supervisor_alert", {"priority": "P1", "code": "4821", "reason": "fentanyl overdose"}),
        ("open_pages_bundle", {"codes": ["heroin"]}),
        ("task_due", {"task_code": "4821", "due_in_hours": 1, "note": "withdrawal follow-up"}),
        ("already_taken", {"code": "4821", "outcome": "suicide risk"}),
        ("no_such_template", {}),
    ],
)
def test_client_details_cannot_be_passed_as_parameters(template: str, params: dict) -> None:
    with pytest.raises(TemplateError):
        render(template, params, "en")


def _is_free_text(schema: dict) -> bool:
    """A string field with no pattern or fixed set of values (directly or inside anyOf/items)."""
    options = schema.get("anyOf", [schema])
    for option in options:
        if option.get("type") == "array":
            if _is_free_text(option.get("items", {})):
                return True
        elif option.get("type") == "string" and not ({"pattern", "enum", "const"} & option.keys()):
            return True
    return False


def test_no_template_has_a_free_text_parameter_except_an_area_or_a_staff_name() -> None:
    """The free-text parameters are the place to go and a staff member's name, and their docs say so."""
    free_text = {}
    for name, model in TEMPLATES.items():
        schema = model.model_json_schema()
        definitions = schema.get("$defs", {})
        for field, field_schema in schema.get("properties", {}).items():
            resolved = definitions.get(field_schema.get("$ref", "").split("/")[-1], field_schema)
            if _is_free_text(resolved):
                free_text[(name, field)] = field_schema.get("description", "")
    assert {field for _, field in free_text} == {"area", "responder_name"}
    for (name, field), description in free_text.items():
        expected = "general area or response address" if field == "area" else "staff member's name"
        assert expected in description, (name, field)


def test_voice_page_spells_the_code_digit_by_digit() -> None:
    for language in LANGUAGES:
        text = render("voice_page", {"priority": "P1", "code": "4821"}, language).text
        assert "4, 8, 2, 1" in text
        assert "4821" not in text
        assert "Y" in text


def test_scrub_keeps_addresses_and_removes_clinical_words() -> None:
    assert scrub("Methadone Clinic, 12 Main St") == "Clinic, 12 Main St"
    assert scrub("5th St & Main") == "5th St & Main"
    assert scrub("overdose") == "-"


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
