"""The outcome figures as CSV, one figure a file (issue 19): the rows behind each figure, so a director can
recount it in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any, Literal, get_args

FigureName = Literal["contacted_72h", "moud_30d", "repeat_crisis", "series_outcomes", "unmet_demand", "responder_load"]
FIGURES: tuple[str, ...] = get_args(FigureName)


def _ratio_rows(figure: Mapping[str, Any], extra: tuple[str, ...] = ()) -> list[list[Any]]:
    return [
        [*extra, item["incident_id"], item["code"] or "", counted]
        for counted, key in (("yes", "counted"), ("no", "not_counted"))
        for item in figure[key]
    ]


def outcome_csv(figures: Mapping[str, Any], name: str) -> str:
    """``name`` one of ``FIGURES`` (else KeyError)."""
    if name not in FIGURES:
        raise KeyError(name)
    if name in ("contacted_72h", "moud_30d"):
        header, rows = ["incident_id", "incident_code", "counted"], _ratio_rows(figures[name])
    elif name == "repeat_crisis":
        header = ["window", "incident_id", "incident_code", "repeated"]
        rows = [row for window, f in figures[name].items() for row in _ratio_rows(f, (window,))]
    elif name == "series_outcomes":
        header = ["outcome", "series"]
        rows = [[o, n] for o, n in figures[name]["ended"].items()] + [["in_progress", figures[name]["in_progress"]]]
    elif name == "unmet_demand":
        header = ["zone", "local_hour", "unfilled"]
        rows = [[c["zone"], c["hour"], c["unfilled"]] for c in figures[name]["by_zone_and_hour"]]
    else:
        header = ["responder_id", "name", "month", "pages", "after_hours"]
        rows = [
            [r["responder_id"], r.get("name") or "", r["month"], r["pages"], r["after_hours"]] for r in figures[name]
        ]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
