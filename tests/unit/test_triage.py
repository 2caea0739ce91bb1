from __future__ import annotations

from services.contract.events import OverdoseDetails, Priority
from services.intake_gateway.domain.triage import triage_overdose


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
