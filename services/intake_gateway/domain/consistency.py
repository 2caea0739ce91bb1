"""Intake rules that relate one answer to another. Pure. A broken rule is a 422 naming the field.

Ranges (a CIWA-Ar total is 0-67) are in the contract models; these rules are what a single field cannot say:

overdose
    ``responsive`` true with ``breathing`` false: a person who responds is breathing, so one answer is wrong
    (field ``breathing``). Unresponsive and breathing is common in an opioid overdose and is accepted.
withdrawal
    CIWA-Ar and COWS together: give one score (field ``cows_score``).
    A CIWA-Ar score for an opioid withdrawal (``ciwa_ar_score``) or a COWS score for an alcohol withdrawal
    (``cows_score``): the scale does not measure that withdrawal. Either scale is accepted for "other".
self_harm_risk (the C-SSRS screener's own skip logic)
    Q3, Q4 and Q5 are asked only after a yes to Q2: each must be answered then, and must not be yes after a
    no to Q2. The past-3-months part of Q6 is asked after a yes to Q6 ever: it must be answered then, and
    cannot be yes after a no to Q6 ever. Unanswered questions are refused rather than guessed, because a
    missing Q4 or Q5 could hide a high risk.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.contract.events import OverdoseDetails, SelfHarmRiskDetails, WithdrawalDetails


@dataclass(frozen=True)
class Contradiction:
    field: str  # the offending field of the details, e.g. "cows_score"
    message: str


def overdose_contradictions(details: OverdoseDetails) -> list[Contradiction]:
    if details.responsive is True and details.breathing is False:
        return [Contradiction("breathing", "a person who is responsive is breathing: check both answers")]
    return []


def withdrawal_contradictions(details: WithdrawalDetails) -> list[Contradiction]:
    found = []
    if details.ciwa_ar_score is not None and details.cows_score is not None:
        found.append(Contradiction("cows_score", "give one score: CIWA-Ar for alcohol withdrawal or COWS for opioids"))
    if details.substance == "opioid" and details.ciwa_ar_score is not None:
        found.append(Contradiction("ciwa_ar_score", "CIWA-Ar scores alcohol withdrawal; score opioids with COWS"))
    if details.substance == "alcohol" and details.cows_score is not None:
        found.append(Contradiction("cows_score", "COWS scores opioid withdrawal; score alcohol with CIWA-Ar"))
    return found


def self_harm_contradictions(details: SelfHarmRiskDetails) -> list[Contradiction]:
    found = []
    for name in ("q3", "q4", "q5"):
        answer = getattr(details, name)
        if details.q2 and answer is None:
            found.append(Contradiction(name, f"{name.upper()} must be answered after a yes to Q2"))
        elif not details.q2 and answer is True:
            found.append(Contradiction(name, f"{name.upper()} is asked only after a yes to Q2, which was no"))
    if details.q6_ever and details.q6_past_3_months is None:
        found.append(Contradiction("q6_past_3_months", "say whether it was in the past 3 months (Q6 ever is yes)"))
    elif not details.q6_ever and details.q6_past_3_months is True:
        found.append(Contradiction("q6_past_3_months", "yes in the past 3 months contradicts no to Q6 ever"))
    return found
