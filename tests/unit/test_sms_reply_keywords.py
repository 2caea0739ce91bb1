"""Every reply keyword, in each language a responder may be set to, is read with or without accents, in any case;
HELP names them all in the responder's language, and STATUS tells open pages apart from accepted incidents."""

from __future__ import annotations

from typing import get_args

import pytest

from services.contract.templates import Language
from services.dispatcher.domain.replies import KEYWORDS, LOCATION_WORDS, Reply, parse_reply, plain
from services.notifier.domain.templates import render

WORDS = [
    (command, language, word)
    for command, by_language in KEYWORDS.items()
    for language, words in by_language.items()
    for word in words
]


def test_every_language_a_responder_may_be_set_to_has_every_keyword() -> None:
    assert set(get_args(Language)) == {"en", "es"}
    for command, by_language in KEYWORDS.items():
        assert set(by_language) == set(get_args(Language)), command
    assert set(LOCATION_WORDS) == set(get_args(Language))


@pytest.mark.parametrize(("command", "language", "word"), WORDS)
def test_a_keyword_is_read_with_or_without_accents_in_any_case_with_or_without_a_code(
    command: str, language: str, word: str
) -> None:
    for written in {word, word.lower(), word.title(), plain(word), plain(word).lower(), f"  {word.lower()}. "}:
        assert parse_reply(written) == Reply(command), written
        if word != "?":
            assert parse_reply(f"{written} 7047") == Reply(command, "7047"), written


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        ("Si 7047", Reply("accept", "7047")),
        ("Sí 7047", Reply("accept", "7047")),
        ("SI", Reply("accept")),
        ("sí.", Reply("accept")),
        ("AYUDA", Reply("help")),
        ("¿Ayuda?", Reply("help")),
        ("ESTADO", Reply("status")),
        ("EN CAMINO", Reply("en_route")),
        ("en camino 7047", Reply("en_route", "7047")),
        ("Estoy en camino", Reply("en_route")),
        ("LLEGUE", Reply("arrived")),
        ("LLEGUÉ 7047", Reply("arrived", "7047")),
        ("llegué", Reply("arrived")),
        ("TERMINADO", Reply("done")),
        ("Terminé 7047", Reply("done", "7047")),
        ("No 7047", Reply("decline", "7047")),
        ("Estoy en Union Station", Reply("at", place="Union Station")),
        ("estoy  en   5th and Main", Reply("at", place="5th and Main")),
        ("at 5th and Main", Reply("at", place="5th and Main")),
        ("si claro que si", Reply("unknown")),
        ("Si 70", Reply("unknown")),
    ],
)
def test_what_a_spanish_speaking_responder_texts_is_understood(body: str, reply: Reply) -> None:
    assert parse_reply(body) == reply


@pytest.mark.parametrize("language", ["en", "es"])
def test_help_names_every_keyword_in_the_responders_language_in_one_segment(language: str) -> None:
    rendered = render("reply_help", {}, language)
    assert rendered.language == language and rendered.segments == 1
    text = plain(rendered.text)
    for command, by_language in KEYWORDS.items():
        if command in ("accept", "decline", "help"):
            continue  # accept and pass are named together below; HELP is what they just texted
        assert any(plain(word) in text for word in by_language[language]), command
    assert {"en": "Y/N <CODE>", "es": "SI/NO <CODIGO>"}[language] in text
    assert f"{LOCATION_WORDS[language]} <" in text and "STOP/START" in text


def test_status_lists_accepted_incidents_apart_with_what_to_reply_next() -> None:
    both = render("status_summary", {"codes": ["2222"], "accepted": ["4821"]}, "en").text
    assert both == (
        "Open pages: 2222 (reply Y or N and the code). Accepted: 4821 (reply OTW, ARRIVED or DONE and the code)."
    )
    accepted = render("status_summary", {"codes": [], "accepted": ["4821"]}, "en").text
    assert "Reply Y" not in accepted and "4821" in accepted and "OTW" in accepted and "DONE" in accepted
    spanish = render("status_summary", {"codes": [], "accepted": ["4821"]}, "es").text
    assert "4821" in spanish and "EN CAMINO" in spanish and "TERMINADO" in spanish
    assert render("status_summary", {"codes": []}, "es").text == "No tiene avisos abiertos ni incidentes en curso."


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_reply_not_understood_points_to_help_in_the_responders_language(language: str) -> None:
    text = render("reply_unknown", {"codes": ["4821"]}, language).text
    assert plain(KEYWORDS["help"][language][0]) in text and "4821" in text
