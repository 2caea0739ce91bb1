"""Triage: priority, needs and what the reporter must be told right now. The rules moved to
``services/contract/triage.py`` (shared with the re-assessment on the incident page); they are re-exported here so
the gateway reads them where it always did."""

from __future__ import annotations

from services.contract.triage import (
    CALL_911,
    LIFELINE_988,
    STAY,
    Thresholds,
    Triage,
    ciwa_band,
    cows_band,
    self_harm_risk_level,
    triage_overdose,
    triage_self_harm_risk,
    triage_withdrawal,
)

__all__ = [
    "CALL_911",
    "LIFELINE_988",
    "STAY",
    "Thresholds",
    "Triage",
    "ciwa_band",
    "cows_band",
    "self_harm_risk_level",
    "triage_overdose",
    "triage_self_harm_risk",
    "triage_withdrawal",
]
