"""Referral to admission, for directors (issue 17): of the referrals sent in a period, how many ended in an
admission, and how long that took (median and 90th percentile hours from ``referral.sent`` to the confirmed
arrival), with the referrals behind the figure (drill-down).

Pure. Numerator: referrals sent in the period whose arrival was confirmed (at any time since). Denominator:
referrals sent in the period, cancelled ones included (a cancel is an outcome too) and listed by state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from services.projections.domain.metrics import percentile
from services.projections.domain.referral import ReferralView


def referral_to_admission(
    views: Iterable[ReferralView], since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    chosen = [v for v in views if (since is None or v.sent_at >= since) and (until is None or v.sent_at < until)]
    admitted = [v for v in chosen if v.admitted_at is not None]
    hours = sorted((v.admitted_at - v.sent_at).total_seconds() / 3600 for v in admitted)  # type: ignore[operator]
    return {
        "sent": len(chosen),
        "admitted": len(admitted),
        "admitted_share": round(len(admitted) / len(chosen), 3) if chosen else None,
        "median_hours": round(percentile(hours, 50), 2) if hours else None,
        "p90_hours": round(percentile(hours, 90), 2) if hours else None,
        "by_state": dict(sorted(Counter(v.state.value for v in chosen).items())),
        "referrals": [
            {
                "referral_id": v.referral_id,
                "incident_id": v.incident_id,
                "code": v.code,
                "level_of_care": v.level_of_care,
                "state": v.state.value,
                "sent_at": v.sent_at,
                "admitted_at": v.admitted_at,
                "hours_to_admission": round((v.admitted_at - v.sent_at).total_seconds() / 3600, 2)
                if v.admitted_at
                else None,
            }
            for v in sorted(chosen, key=lambda v: v.sent_at)
        ],
    }
