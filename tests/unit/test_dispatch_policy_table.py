"""The dispatch policy as written is the policy as run.

``POLICY`` below is the README's "Dispatch policy" table as data: for each kind and triage finding, the priority
and needs triage gives, whom each step pages (how many, with which skill, and the team's peer coach), how long
each page stays open and what happens when the ladder runs out. Each row is checked against the code: triage
is asked for the finding, and a dispatcher with its default settings is driven through every step for a
generated roster. ``NEEDS`` and ``PAGE_ENDS`` are the section's other two tables. The README section between
``<!-- dispatch-policy:start -->`` and ``<!-- dispatch-policy:end -->`` must hold exactly these rows.

What ends a page is driven end to end in tests/integration/test_dispatcher_application.py (accept, decline,
failed SMS, STOP, cancel) and tests/integration/test_dispatch_team_ladder.py (the peer's page stays open).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.contract.events import OverdoseDetails, SelfHarmRiskDetails, WithdrawalDetails
from services.dispatcher.bootstrap import build
from services.dispatcher.domain.policy import FRONT_LINE
from services.dispatcher.domain.routing import SKILLS_FOR_NEED, haversine_km
from services.dispatcher.settings import DispatcherSettings
from services.intake_gateway.domain.triage import (
    Thresholds,
    Triage,
    triage_overdose,
    triage_self_harm_risk,
    triage_withdrawal,
)
from services.runtime.clock import ManualClock
from tests import dispatch_factories as f
from tests.factories import T0
from tests.support.dispatch_harness import Harness, of

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- dispatch-policy:start -->", "<!-- dispatch-policy:end -->"
OPEN_FOR = {"P1": "90 s (SMS reminder at 30 s, call at 60 s)", "P2": "5 min", "P3": "15 min"}
ON_EXHAUSTION = {"P1": "SMS + call, every 2 min", "P2": "SMS, every 2 min", "P3": "recorded, no alarm"}


@dataclass(frozen=True)
class PolicyRow:
    kind: str
    finding: str  # the triage finding, in words
    triage: Callable[[], Triage]  # triage asked for that finding
    priority: str
    needs: tuple[str, ...]
    at_once: int  # pages per candidate step (steps 1 and 2)
    skill: tuple[tuple[str, ...], ...]  # for each need that takes one: the skills (or roles) that satisfy it
    peer: bool  # a two-person team: one peer coach too, at steps 1 and 2

    def cells(self) -> list[str]:
        skill = "; ".join(" or ".join(f"`{s}`" for s in any_of) for any_of in self.skill) or "any"
        return [
            self.kind,
            self.finding,
            self.priority,
            ", ".join(f"`{n}`" for n in self.needs) or "none",
            f"{self.at_once} nearest",
            skill,
            "1 nearest peer coach" if self.peer else "no",
            "1 supervisor",
            "1 clinical director",
            OPEN_FOR[self.priority],
            ON_EXHAUSTION[self.priority],
        ]


def withdrawal(**details: Any) -> Callable[[], Triage]:
    return lambda: triage_withdrawal(WithdrawalDetails(**details), Thresholds())


def cssrs(**answers: Any) -> Callable[[], Triage]:
    return lambda: triage_self_harm_risk(SelfHarmRiskDetails(**{"q1": True, "q2": False, "q6_ever": False} | answers))


NALOXONE, CLINICIAN = ("naloxone_carrier",), ("licensed_clinician",)
MEDICAL = ("nurse", "prescriber", "licensed_clinician")
POLICY = [
    PolicyRow(
        "overdose",
        "EMS not yet called",
        lambda: triage_overdose(OverdoseDetails(ems_called=False)),
        "P1",
        ("naloxone_carrier", "ems_now"),
        2,
        (NALOXONE,),
        False,
    ),
    PolicyRow(
        "overdose",
        "EMS already called",
        lambda: triage_overdose(OverdoseDetails(ems_called=True)),
        "P1",
        ("naloxone_carrier",),
        2,
        (NALOXONE,),
        False,
    ),
    PolicyRow(
        "withdrawal",
        "seizure, delirium or new hallucinations",
        withdrawal(substance="alcohol", seizure=True),
        "P1",
        ("ems_now", "medical_review"),
        2,
        (MEDICAL,),
        False,
    ),
    PolicyRow(
        "withdrawal",
        "CIWA-Ar 19 or more",
        withdrawal(substance="alcohol", ciwa_ar_score=19),
        "P2",
        ("medical_review",),
        1,
        (MEDICAL,),
        False,
    ),  # fmt: skip
    PolicyRow(
        "withdrawal",
        "COWS 8 or more",
        withdrawal(substance="opioid", cows_score=8),
        "P2",
        ("prescriber",),
        1,
        (("prescriber",),),
        False,
    ),  # fmt: skip
    PolicyRow(
        "withdrawal",
        "CIWA-Ar 10 to 18",
        withdrawal(substance="alcohol", ciwa_ar_score=10),
        "P3",
        ("nurse_or_prescriber",),
        1,
        (("nurse", "prescriber"),),
        False,
    ),  # fmt: skip
    PolicyRow(
        "withdrawal", "no score given", withdrawal(substance="other"), "P3", ("medical_review",), 1, (MEDICAL,), False
    ),
    PolicyRow(
        "withdrawal",
        "CIWA-Ar under 10 or COWS under 8",
        withdrawal(substance="alcohol", ciwa_ar_score=9),
        "P3",
        (),
        1,
        (),
        False,
    ),  # fmt: skip
    PolicyRow(
        "self_harm_risk",
        "C-SSRS high (Q4, Q5, or behaviour in the past 3 months)",
        cssrs(q2=True, q4=True),
        "P1",
        ("licensed_clinician", "safety_precautions"),
        2,
        (CLINICIAN,),
        True,
    ),  # fmt: skip
    PolicyRow(
        "self_harm_risk",
        "C-SSRS moderate (Q3, or lifetime behaviour only)",
        cssrs(q2=True, q3=True),
        "P2",
        ("licensed_clinician",),
        1,
        (CLINICIAN,),
        True,
    ),  # fmt: skip
    PolicyRow("self_harm_risk", "C-SSRS low (Q1 or Q2 only)", cssrs(), "P3", (), 1, (), True),
]
POLICY_HEADER = [
    "Kind", "Triage finding", "Priority", "Needs", "Steps 1 and 2: primary pages, each step", "Skill each must have",
    "Team peer coach (steps 1 and 2)", "Step 3", "Step 4", "Each page open for", "Ladder exhausted",
]  # fmt: skip

NEEDS = [
    ("`naloxone_carrier`", "`naloxone_carrier`"),
    ("`licensed_clinician`", "`licensed_clinician`"),
    ("`prescriber`", "`prescriber` (skill or role)"),
    ("`nurse_or_prescriber`", "`nurse` or `prescriber` (skill or role)"),
    ("`medical_review`", "`nurse`, `prescriber` (skill or role) or `licensed_clinician`"),
    ("`ems_now`", 'none: the page says "Call 911 if not done"'),
    ("`safety_precautions`", "none: it changes neither who is paged nor what the page says"),
]
NEEDS_HEADER = ["Triage need", "Satisfied by"]

PAGE_ENDS = [
    (
        "accepted (`Y <code>`)",
        'that slot is covered: its other open pages are withdrawn (texted "covered"); the other slot\'s page '
        "stays open (a primary's acceptance does not close the peer coach's page, nor the other way round)",
    ),
    (
        "declined (`N <code>`), or unreachable (SMS failed, `STOP`)",
        "another page of that slot at this step still open: one replacement at once, same step, its own deadline; "
        "none open: the ladder's next step at once",
    ),
    ("its deadline passed unanswered", "when no page of that slot is still open: the ladder's next step"),
    ("the incident is cancelled", 'every open page is withdrawn (texted "cancelled")'),
]
PAGE_ENDS_HEADER = ["A page ends when", "Then"]


def markdown_rows() -> list[list[str]]:
    """Every table row of the section, header rows included, in order (the separator rows left out)."""
    return [
        POLICY_HEADER,
        *(row.cells() for row in POLICY),
        NEEDS_HEADER,
        *(list(need) for need in NEEDS),
        PAGE_ENDS_HEADER,
        *(list(end) for end in PAGE_ENDS),
    ]


# ---- the table is what triage and routing do ----------------------------------------------------------------


@pytest.mark.parametrize("row", POLICY, ids=lambda r: f"{r.kind}-{r.priority}-{r.finding[:20]}")
def test_triage_gives_the_row_its_priority_and_needs(row: PolicyRow) -> None:
    triaged = row.triage()
    assert (triaged.priority.value, triaged.needs) == (row.priority, row.needs)


def test_every_need_maps_to_the_skills_the_table_names() -> None:
    written = {need.strip("`"): where for need, where in NEEDS}
    for need, skills in SKILLS_FOR_NEED.items():
        named = set(re.findall(r"`(\w+)`", written[need]))
        assert named == skills, need
    assert set(written) - set(SKILLS_FOR_NEED) == {"ems_now", "safety_precautions"}  # needs without a skill
    for row in POLICY:
        assert [frozenset(s) for s in row.skill] == [SKILLS_FOR_NEED[n] for n in row.needs if n in SKILLS_FOR_NEED]


SKILLSETS = [  # (role, skills, how many): enough qualified people for two full candidate steps of any row
    ("clinician", ("licensed_clinician", "naloxone_carrier"), 4),
    ("clinician", ("licensed_clinician",), 2),
    ("nurse", ("nurse", "naloxone_carrier"), 3),
    ("prescriber", ("prescriber",), 3),
    ("peer_coach", ("naloxone_carrier",), 3),
    ("peer_coach", (), 2),
    ("supervisor", ("licensed_clinician",), 2),
    ("director", ("licensed_clinician",), 2),
]


@pytest.fixture
def city(tmp_path: Path):
    """A dispatcher with default settings and a generated roster, everyone on call, homes 0.5 km apart in a
    shuffled order of roles, all within reach of the scene."""
    kinds = [(role, skills) for role, skills, n in SKILLSETS for _ in range(n)]
    random.Random(14).shuffle(kinds)
    people = [
        f.responder(role, skills=skills, home=(f.SCENE[0] + 0.0045 * (i + 1), f.SCENE[1]))
        for i, (role, skills) in enumerate(kinds)
    ]
    clock = ManualClock(T0)
    with build(DispatcherSettings(var_dir=tmp_path, roster_seed_file=None), clock) as app:
        harness = Harness(app, clock)
        harness.feed(*(f.registered(p) for p in people), *(f.rotation([p.responder_id]) for p in people))
        harness.new()
        yield harness, {p.responder_id: p for p in people}


def qualifies(person: Any, row: PolicyRow) -> bool:
    have = {s.value for s in person.skills} | {person.role.value}
    return person.role.value in FRONT_LINE and all(have & set(any_of) for any_of in row.skill)


def nearest(people: dict, wanted: Callable[[Any], bool], paged: set, count: int) -> set:
    distance = {r: haversine_km((p.home_base.lat, p.home_base.lon), f.SCENE) for r, p in people.items()}
    chosen = sorted((r for r, p in people.items() if wanted(p) and r not in paged), key=distance.__getitem__)
    return set(chosen[:count])


def step_pages(events: list, role: str) -> set:
    return {o.data.responder_id for o in of(events, "dispatch.offered") if o.data.reason.team_role == role}


@pytest.mark.parametrize("row", POLICY, ids=lambda r: f"{r.kind}-{r.priority}-{r.finding[:20]}")
def test_each_step_pages_whom_the_row_says_for_as_long_as_it_says(city, row: PolicyRow) -> None:
    harness, people = city
    is_peer = lambda p: p.role.value == "peer_coach"  # noqa: E731
    paged: set = set()
    out = harness.feed(f.incident(row.kind, row.priority, row.needs))
    for step in (1, 2):
        primaries = step_pages(out, "primary")
        assert primaries == nearest(people, lambda p: qualifies(p, row), paged, row.at_once), f"step {step}"
        paged |= primaries
        peers = step_pages(out, "peer")
        assert peers == (nearest(people, is_peer, paged, 1) if row.peer else set()), f"step {step}"
        paged |= peers
        out = wait_out_the_page(harness, row, step, len(primaries | peers))
        assert [(e.data.from_step, e.data.to_step) for e in of(out, "dispatch.escalated")] == [(step, step + 1)]
    for step, rung in ((3, "supervisor"), (4, "director")):
        [offer] = of(out, "dispatch.offered")
        assert (offer.data.step, offer.data.reason.team_role, people[offer.data.responder_id].role) == (
            step,
            rung,
            rung,
        )
        out = wait_out_the_page(harness, row, step, 1)
    assert [u.data.shortfalls for u in of(out, "dispatch.unfilled")] == [["ladder_exhausted"]]
    alarm = {m.data.channel for m in of(out, "notification.requested") if m.data.template.startswith("nobody")}
    assert alarm == {"P1": {"sms", "voice"}, "P2": {"sms"}, "P3": set()}[row.priority]
    raised = of(out, "dispatch.alarm_raised")
    assert [a.data.next_at - a.occurred_at for a in raised] == ([f.later(120)] if row.priority != "P3" else [])


def wait_out_the_page(harness: Harness, row: PolicyRow, step: int, open_pages: int) -> list:
    """Move the clock through one step's pages: P1 reminds and calls on the way (step 1 checked); returns what
    the step's deadline fired."""
    seconds = {"P1": 90, "P2": 300, "P3": 900}[row.priority]
    if row.priority == "P1":
        reminded = harness.tick(30)
        assert len([m for m in of(reminded, "notification.requested") if m.data.template == "page_reminder"]) == (
            open_pages
        )
        called = harness.tick(30)
        assert {m.data.channel for m in of(called, "notification.requested")} == {"voice"}
        seconds -= 60
    assert of(harness.tick(seconds - 1), "dispatch.timed_out") == []
    return harness.tick(1)


# ---- the README says it -------------------------------------------------------------------------------------


def readme_rows() -> list[list[str]]:
    text = README.read_text()
    assert START in text and END in text, (
        f"README.md has no section between {START} and {END}: paste /tmp/readme_dispatch_policy.md "
        "(the lead merges it) into the 'Dispatch: who is paged, and what happens next' section"
    )
    section = text[text.index(START) : text.index(END)]
    rows = []
    for line in section.splitlines():
        line = line.strip()
        if line.startswith("|") and not re.fullmatch(r"\|[\s:|-]+\|", line):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_the_readme_section_holds_exactly_these_tables() -> None:
    assert readme_rows() == markdown_rows()


def as_markdown(rows: list[list[str]]) -> str:
    """The rows as markdown tables (a header row starts each table): what the README section holds."""
    headers = (POLICY_HEADER, NEEDS_HEADER, PAGE_ENDS_HEADER)
    lines: list[str] = []
    for row in rows:
        if row in headers:
            lines += ["", f"| {' | '.join(row)} |", "|" + "---|" * len(row)]
        else:
            lines.append(f"| {' | '.join(row)} |")
    return "\n".join(lines).strip() + "\n"
