"""The documentation's hand-off, filled from a closed-loop referral (issue 17): once a program confirmed the
person's arrival (``referral.admitted``), the hand-off organisation is that program, the receiving person its
intake (or the staff member who confirmed it), the hand-off time the admission, and, when no disposition was
entered, the disposition "referred to treatment". What a clinician entered always wins.

Pure; used by ``documentation.assemble_documentation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RECEIVED_BY = {"link": "intake desk (program link)", "sms": "intake desk (program text)"}


def handoff_from_referrals(events: Sequence[Any], fields: dict[str, Any]) -> str | None:
    """Fill ``fields``' hand-off from the last admitted referral (in place, only what is missing). Returns why the
    hand-off is still open when a referral was accepted but no arrival is confirmed (for the gap's label), else
    None."""
    admitted = [r.event for r in events if r.event.type == "referral.admitted"]
    if admitted:
        last = admitted[-1].data
        program = last.program_name or f"program {str(last.program_id)[:8]}"
        receiver = RECEIVED_BY.get(last.channel, last.actor)
        fields.setdefault("disposition", "referred_to_treatment")
        for name, value in (
            ("handoff_organisation", program),
            ("handoff_receiving_person", f"{receiver} at {program}" if last.channel != "app" else receiver),
            ("handed_off_at", last.admitted_at),
        ):
            if not fields.get(name):
                fields[name] = value
        return None
    sent = {r.event.data.referral_id: r.event.data.code for r in events if r.event.type == "referral.sent"}
    accepted = [r.event.data.referral_id for r in events if r.event.type == "referral.accepted"]
    cancelled = {r.event.data.referral_id for r in events if r.event.type == "referral.cancelled"}
    open_accepts = [sent.get(referral_id) for referral_id in accepted if referral_id not in cancelled]
    if open_accepts:
        return f"referral {open_accepts[-1] or ''} accepted, arrival not confirmed".replace("  ", " ")
    return None
