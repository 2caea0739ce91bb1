"""The notifier's voice TwiML: page and check-in calls listen for one key (<Gather>) posted to the gateway's keypad
URL with what the answer needs; every other call only speaks; the spoken keys are the contract's keys."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import pytest

from services.contract.events import KEYPAD_COMMANDS, TEMPLATES
from services.notifier.adapters.twilio_voice import page_twiml
from services.notifier.domain.templates import render
from services.notifier.domain.voice_keypad import KEYPAD_CALLS, PROMPT_SPEECH, Keypad, keypad_for
from services.notifier.settings import NotifierSettings

KEYPAD_URL = "https://dispatch.example.org/twilio/voice/keypad"
SPEECH = "This is an urgent P1 page. Y, 4, 8, 2, 1."


def twiml_of(template: str, params: dict, language: str = "en", keypad_url: str | None = KEYPAD_URL):
    notification_id = uuid4()
    keypad = keypad_for(template, params, notification_id, language)
    speech = render(template, params, language).text
    return ElementTree.fromstring(page_twiml(speech, language, keypad, keypad_url)), notification_id, speech


def test_the_page_call_listens_for_one_key_while_it_speaks_and_posts_it_with_the_pages_code() -> None:
    root, notification_id, speech = twiml_of("voice_page", {"priority": "P1", "code": "4821"})
    [gather] = root.findall("Gather")
    assert (gather.get("numDigits"), gather.get("method")) == ("1", "POST")
    action = urlsplit(gather.get("action"))
    assert f"{action.scheme}://{action.netloc}{action.path}" == KEYPAD_URL
    assert parse_qs(action.query) == {
        "prompt": ["page"],
        "code": ["4821"],
        "notification_id": [str(notification_id)],
        "lang": ["en"],
    }
    # inside the gather: the page twice (a key may be pressed at any time), then which keys mean what
    said = [say.text for say in gather.findall("Say")]
    assert said == [speech, speech, "To accept now, press 1. To decline, press 2."]
    assert {say.get("language") for say in gather.findall("Say")} == {"en-US"}
    assert root.findall("Say") == []  # nothing outside the gather


def test_the_page_call_in_spanish_says_the_keys_in_spanish() -> None:
    root, _, _ = twiml_of("voice_page", {"priority": "P2", "code": "7047"}, "es")
    [gather] = root.findall("Gather")
    assert parse_qs(urlsplit(gather.get("action")).query)["lang"] == ["es"]
    last = gather.findall("Say")[-1]
    assert (last.text, last.get("language")) == ("Para aceptar ahora, marque 1. Para pasar, marque 2.", "es-MX")


def test_the_check_in_call_asks_for_1_if_safe_and_2_to_end_the_check_in() -> None:
    assert "checkin_call" in TEMPLATES  # F1's check-in call: the row in KEYPAD_CALLS names it
    root, _, _ = twiml_of("checkin_call", {"code": "4821"})
    [gather] = root.findall("Gather")
    assert parse_qs(urlsplit(gather.get("action")).query)["prompt"] == ["check_in"]
    assert gather.findall("Say")[-1].text == "If you are safe, press 1. To end the check-in, press 2."


@pytest.mark.parametrize("template", ["nobody_accepted_call"])
def test_a_call_that_expects_no_answer_only_speaks(template: str) -> None:
    params = {"priority": "P1", "code": "4821", "kind": "overdose", "minutes_since_report": 12, "repeat": 1}
    assert keypad_for(template, params, uuid4(), "en") is None
    root, _, speech = twiml_of(template, params)
    assert root.findall(".//Gather") == []
    assert [say.text for say in root.findall("Say")] == [speech, speech]


def test_without_a_keypad_url_even_a_page_call_only_speaks_as_before() -> None:
    root, _, speech = twiml_of("voice_page", {"priority": "P1", "code": "4821"}, keypad_url=None)
    assert root.findall(".//Gather") == [] and [say.text for say in root.findall("Say")] == [speech, speech]
    keypad = Keypad("page", "4821", uuid4(), "en")
    assert "<Gather" not in page_twiml(SPEECH, "en", keypad, "")


def test_every_keypad_call_is_a_known_template_and_says_exactly_the_contracts_keys_in_each_language() -> None:
    for template, prompt in KEYPAD_CALLS.items():
        assert template in TEMPLATES, template
        for language, words in PROMPT_SPEECH[prompt].items():
            assert set(re.findall(r"\d", words)) == set(KEYPAD_COMMANDS[prompt]), (prompt, language)


def test_the_keypad_url_is_a_notifier_setting_empty_by_default() -> None:
    assert NotifierSettings().twilio_voice_keypad_url == ""
    assert NotifierSettings(twilio_voice_keypad_url=KEYPAD_URL).twilio_voice_keypad_url == KEYPAD_URL
    with pytest.raises(ValueError, match="twilio_voice_keypad_url"):
        NotifierSettings(twilio_voice_keypad_url="not a url")
