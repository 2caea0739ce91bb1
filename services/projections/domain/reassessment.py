"""Re-assessment on scene: a clinician re-scores the person (COWS, CIWA-Ar or the C-SSRS screener) on the
incident page, and triage re-runs with the shared rules (``services/contract/triage.py``, the ones intake used).

Pure: the form's values as typed, the report and the incident's current priority in; a ``Reassessment`` out, or
``ReassessmentRefused`` naming the field that was not right (then nothing is recorded and the form is shown back
as typed). Who may re-assess is decided here too (``may_reassess``): a director, or a clinician, nurse or
prescriber on the roster who was paged for the incident.

Which instrument fits which report: withdrawal is re-scored with COWS (opioids) or CIWA-Ar (alcohol; either for
"other"); a self-harm risk with the C-SSRS screener (its skip logic as intake checks it). An overdose is P1 and
stays so: there is nothing to re-score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from services.contract.events import IncidentReported, Priority, SelfHarmRiskDetails
from services.contract.triage import Thresholds, Triage, triage_self_harm_risk, triage_withdrawal

Instrument = Literal["cows", "ciwa_ar", "c_ssrs"]
CLINICAL_ROLES = frozenset({"clinician", "nurse", "prescriber"})
"""Roster roles that may re-score a person on scene (besides a clinical director)."""
SCORE_RANGES = {"cows": (0, 48), "ciwa_ar": (0, 67)}
SCALE_NAMES = {"cows": "COWS", "ciwa_ar": "CIWA-Ar", "c_ssrs": "C-SSRS"}
C_SSRS_QUESTIONS = ("q1", "q2", "q3", "q4", "q5", "q6_ever", "q6_past_3_months")
ANSWERS = {"yes": True, "no": False, "": None}


class ReassessmentRefused(Exception):
    """The form is not a re-assessment that can be recorded: ``field`` names the part (a form field's name)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Reassessment:
    instrument: Instrument
    score: int | None
    c_ssrs_risk: Literal["low", "moderate", "high"] | None
    previous_priority: Priority
    priority: Priority
    risk_level: str | None
    reasons: tuple[str, ...]


def may_reassess(is_director: bool, roster_role: str | None, paged_for_it: bool) -> bool:
    return is_director or (roster_role in CLINICAL_ROLES and paged_for_it)


def instruments_for(reported: IncidentReported | None) -> tuple[Instrument, ...]:
    """The instruments that re-score this report (empty: nothing to re-score, e.g. an overdose)."""
    if reported is None:
        return ()
    data = reported.data
    if data.kind.value == "self_harm_risk":
        return ("c_ssrs",)
    if data.kind.value == "withdrawal" and data.withdrawal is not None:
        substance = data.withdrawal.substance
        return {"opioid": ("cows",), "alcohol": ("ciwa_ar",)}.get(substance, ("cows", "ciwa_ar"))
    return ()


def reassess(
    reported: IncidentReported | None,
    current_priority: str,
    instrument: str,
    values: Mapping[str, str],
    thresholds: Thresholds,
) -> Reassessment:
    """Triage re-run on the score (or answers) typed in ``values``; ReassessmentRefused when they do not fit."""
    fits = instruments_for(reported)
    if not fits:
        raise ReassessmentRefused("instrument", "this incident has no score to re-assess (an overdose stays P1)")
    if instrument not in fits:
        allowed = " or ".join(SCALE_NAMES[i] for i in fits)
        raise ReassessmentRefused("instrument", f"this incident is re-scored with {allowed}")
    assert reported is not None
    if instrument == "c_ssrs":
        details = c_ssrs_answers(values)
        triage = triage_self_harm_risk(details)
        score, risk = None, triage.risk_level
    else:
        score = score_typed(instrument, values.get("score", ""))
        withdrawal = reported.data.withdrawal
        assert withdrawal is not None
        scored = withdrawal.model_copy(
            update={
                "ciwa_ar_score": score if instrument == "ciwa_ar" else None,
                "cows_score": score if instrument == "cows" else None,
            }
        )
        triage = triage_withdrawal(scored, thresholds)
        risk = None
    return _result(instrument, score, risk, Priority(current_priority), triage)  # type: ignore[arg-type]


def _result(
    instrument: Instrument, score: int | None, risk: str | None, previous: Priority, triage: Triage
) -> Reassessment:
    return Reassessment(
        instrument=instrument,
        score=score,
        c_ssrs_risk=risk,  # type: ignore[arg-type]
        previous_priority=previous,
        priority=triage.priority,
        risk_level=triage.risk_level,
        reasons=tuple(triage.reasons),
    )


def score_typed(instrument: str, typed: str) -> int:
    low, high = SCORE_RANGES[instrument]
    name = SCALE_NAMES[instrument]
    text = typed.strip()
    if not text.isdigit():
        raise ReassessmentRefused("score", f"the {name} total is a whole number from {low} to {high}")
    value = int(text)
    if not low <= value <= high:
        raise ReassessmentRefused("score", f"the {name} total is from {low} to {high}; {value} is not")
    return value


def c_ssrs_answers(values: Mapping[str, str]) -> SelfHarmRiskDetails:
    """The screener's answers (yes / no / not asked) with its own skip logic: Q1, Q2 and Q6 always; Q3-Q5 after a
    yes to Q2 (and not yes after a no); the past 3 months after a yes to Q6."""
    answers: dict[str, bool | None] = {}
    for name in C_SSRS_QUESTIONS:
        typed = values.get(name, "")
        if typed not in ANSWERS:
            raise ReassessmentRefused(name, f"answer {name.upper()} with yes or no")
        answers[name] = ANSWERS[typed]
    for name in ("q1", "q2", "q6_ever"):
        if answers[name] is None:
            raise ReassessmentRefused(name, f"{_question(name)} must be answered")
    for name in ("q3", "q4", "q5"):
        if answers["q2"] and answers[name] is None:
            raise ReassessmentRefused(name, f"{_question(name)} must be answered after a yes to Q2")
        if not answers["q2"] and answers[name] is True:
            raise ReassessmentRefused(name, f"{_question(name)} is asked only after a yes to Q2, which was no")
    if answers["q6_ever"] and answers["q6_past_3_months"] is None:
        raise ReassessmentRefused("q6_past_3_months", "say whether it was in the past 3 months (Q6 is yes)")
    if not answers["q6_ever"] and answers["q6_past_3_months"] is True:
        raise ReassessmentRefused("q6_past_3_months", "yes in the past 3 months contradicts no to Q6")
    return SelfHarmRiskDetails(**answers)  # type: ignore[arg-type]


def _question(name: str) -> str:
    return "Q6" if name == "q6_ever" else name.upper()
