"""The triage rules, pure, shared by intake and re-assessment: priority, needs and what the reporter must be told
right now. Every threshold is a parameter. The gateway triages each report with them
(``services/intake_gateway/domain/triage.py`` re-exports this module); the incident page re-runs them when a
clinician re-scores the person on scene (``incident.reassessed``).

Rules (DOMAIN.md; the numbers are ``Thresholds`` defaults, each overridable by configuration):

overdose - always P1.
    needs ``naloxone_carrier``; ``ems_now`` too while EMS has not been called, and then the first guidance
    line is "Call 911 now."
withdrawal - the first rule that applies wins.
    seizure, delirium or new hallucinations ("complicated"): P1, ``ems_now`` + ``medical_review``, "Call 911 now."
    (for any substance: a withdrawal seizure is an emergency whatever caused it);
    CIWA-Ar >= ``ciwa_severe_at`` (19): P2, ``medical_review`` (urgent review within 24 h);
    COWS >= ``cows_prescriber_at`` (8): P2, ``prescriber`` (evaluation for a buprenorphine start);
    CIWA-Ar >= ``ciwa_moderate_at`` (10): P3, ``nurse_or_prescriber`` (symptom-triggered monitoring);
    no score given: P3, ``medical_review`` (someone who can score it goes);
    otherwise (mild): P3, no special need.
    The reported band follows ASAM 2020 for CIWA-Ar (mild < 10, moderate 10-18, severe >= 19) and the COWS
    bands (< 5 none, 5-12 mild, 13-24 moderate, 25-36 moderately severe, > 36 severe).
self_harm_risk - C-SSRS screener.
    high = yes to Q4 or Q5, or suicidal behaviour in the past 3 months: P1, ``licensed_clinician`` +
    ``safety_precautions`` (a peer cannot assess or close it);
    moderate = yes to Q3, or lifetime-only behaviour (Q6 ever, not in the past 3 months): P2,
    ``licensed_clinician``;
    low = only Q1/Q2, or nothing positive: P3, no special need; the reporter gets the 988 Lifeline.

Needs vocabulary (the dispatcher maps each to the skills that satisfy it; a need with no skill, like
``ems_now`` or ``safety_precautions``, tells the responder and the first SMS what to do, not whom to page):
``ems_now`` (911 must be / has to be called), ``naloxone_carrier``, ``licensed_clinician``, ``prescriber``,
``nurse_or_prescriber``, ``medical_review`` (nurse, prescriber or licensed clinician), ``safety_precautions``.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.contract.envelope import Priority
from services.contract.intake import OverdoseDetails, SelfHarmRiskDetails, WithdrawalDetails

CALL_911 = "Call 911 now."
STAY = "Stay with the person. A responder is being paged."
LIFELINE_988 = (
    "The 988 Suicide & Crisis Lifeline is open all day, every day: call or text 988, or chat at 988lifeline.org."
)


@dataclass(frozen=True)
class Thresholds:
    """Score thresholds (each "at" value is the lowest score that counts). Defaults: DOMAIN.md."""

    ciwa_moderate_at: int = 10
    ciwa_severe_at: int = 19
    cows_mild_at: int = 5
    cows_moderate_at: int = 13
    cows_moderately_severe_at: int = 25
    cows_severe_at: int = 37
    cows_prescriber_at: int = 8


@dataclass(frozen=True)
class Triage:
    priority: Priority
    needs: tuple[str, ...]
    guidance: tuple[str, ...]
    risk_level: str | None = None
    reasons: tuple[str, ...] = ()


def triage_overdose(details: OverdoseDetails) -> Triage:
    """Every overdose is P1 and needs a naloxone carrier; with EMS not yet called, the first word is 911."""
    needs = ["naloxone_carrier"]
    guidance = []
    reasons = ["overdose: always P1"]
    if not details.ems_called:
        needs.append("ems_now")
        guidance.append(CALL_911)
        reasons.append("EMS not yet called")
    if details.responsive is False:
        guidance.append(
            "Give naloxone if you have it; if there is no response, "
            "give another dose every 2-3 minutes until EMS arrives."
        )
    if details.breathing is False:
        guidance.append("If trained, start rescue breathing.")
    guidance.append(STAY)
    return Triage(Priority.P1, tuple(needs), tuple(guidance), risk_level=None, reasons=tuple(reasons))


def ciwa_band(score: int, t: Thresholds) -> str:
    if score >= t.ciwa_severe_at:
        return "severe"
    return "moderate" if score >= t.ciwa_moderate_at else "mild"


def cows_band(score: int, t: Thresholds) -> str:
    if score >= t.cows_severe_at:
        return "severe"
    if score >= t.cows_moderately_severe_at:
        return "moderately_severe"
    if score >= t.cows_moderate_at:
        return "moderate"
    return "mild" if score >= t.cows_mild_at else "none"


def triage_withdrawal(details: WithdrawalDetails, t: Thresholds) -> Triage:
    ciwa, cows = details.ciwa_ar_score, details.cows_score
    band = ciwa_band(ciwa, t) if ciwa is not None else cows_band(cows, t) if cows is not None else None
    signs = [name for name in ("seizure", "delirium", "hallucinations") if getattr(details, name) is True]
    watch = "If the person has a seizure, becomes confused or sees things that are not there, call 911."
    if signs:
        return Triage(
            Priority.P1,
            ("ems_now", "medical_review"),
            (
                CALL_911,
                "Stay with the person. If they have a seizure, lay them on their side, clear the space around "
                "them and do not put anything in their mouth.",
            ),
            risk_level="complicated",
            reasons=(f"complicated withdrawal ({', '.join(signs)}): P1 with EMS",),
        )
    if ciwa is not None and ciwa >= t.ciwa_severe_at:
        return Triage(
            Priority.P2,
            ("medical_review",),
            (watch, STAY),
            risk_level=band,
            reasons=(f"CIWA-Ar {ciwa} >= {t.ciwa_severe_at}: urgent medical review",),
        )
    if cows is not None and cows >= t.cows_prescriber_at:
        return Triage(
            Priority.P2,
            ("prescriber",),
            (watch, STAY),
            risk_level=band,
            reasons=(f"COWS {cows} >= {t.cows_prescriber_at}: prescriber review for buprenorphine",),
        )
    if ciwa is not None and ciwa >= t.ciwa_moderate_at:
        return Triage(
            Priority.P3,
            ("nurse_or_prescriber",),
            (watch, STAY),
            risk_level=band,
            reasons=(f"CIWA-Ar {ciwa} >= {t.ciwa_moderate_at}: moderate, monitoring by a nurse or prescriber",),
        )
    if ciwa is None and cows is None:
        return Triage(
            Priority.P3,
            ("medical_review",),
            (watch, STAY),
            risk_level=None,
            reasons=("withdrawal without a score: someone who can score it goes",),
        )
    score = f"CIWA-Ar {ciwa}" if ciwa is not None else f"COWS {cows}"
    return Triage(Priority.P3, (), (watch, STAY), risk_level=band, reasons=(f"{score}: {band}",))


def self_harm_risk_level(details: SelfHarmRiskDetails) -> tuple[str, str]:
    """The C-SSRS screener risk (low / moderate / high) and the answer that decided it."""
    if details.q4 is True:
        return "high", "C-SSRS Q4 yes (intent)"
    if details.q5 is True:
        return "high", "C-SSRS Q5 yes (plan)"
    if details.q6_past_3_months is True:
        return "high", "C-SSRS Q6 yes within the past 3 months"
    if details.q3 is True:
        return "moderate", "C-SSRS Q3 yes (method)"
    if details.q6_ever:
        return "moderate", "C-SSRS Q6 yes, lifetime only"
    if details.q1 or details.q2:
        return "low", "C-SSRS Q1/Q2 only"
    return "low", "no C-SSRS screener answer was yes"


def triage_self_harm_risk(details: SelfHarmRiskDetails) -> Triage:
    level, why = self_harm_risk_level(details)
    if level == "high":
        return Triage(
            Priority.P1,
            ("licensed_clinician", "safety_precautions"),
            (
                "Stay with the person; do not leave them alone.",
                "If it is safe, move firearms, medicines and other means out of reach.",
                "If anyone is in immediate danger, call 911.",
                "A licensed clinician is being paged.",
            ),
            risk_level=level,
            reasons=(f"{why}: high risk, licensed clinician and safety precautions",),
        )
    if level == "moderate":
        return Triage(
            Priority.P2,
            ("licensed_clinician",),
            ("Stay with the person if you can.", LIFELINE_988, "A clinician is being paged."),
            risk_level=level,
            reasons=(f"{why}: moderate risk, licensed clinician",),
        )
    return Triage(
        Priority.P3,
        (),
        (LIFELINE_988, "A responder will follow up with a referral and a safety plan."),
        risk_level=level,
        reasons=(f"{why}: low risk, referral, 988 information and a safety plan",),
    )
