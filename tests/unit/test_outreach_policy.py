"""The outreach series' policy (issue 19, ``domain/outreach.py``): what follows each attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.projections.domain.outreach import AfterAttempt, OutreachPolicy, after_attempt

AT = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
POLICY = OutreachPolicy()


def test_after_each_attempt() -> None:
    rule = "post_overdose_outreach"  # 4 attempts by default
    assert after_attempt(POLICY, rule, 1, False, AT) == AfterAttempt(AT + timedelta(hours=24), "text")
    assert after_attempt(POLICY, rule, 3, False, AT) == AfterAttempt(AT + timedelta(hours=24), "call")
    assert after_attempt(POLICY, rule, 4, False, AT) == AfterAttempt(unreachable=True)
    assert after_attempt(POLICY, rule, 4, True, AT).unreachable is False  # reached once: a person ends it
    assert after_attempt(POLICY, "medical_review", 1, False, AT) == AfterAttempt()  # not a series
    tight = OutreachPolicy(attempts={"caring_contact": 1}, spacing=timedelta(hours=6), channels=("visit",))
    assert after_attempt(tight, "caring_contact", 1, False, AT) == AfterAttempt(unreachable=True)
    assert tight.channel_for(7) == "visit"
