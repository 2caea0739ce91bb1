"""The reply grammar, in English: every command a responder may text, what each carries, and what is refused (a part
not understood is named by a fixed name, never by the text typed). The Spanish forms: test_reply_grammar_es.py.

The grammar's names are the contract's: the commands and parts a ``reply_not_understood`` text may name, and the
vitals' ranges the ``field.vitals_recorded`` event accepts.
"""

from __future__ import annotations

from datetime import date
from typing import get_args

import pytest
from pydantic import ValidationError

from services.contract.field import VitalsRecordedData
from services.contract.templates import ReplyCommand, ReplyPart
from services.dispatcher.domain.replies import (
    FIELD_KEYWORDS,
    KEYWORDS,
    PARTS,
    VITALS,
    Reply,
    parse_reply,
    plain,
)
from services.notifier.domain.templates import render

EN = [
    # accept, with and without an ETA
    ("Y 4821", Reply("accept", "4821")),
    ("Y 4821 12", Reply("accept", "4821", minutes=12)),
    ("yes 4821 12 min", Reply("accept", "4821", minutes=12)),
    ("Y 4821 ETA 45 minutes", Reply("accept", "4821", minutes=45)),
    ("y 4821 in 5m", Reply("accept", "4821", minutes=5)),
    ("Y 20 MIN", Reply("accept", minutes=20)),
    ("Y 4821 240", Reply("accept", "4821", minutes=240)),
    # the classic replies
    ("N 4821", Reply("decline", "4821")),
    ("OTW 4821", Reply("en_route", "4821")),
    ("ARRIVED", Reply("arrived")),
    ("DONE 4821", Reply("done", "4821")),
    ("STATUS", Reply("status")),
    ("HELP", Reply("help")),
    ("help field", Reply("help", topic="field")),
    ("HELP KIT", Reply("help", topic="kit")),
    # check-ins
    ("OK 4821", Reply("ok", "4821")),
    ("ok", Reply("ok")),
    ("SAFE 4821", Reply("ok", "4821")),
    ("CLEAR 4821", Reply("clear", "4821")),
    # naloxone: dose, route and response in any order, each optional
    ("NARCAN 4821", Reply("naloxone", "4821")),
    ("Naloxone", Reply("naloxone")),
    ("NARCAN 4821 4MG", Reply("naloxone", "4821", product="nasal_4mg")),
    ("narcan 4821 4 mg nasal", Reply("naloxone", "4821", product="nasal_4mg", route="intranasal")),
    ("NARCAN 4821 IN", Reply("naloxone", "4821", route="intranasal")),
    ("NARCAN 4821 0.4MG IM", Reply("naloxone", "4821", product="injection_0_4mg", route="intramuscular")),
    ("NARCAN 4821 IV .4 mg", Reply("naloxone", "4821", product="injection_0_4mg", route="intravenous")),
    ("NALOXONE 4821 injection", Reply("naloxone", "4821", product="injection_0_4mg")),
    (
        "NARCAN 4821 4MG IN BETTER",
        Reply("naloxone", "4821", product="nasal_4mg", route="intranasal", response="improved"),
    ),
    ("NARCAN 4821 same", Reply("naloxone", "4821", response="unchanged")),
    ("NARCAN 4821 WORSE", Reply("naloxone", "4821", response="worse")),
    # EMS, 911, cannot find, backup
    ("EMS 4821", Reply("ems_arrived", "4821")),
    ("EMS HERE", Reply("ems_arrived")),
    ("EMS 4821 arrived", Reply("ems_arrived", "4821")),
    ("EMS 4821 Denver Health", Reply("ems_arrived", "4821", agency="DENVER HEALTH")),
    ("911 4821", Reply("called_911", "4821")),
    ("Called 911", Reply("called_911")),
    ("NOFIND 4821", Reply("nofind", "4821")),
    ("no find", Reply("nofind")),
    ("can't find 4821", Reply("nofind", "4821")),
    ("BACKUP 4821", Reply("backup", "4821")),
    # vitals: any subset, labels glued or not, % allowed
    (
        "VITALS 4821 RR 12 SPO2 94 HR 88 AVPU V",
        Reply("vitals", "4821", vitals={"respiratory_rate": 12, "spo2": 94, "pulse": 88, "responsiveness": "voice"}),
    ),
    (
        "vitals 4821 rr12 spo2 94% hr88",
        Reply("vitals", "4821", vitals={"respiratory_rate": 12, "spo2": 94, "pulse": 88}),
    ),
    ("VITALS SPO2 91", Reply("vitals", vitals={"spo2": 91})),
    ("VITALS 4821 AVPU unresponsive", Reply("vitals", "4821", vitals={"responsiveness": "unresponsive"})),
    ("VITALS 4821 pulse 40 rr 6", Reply("vitals", "4821", vitals={"pulse": 40, "respiratory_rate": 6})),
    # naloxone stock
    ("RESTOCK 3", Reply("restock", count=3)),
    ("restock 2 lot AB-12", Reply("restock", count=2, lot="AB-12")),
    ("RESTOCK 2 LOT X9 EXP 2027-06", Reply("restock", count=2, lot="X9", expires_on=date(2027, 6, 30))),
    ("RESTOCK 1 EXP 2028-02", Reply("restock", count=1, expires_on=date(2028, 2, 29))),
    ("RESTOCK 1 exp 2027-06-15", Reply("restock", count=1, expires_on=date(2027, 6, 15))),
    ("RESTOCK 1 EXP 06/2027", Reply("restock", count=1, expires_on=date(2027, 6, 30))),
    ("KIT 4821 2", Reply("left_behind", "4821", count=2)),
    ("KIT 4821 1 LOT AB12", Reply("left_behind", "4821", count=1, lot="AB12")),
    ("kits 2", Reply("left_behind", count=2)),
]

REFUSED_EN = [
    # the command word was read, a part was not: that part's fixed name, nothing else
    ("Y 4821 0", Reply("accept", "4821", problem="minutes")),
    ("Y 4821 241", Reply("accept", "4821", problem="minutes")),
    ("Y 4821 soon", Reply("accept", "4821", problem="minutes")),
    ("Y 4821 12 13", Reply("accept", "4821", problem="minutes")),
    ("N 4821 busy", Reply("decline", "4821", problem="extra")),
    ("DONE 4821 all good", Reply("done", "4821", problem="extra")),
    ("OK thanks", Reply("ok", problem="code")),
    ("OK 4821 thanks", Reply("ok", "4821", problem="extra")),
    ("CLEAR 482", Reply("clear", problem="code")),
    ("NARCAN 4821 8MG", Reply("naloxone", "4821", problem="dose")),
    ("NARCAN 4821 4MG 0.4MG", Reply("naloxone", "4821", problem="dose")),
    ("NARCAN 4821 4MG IM", Reply("naloxone", "4821", problem="route")),
    ("NARCAN 4821 up the nose", Reply("naloxone", "4821", problem="route")),
    ("NARCAN 4821 IN IM", Reply("naloxone", "4821", problem="route")),
    ("NARCAN 4821 BETTER WORSE", Reply("naloxone", "4821", problem="response")),
    ("911 4821 now please!", Reply("called_911", "4821", problem="extra")),
    ("NOFIND 4821 gone", Reply("nofind", "4821", problem="extra")),
    ("BACKUP asap", Reply("backup", problem="code")),
    ("EMS 4821 <Main St>", Reply("ems_arrived", "4821", problem="extra")),
    ("VITALS 4821", Reply("vitals", "4821", problem="vitals")),
    ("VITALS 4821 BP 120/80", Reply("vitals", "4821", problem="vitals")),
    ("VITALS 4821 RR 90", Reply("vitals", "4821", problem="respiratory_rate")),
    ("VITALS 4821 RR", Reply("vitals", "4821", problem="respiratory_rate")),
    ("VITALS 4821 SPO2 49", Reply("vitals", "4821", problem="spo2")),
    ("VITALS 4821 SPO2 101", Reply("vitals", "4821", problem="spo2")),
    ("VITALS 4821 HR 300", Reply("vitals", "4821", problem="pulse")),
    ("VITALS 4821 HR fast", Reply("vitals", "4821", problem="pulse")),
    ("VITALS 4821 AVPU X", Reply("vitals", "4821", problem="responsiveness")),
    ("RESTOCK", Reply("restock", problem="count")),
    ("RESTOCK 0", Reply("restock", problem="count")),
    ("RESTOCK 101", Reply("restock", problem="count")),
    ("RESTOCK lots", Reply("restock", problem="count")),
    ("RESTOCK 2 LOT", Reply("restock", problem="lot")),
    ("RESTOCK 2 LOT A/B", Reply("restock", problem="lot")),
    ("RESTOCK 2 EXP 2027-13", Reply("restock", problem="expiry")),
    ("RESTOCK 2 EXP June", Reply("restock", problem="expiry")),
    ("RESTOCK 2 EXP 2027-02-30", Reply("restock", problem="expiry")),
    ("RESTOCK 2 please", Reply("restock", problem="extra")),
    ("KIT 4821", Reply("left_behind", "4821", problem="count")),
    ("KIT 4821 21", Reply("left_behind", "4821", problem="count")),
    ("KIT 4821 1 EXP 2027-06", Reply("left_behind", "4821", problem="extra")),
]

UNKNOWN = [
    # a classic keyword in ordinary words stays "not understood" with the usual answer, as before
    "yes please",
    "Y 48",  # a mistyped code is not an ETA
    "no idea where they are",
    "",
    "hello",
    "SPO2 94",
]


@pytest.mark.parametrize(("body", "reply"), EN)
def test_every_english_command_is_read(body: str, reply: Reply) -> None:
    assert parse_reply(body) == reply


@pytest.mark.parametrize(("body", "reply"), REFUSED_EN)
def test_a_part_not_understood_is_named_and_the_command_kept(body: str, reply: Reply) -> None:
    read = parse_reply(body)
    assert read == reply
    assert read.problem in PARTS


@pytest.mark.parametrize("body", UNKNOWN)
def test_ordinary_words_are_not_a_command(body: str) -> None:
    assert parse_reply(body).command == "unknown"


def test_a_problem_is_a_fixed_name_never_the_text_typed() -> None:
    for body in ("NARCAN 4821 ZZTOPSECRET", "VITALS 4821 SECRETWORD 12", "RESTOCK 2 EXP SECRETWORD"):
        read = parse_reply(body)
        assert read.problem in PARTS and "SECRET" not in repr(read).upper()


def test_nothing_but_the_command_and_its_parts_is_carried() -> None:
    read = parse_reply("NARCAN 4821 4MG IN")
    assert (read.place, read.vitals, read.count, read.lot, read.agency) == (None, None, None, None, None)


# ---- duress -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "OK 4821 pineapple",
        "pineapple",
        "Pineapple! 4821",
        "ok 4821 PINEÁPPLE",
        "all fine, pineapple, 4821",
        "DONE pineapple",
    ],
)
def test_a_duress_word_anywhere_reads_as_ok_with_the_flag(body: str) -> None:
    read = parse_reply(body, ["pineapple"])
    assert (read.command, read.duress, read.problem) == ("ok", True, None)
    assert read.code == ("4821" if "4821" in body else None)


@pytest.mark.parametrize("body", ["OK 4821", "pineapples 4821", "OK 4821 apple", "pine apple"])
def test_only_the_whole_duress_word_counts(body: str) -> None:
    assert parse_reply(body, ["pineapple"]).duress is False


def test_a_duress_phrase_and_several_words_are_read_case_and_accents_ignored() -> None:
    words = ["blue sky", "Ñandú"]
    assert parse_reply("ok 4821 Blue   Sky", words).duress is True
    assert parse_reply("nandu", words).duress is True
    assert parse_reply("blue 4821", words).duress is False
    assert parse_reply("OK 4821", ()).duress is False
    assert parse_reply("OK 4821", ["", "  "]).duress is False


# ---- the grammar's names are the contract's ------------------------------------------------------------------


def test_every_command_and_part_is_one_the_not_understood_text_can_name() -> None:
    assert set(KEYWORDS) | set(FIELD_KEYWORDS) == set(get_args(ReplyCommand))
    assert set(PARTS) == set(get_args(ReplyPart))
    for command in get_args(ReplyCommand):
        for part in PARTS:
            for language in ("en", "es"):
                assert render("reply_not_understood", {"command": command, "part": part}, language).segments == 1


@pytest.mark.parametrize("name", VITALS)
def test_the_vitals_ranges_are_the_events(name: str) -> None:
    """The edge values the grammar accepts the event accepts; one past them both refuse."""
    base = {
        "incident_id": "00000000-0000-0000-0000-000000000001",
        "responder_id": "00000000-0000-0000-0000-000000000002",
        "code": "4821",
        "taken_at": "2026-01-05T12:00:00Z",
    }
    label = {"respiratory_rate": "RR", "spo2": "SPO2", "pulse": "HR"}[name]
    low, high = {"respiratory_rate": (0, 80), "spo2": (50, 100), "pulse": (20, 250)}[name]
    for value in (low, high):
        assert parse_reply(f"VITALS 4821 {label} {value}").vitals == {name: value}
        VitalsRecordedData.model_validate(base | {name: value})
    for value in (low - 1, high + 1):
        if value >= 0:
            assert parse_reply(f"VITALS 4821 {label} {value}").problem == name
        with pytest.raises(ValidationError):
            VitalsRecordedData.model_validate(base | {name: value})


def test_help_field_and_help_kit_name_every_field_keyword_in_one_segment() -> None:
    for language in ("en", "es"):
        text = " ".join(
            plain(render(t, {}, language).text) for t in ("reply_help", "reply_help_field", "reply_help_kit")
        )
        for command, by_language in FIELD_KEYWORDS.items():
            assert any(plain(word) in text for word in by_language[language]), (language, command)
        for template in ("reply_help", "reply_help_field", "reply_help_kit"):
            assert render(template, {}, language).segments == 1
