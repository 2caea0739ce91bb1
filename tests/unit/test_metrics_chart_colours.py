"""The follow-up chart's colours mean what they say: overdue is red, not yet due is neutral, on time is green."""

from __future__ import annotations

import re

from services.projections.adapters.html_pages import _metric_charts
from services.projections.adapters.svg_charts import BAD, GOOD, LATE, WAITING


def legend_colours(svg: str) -> dict[str, str]:
    """Legend label -> the fill of the square drawn just before it."""
    pairs = re.findall(
        r'<rect x="[^"]+" y="[^"]+" width="10" height="10" fill="(#[0-9a-f]{6})"/><text[^>]*>([^<]+)</text>', svg
    )
    return {label: fill for fill, label in pairs}


def test_overdue_follow_ups_are_red_and_open_ones_not_yet_due_are_neutral() -> None:
    empty_group = {"key": "all"}
    metrics = {
        "by_priority": [empty_group],
        "by_zone": [empty_group],
        "by_week": [empty_group],
        "sla": {},
        "follow_ups": {"done_on_time": 3, "done_late": 1, "open_overdue": 2, "open_not_due": 4},
    }
    follow_ups = next(str(c) for c in _metric_charts(metrics) if "Follow-up tasks" in str(c))
    assert legend_colours(follow_ups) == {
        "done on time": GOOD,
        "done late": LATE,
        "open, overdue": BAD,
        "open, not due": WAITING,
    }
