"""The dispatcher's pure decisions, with hand-made rosters."""

from __future__ import annotations

import re
from uuid import uuid4

import pytest

from services.dispatcher.domain import messages
from services.dispatcher.domain.replies import Reply, free_code, parse_reply
from services.dispatcher.domain.roster import Responder
from services.dispatcher.domain.routing import Candidate, Shortfall, haversine_km, select_nearest
from tests.factories import fake_phone

SCENE = (39.7431, -104.9876)


def responder(lat: float, lon: float, *, skills=("naloxone",), on_call=True, role="clinician") -> Responder:
    return Responder(uuid4(), "Generated Person", role, fake_phone(), lat, lon, frozenset(skills), on_call)


def test_nearest_on_call_responder_with_the_skill_is_chosen() -> None:
    far = responder(39.80, -104.90)
    near = responder(39.745, -104.99)
    off = responder(39.7431, -104.9876, on_call=False)
    unskilled = responder(39.744, -104.988, skills=())
    choice = select_nearest([far, near, off, unskilled], SCENE, ["naloxone_carrier"])
    assert isinstance(choice, Candidate)
    assert choice.responder == near
    assert choice.skills_matched == ("naloxone",)
    assert choice.distance_km == pytest.approx(haversine_km((39.745, -104.99), SCENE), abs=0.001)


def test_without_the_skill_the_nearest_on_call_is_paged_and_the_rule_says_so() -> None:
    only = responder(39.75, -104.99, skills=())
    choice = select_nearest([only], SCENE, ["naloxone_carrier"])
    assert isinstance(choice, Candidate) and choice.responder == only
    assert "nobody on call has the needed skills" in choice.rule


def test_nobody_on_call_is_a_named_shortfall() -> None:
    assert select_nearest([responder(39.75, -104.99, on_call=False)], SCENE, []) == Shortfall("nobody on call")
    assert select_nearest([], SCENE, []) == Shortfall("nobody on call")


def test_the_ranking_distance_is_the_one_passed_in() -> None:
    a, b = responder(39.75, -104.99), responder(39.76, -104.99)
    prefer_b = {(b.home_lat, b.home_lon): 0.1, (a.home_lat, a.home_lon): 5.0}
    choice = select_nearest([a, b], SCENE, [], distance_km=lambda home, _: prefer_b[home])
    assert isinstance(choice, Candidate) and choice.responder == b and choice.distance_km == 0.1


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("Y 4821", Reply(True, "4821")),
        ("  yes   4821 ", Reply(True, "4821")),
        ("y4821", Reply(True, "4821")),
        ("N 4821", Reply(False, "4821")),
        ("no #4821.", Reply(False, "4821")),
        ("Y", Reply(True, None)),
        ("maybe", None),
        ("Y 48211", None),
        ("", None),
    ],
)
def test_replies_are_read_tolerantly(text: str, reply: Reply | None) -> None:
    assert parse_reply(text) == reply


PHI_WORDS = re.compile(r"overdose|withdraw|suicid|self.?harm|opioid|fentanyl|heroin|alcohol|naloxone|narcan", re.I)


def test_page_text_carries_no_phi_and_fits_one_segment() -> None:
    text = messages.page_text("P1", "4821", "5th St & Main", 0.84, advise_911=True)
    assert text == (
        "P1 response needed near 5th St & Main (0.8 km). Call 911 if not done. Reply Y 4821 to accept, N 4821 to pass."
    )
    assert len(text) <= 160
    for other in (
        messages.accepted_text("4821"),
        messages.declined_text("4821"),
        messages.not_understood_text(),
    ):
        assert not PHI_WORDS.search(other)
    assert not PHI_WORDS.search(text)


def test_a_page_code_never_collides_with_the_responders_open_pages() -> None:
    assert free_code("4821", set()) == "4821"
    assert free_code("4821", {"4821", "4822"}) == "4823"
    assert free_code("9999", {"9999"}) == "1000"
    with pytest.raises(ValueError):
        free_code("1000", {str(n) for n in range(1000, 10000)})
