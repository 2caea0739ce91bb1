"""Triage: what a report needs and what the reporter must be told right now. Pure; thresholds are parameters.

The walking skeleton triages overdoses (always P1, DOMAIN.md). Withdrawal and self-harm-risk triage,
with CIWA-Ar, COWS and C-SSRS, arrive with the intake issue.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.contract.events import OverdoseDetails, Priority


@dataclass(frozen=True)
class Triage:
    priority: Priority
    needs: tuple[str, ...]
    guidance: tuple[str, ...]


def triage_overdose(details: OverdoseDetails) -> Triage:
    """Every overdose is P1 and needs a naloxone carrier; with EMS not yet called, the first word is 911."""
    needs = ["naloxone_carrier"]
    guidance = []
    if not details.ems_called:
        needs.append("ems_now")
        guidance.append("Call 911 now.")
    if details.responsive is False:
        guidance.append(
            "Give naloxone if you have it; if there is no response, "
            "give another dose every 2-3 minutes until EMS arrives."
        )
    if details.breathing is False:
        guidance.append("If trained, start rescue breathing.")
    guidance.append("Stay with the person. A responder is being paged.")
    return Triage(priority=Priority.P1, needs=tuple(needs), guidance=tuple(guidance))
