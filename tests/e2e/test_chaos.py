"""The small chaos run: reports across a seeded city while every service and the nats-server are SIGKILLed.

bench/chaos.py holds the harness and runs the large version; this runs its SMALL plan (about 100 s) and
holds the run to every promise it checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import SMALL, VICTIMS, describe, run_chaos

pytestmark = pytest.mark.e2e


async def test_no_incident_is_lost_and_no_page_dropped_while_everything_is_killed(tmp_path: Path) -> None:
    report = await run_chaos(SMALL, tmp_path)
    summary = describe(report)
    assert report.problems == [], summary
    # every victim died at least once, and the run still kept each promise
    assert set(report.kill_counts()) == set(VICTIMS), summary
    assert len(report.accepted) == SMALL.incidents, summary
    facts = report.facts
    assert facts["acknowledged"] + facts["escalated to the ladder's top"] == SMALL.incidents, summary
    assert facts["acknowledged"] > 0 and facts["escalated to the ladder's top"] > 0, summary
    assert facts["duplicate SMS"] <= facts["duplicate bound"], summary
    assert facts["replies on the stream"] >= report.answers > 0, summary
    assert facts["projections == rebuild"] is True, summary
    # check-ins ran through the kills: some climbed every step (each once, in order: else a problem above)
    assert facts["check-ins started"] > 0 and facts["check-ins that climbed to 911"] > 0, summary
