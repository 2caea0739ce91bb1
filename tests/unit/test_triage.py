"""Triage is a pure function of the details and the thresholds: each rule tested at its boundary."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.contract.events import OverdoseDetails, Priority, SelfHarmRiskDetails, WithdrawalDetails
from services.intake_gateway.domain.triage import (
    LIFELINE_988,
    Thresholds,
    cows_band,
    triage_overdose,
    triage_self_harm_risk,
    triage_withdrawal,
)
from services.intake_gateway.settings import GatewaySettings, TriageThresholds

DEFAULT = Thresholds()


def test_overdose_without_ems_is_p1_and_says_call_911_first() -> None:
    triage = triage_overdose(OverdoseDetails(responsive=False, breathing=False, ems_called=False))
    assert triage.priority is Priority.P1
    assert triage.needs == ("naloxone_carrier", "ems_now")
    assert triage.guidance[0] == "Call 911 now."
    assert any("every 2-3 minutes" in g for g in triage.guidance)
    assert any("rescue breathing" in g for g in triage.guidance)


def test_overdose_with_ems_called_still_needs_a_naloxone_carrier_but_not_911() -> None:
    triage = triage_overdose(OverdoseDetails(responsive=True, breathing=True, ems_called=True))
    assert triage.priority is Priority.P1
    assert triage.needs == ("naloxone_carrier",)
    assert not any("911" in g for g in triage.guidance)


def withdrawal(**kw) -> WithdrawalDetails:
    return WithdrawalDetails(**({"substance": "alcohol"} | kw))


@pytest.mark.parametrize(
    ("score", "priority", "needs", "band"),
    [
        (0, Priority.P3, (), "mild"),
        (9, Priority.P3, (), "mild"),
        (10, Priority.P3, ("nurse_or_prescriber",), "moderate"),
        (18, Priority.P3, ("nurse_or_prescriber",), "moderate"),
        (19, Priority.P2, ("medical_review",), "severe"),
        (67, Priority.P2, ("medical_review",), "severe"),
    ],
)
def test_ciwa_ar_bands_and_the_severe_threshold(score, priority, needs, band) -> None:
    triage = triage_withdrawal(withdrawal(ciwa_ar_score=score), DEFAULT)
    assert (triage.priority, triage.needs, triage.risk_level) == (priority, needs, band)
    assert "ems_now" not in triage.needs


@pytest.mark.parametrize(
    ("score", "priority", "needs"),
    [(0, Priority.P3, ()), (7, Priority.P3, ()), (8, Priority.P2, ("prescriber",)), (48, Priority.P2, ("prescriber",))],
)
def test_cows_prescriber_review_threshold(score, priority, needs) -> None:
    triage = triage_withdrawal(withdrawal(substance="opioid", cows_score=score), DEFAULT)
    assert (triage.priority, triage.needs) == (priority, needs)


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (4, "none"),
        (5, "mild"),
        (12, "mild"),
        (13, "moderate"),
        (24, "moderate"),
        (25, "moderately_severe"),
        (36, "moderately_severe"),
        (37, "severe"),
    ],
)
def test_cows_bands(score, band) -> None:
    assert cows_band(score, DEFAULT) == band


@pytest.mark.parametrize("sign", ["seizure", "delirium", "hallucinations"])
@pytest.mark.parametrize("substance", ["alcohol", "opioid", "other"])
def test_complicated_withdrawal_is_p1_with_ems_whatever_the_score(sign, substance) -> None:
    triage = triage_withdrawal(WithdrawalDetails(substance=substance, **{sign: True}), DEFAULT)
    assert triage.priority is Priority.P1
    assert triage.needs == ("ems_now", "medical_review")
    assert triage.guidance[0] == "Call 911 now."
    assert triage.risk_level == "complicated"


def test_withdrawal_without_a_score_sends_someone_who_can_score_it() -> None:
    triage = triage_withdrawal(withdrawal(seizure=False), DEFAULT)
    assert (triage.priority, triage.needs) == (Priority.P3, ("medical_review",))


def test_thresholds_come_from_configuration() -> None:
    stricter = Thresholds(ciwa_severe_at=21, cows_prescriber_at=10)
    assert triage_withdrawal(withdrawal(ciwa_ar_score=20), stricter).priority is Priority.P3
    assert triage_withdrawal(withdrawal(ciwa_ar_score=21), stricter).priority is Priority.P2
    assert triage_withdrawal(withdrawal(substance="opioid", cows_score=9), stricter).priority is Priority.P3
    assert triage_withdrawal(withdrawal(substance="opioid", cows_score=10), stricter).priority is Priority.P2


def test_thresholds_are_read_from_crisis_environment_variables(monkeypatch) -> None:
    monkeypatch.setenv("CRISIS_TRIAGE__CIWA_SEVERE_AT", "21")
    monkeypatch.setenv("CRISIS_TRIAGE__COWS_PRESCRIBER_AT", "10")
    thresholds = GatewaySettings().triage.to_domain()
    assert (thresholds.ciwa_severe_at, thresholds.cows_prescriber_at, thresholds.ciwa_moderate_at) == (21, 10, 10)
    assert GatewaySettings().duplicate_rule().radius_m == 200.0


def test_thresholds_that_do_not_rise_are_refused() -> None:
    with pytest.raises(ValidationError, match="ciwa_moderate_at"):
        TriageThresholds(ciwa_moderate_at=20, ciwa_severe_at=19)
    with pytest.raises(ValidationError, match="COWS bands"):
        TriageThresholds(cows_moderate_at=30)


def screener(**answers) -> SelfHarmRiskDetails:
    return SelfHarmRiskDetails(**({"q1": False, "q2": False, "q6_ever": False} | answers))


YES_Q2 = {"q2": True, "q3": False, "q4": False, "q5": False}


@pytest.mark.parametrize(
    ("answers", "level", "priority"),
    [
        (YES_Q2 | {"q4": True}, "high", Priority.P1),
        (YES_Q2 | {"q5": True}, "high", Priority.P1),
        ({"q6_ever": True, "q6_past_3_months": True}, "high", Priority.P1),
        (YES_Q2 | {"q3": True}, "moderate", Priority.P2),
        ({"q6_ever": True, "q6_past_3_months": False}, "moderate", Priority.P2),
        ({"q1": True}, "low", Priority.P3),
        (YES_Q2 | {"q1": True}, "low", Priority.P3),
        ({}, "low", Priority.P3),
    ],
)
def test_c_ssrs_screener_risk_levels(answers, level, priority) -> None:
    triage = triage_self_harm_risk(screener(**answers))
    assert (triage.risk_level, triage.priority) == (level, priority)


def test_high_self_harm_risk_needs_a_licensed_clinician_and_safety_precautions() -> None:
    triage = triage_self_harm_risk(screener(**YES_Q2 | {"q5": True}))
    assert triage.needs == ("licensed_clinician", "safety_precautions")
    assert any("do not leave them alone" in g for g in triage.guidance)


def test_moderate_needs_a_licensed_clinician_and_low_gets_988_and_no_special_skill() -> None:
    assert triage_self_harm_risk(screener(**YES_Q2 | {"q3": True})).needs == ("licensed_clinician",)
    low = triage_self_harm_risk(screener(q1=True))
    assert low.needs == () and LIFELINE_988 in low.guidance and "988" in low.guidance[0]
