"""The reply grammar, in Spanish: every command a responder may text, accents, case and spacing optional, and what is
refused. Every keyword is also read from any responder, whatever their language (the English forms:
test_reply_grammar.py); the answers are in the responder's language.
"""

from __future__ import annotations

from datetime import date

import pytest

from services.dispatcher.domain.replies import FIELD_KEYWORDS, PARTS, Reply, parse_reply, plain
from services.notifier.domain.templates import render

ES = [
    ("SÍ 4821 15", Reply("accept", "4821", minutes=15)),
    ("si 4821 en 15 minutos", Reply("accept", "4821", minutes=15)),
    ("Acepto 4821 30 min", Reply("accept", "4821", minutes=30)),
    ("SI 10 MIN", Reply("accept", minutes=10)),
    ("NO 4821", Reply("decline", "4821")),
    ("Paso", Reply("decline")),
    ("EN CAMINO 4821", Reply("en_route", "4821")),
    ("Llegué 4821", Reply("arrived", "4821")),
    ("TERMINADO", Reply("done")),
    ("ESTADO", Reply("status")),
    ("AYUDA", Reply("help")),
    ("ayuda campo", Reply("help", topic="field")),
    ("Ayuda kit", Reply("help", topic="kit")),
    ("¿Ayuda naloxona?", Reply("help", topic="kit")),
    ("BIEN 4821", Reply("ok", "4821")),
    ("Estoy bien", Reply("ok")),
    ("LIBRE 4821", Reply("clear", "4821")),
    ("NALOXONA 4821", Reply("naloxone", "4821")),
    (
        "Naloxona 4821 0,4 mg IM mejoró",
        Reply("naloxone", "4821", product="injection_0_4mg", route="intramuscular", response="improved"),
    ),
    (
        "naloxona 4821 4mg nariz igual",
        Reply("naloxone", "4821", product="nasal_4mg", route="intranasal", response="unchanged"),
    ),
    (
        "NALOXONA 4821 inyección intravenosa peor",
        Reply("naloxone", "4821", product="injection_0_4mg", route="intravenous", response="worse"),
    ),
    ("AMBULANCIA 4821", Reply("ems_arrived", "4821")),
    ("Llegó ambulancia", Reply("ems_arrived")),
    ("NO ENCUENTRO 4821", Reply("nofind", "4821")),
    ("No lo encuentro", Reply("nofind")),
    ("noencuentro 4821", Reply("nofind", "4821")),
    ("REFUERZO 4821", Reply("backup", "4821")),
    ("Apoyo", Reply("backup")),
    (
        "SIGNOS 4821 FR 14 SAT 97% FC 110 AVDN D",
        Reply("vitals", "4821", vitals={"respiratory_rate": 14, "spo2": 97, "pulse": 110, "responsiveness": "pain"}),
    ),
    ("signos 4821 pulso 60 avdn n", Reply("vitals", "4821", vitals={"pulse": 60, "responsiveness": "unresponsive"})),
    ("signos fr12", Reply("vitals", vitals={"respiratory_rate": 12})),
    ("LLAMÉ 911 4821", Reply("called_911", "4821")),
    ("llame al 911", Reply("called_911")),
    ("REPONER 3", Reply("restock", count=3)),
    ("Reponer 2 lote ab12 vence 2027-06", Reply("restock", count=2, lot="AB12", expires_on=date(2027, 6, 30))),
    ("repuse 1 cad 05/2027", Reply("restock", count=1, expires_on=date(2027, 5, 31))),
    ("DEJÉ 4821 2", Reply("left_behind", "4821", count=2)),
    ("deje kit 4821 1 lote X1", Reply("left_behind", "4821", count=1, lot="X1")),
    ("Estoy en Union Station", Reply("at", place="Union Station")),
    ("Estoy en el lugar de siempre", Reply("at", place="el lugar de siempre")),
]

REFUSED_ES = [
    ("SI 4821 0", Reply("accept", "4821", problem="minutes")),
    ("SI 4821 pronto", Reply("accept", "4821", problem="minutes")),
    ("BIEN gracias", Reply("ok", problem="code")),
    ("NALOXONA 4821 8 mg", Reply("naloxone", "4821", problem="dose")),
    ("NALOXONA 4821 4mg IV", Reply("naloxone", "4821", problem="route")),
    ("NALOXONA 4821 por la boca", Reply("naloxone", "4821", problem="route")),
    ("SIGNOS 4821", Reply("vitals", "4821", problem="vitals")),
    ("SIGNOS 4821 FR 90", Reply("vitals", "4821", problem="respiratory_rate")),
    ("SIGNOS 4821 SAT 40", Reply("vitals", "4821", problem="spo2")),
    ("SIGNOS 4821 FC 10", Reply("vitals", "4821", problem="pulse")),
    ("SIGNOS 4821 AVDN Z", Reply("vitals", "4821", problem="responsiveness")),
    ("SIGNOS 4821 TA 120", Reply("vitals", "4821", problem="vitals")),
    ("REPONER", Reply("restock", problem="count")),
    ("REPONER 2 VENCE junio", Reply("restock", problem="expiry")),
    ("REPONER 2 LOTE", Reply("restock", problem="lot")),
    ("DEJE 4821", Reply("left_behind", "4821", problem="count")),
    ("REFUERZO ya", Reply("backup", problem="code")),
    ("AMBULANCIA 4821 ¿?", Reply("ems_arrived", "4821", problem="extra")),
]


@pytest.mark.parametrize(("body", "reply"), ES)
def test_every_spanish_command_is_read(body: str, reply: Reply) -> None:
    assert parse_reply(body) == reply


@pytest.mark.parametrize(("body", "reply"), REFUSED_ES)
def test_a_spanish_part_not_understood_is_named(body: str, reply: Reply) -> None:
    read = parse_reply(body)
    assert read == reply and read.problem in PARTS


@pytest.mark.parametrize(
    ("command", "word"),
    [
        (command, word)
        for command, by_language in FIELD_KEYWORDS.items()
        for words in by_language.values()
        for word in words
    ],
)
def test_every_field_keyword_is_read_with_or_without_accents_in_any_case(command: str, word: str) -> None:
    needs_more = command in ("vitals", "restock", "left_behind")
    for written in {word, word.lower(), word.title(), plain(word), f"  {plain(word).lower()}. "}:
        read = parse_reply(f"{written} 4821")
        assert read.command == command, written
        if not needs_more:
            assert read == Reply(command, "4821"), written


def test_no_encuentro_is_not_a_decline_and_estoy_en_camino_is_not_a_place() -> None:
    assert parse_reply("NO ENCUENTRO 4821").command == "nofind"
    assert parse_reply("NO 4821").command == "decline"
    assert parse_reply("estoy en camino").command == "en_route"
    assert parse_reply("estoy bien 4821") == Reply("ok", "4821")


@pytest.mark.parametrize(
    ("params", "text"),
    [
        (
            {"command": "naloxone", "part": "dose", "code": "4821"},
            "No entendimos la dosis (4MG o 0.4MG). Ejemplo: NALOXONA 4821 4MG IN. AYUDA CAMPO para ver todo.",
        ),
        (
            {"command": "restock", "part": "expiry", "code": None},
            "No entendimos el vencimiento (VENCE 2027-06). "
            "Ejemplo: REPONER 2 LOTE AB12 VENCE 2027-06. AYUDA KIT para ver todo.",
        ),
        (
            {"command": "accept", "part": "minutes", "code": None},
            "No entendimos los minutos (1-240). Ejemplo: SI <codigo> 15. AYUDA para ver todo.",
        ),
    ],
)
def test_the_spanish_error_names_the_part_with_an_example(params: dict, text: str) -> None:
    assert render("reply_not_understood", params, "es").text == text
