"""The outcome figures directors answer for (issue 19 section 4), from the incidents' events: each with its
numerator, its denominator and the incidents behind both, so every figure can be checked by hand.

Definitions (the README repeats them):

- **contacted_72h**: survivors of an overdose (an ``overdose`` report, not cancelled, no disposition of deceased,
  false alarm or unable to locate) reached by a follow-up within 72 h of the report: an outreach attempt that
  reached the person, a task completed as contact made or referred, or a series ended as engaged in care, at most
  72 h after the report. Counted once 72 h have passed (or once reached).
- **moud_30d**: survivors of an overdose or a withdrawal with a first MOUD dose within 30 days of the report: a
  bridge dose given (``moud.bridge_recorded``), or an outreach attempt that recorded an MOUD start or a bridge
  prescription accepted. Counted once 30 days have passed (or once started).
- **series_outcomes**: outreach series ended, by outcome (the first end of each task), and series in progress
  (tasks with attempts and no end).
- **repeat_crisis**: for each incident linked to a person, whether another incident of the same person was
  reported within 30, 90 and 365 days after it (any crisis; and overdose after overdose). Counted once the window
  has passed (or once repeated).
- **unmet_demand**: ``dispatch.unfilled`` (nobody could be paged at a step) by the incident's service zone and the
  local hour it happened, and by shortfall.
- **responder_load**: pages (``dispatch.offered``) per responder per local month, and how many of them after hours
  (before 08:00, from 18:00, or on a weekend, local time).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

OUTCOME_TYPES = (
    "incident.reported",
    "incident.cancelled",
    "documentation.fields_completed",
    "followup.created",
    "followup.completed",
    "followup.attempt_recorded",
    "followup.series_ended",
    "person.incident_linked",
    "person.incident_unlinked",
    "dispatch.unfilled",
    "dispatch.offered",
    "moud.bridge_recorded",
)
"""The event types the figures are computed from."""
NOT_SURVIVED = frozenset({"deceased", "false_alarm", "unable_to_locate"})
CONTACT_OUTCOMES = frozenset({"contact_made", "referred"})
MOUD = frozenset({"moud_start", "bridge_prescription"})
WINDOWS = (30, 90, 365)


@dataclass
class Incident:
    incident_id: str
    kind: str
    reported_at: datetime
    zone: str | None
    code: str | None
    cancelled: bool = False
    disposition: str | None = None
    contacts: list[datetime] = field(default_factory=list)
    moud: list[datetime] = field(default_factory=list)

    @property
    def survived(self) -> bool:
        return not self.cancelled and self.disposition not in NOT_SURVIVED


@dataclass(frozen=True)
class Figure:
    counted: tuple[str, ...]  # incident ids in the numerator
    not_counted: tuple[str, ...]  # in the denominator, not the numerator

    def json(self, codes: Mapping[str, str | None]) -> dict[str, Any]:
        numerator, denominator = len(self.counted), len(self.counted) + len(self.not_counted)
        return {
            "numerator": numerator,
            "denominator": denominator,
            "rate": round(numerator / denominator, 4) if denominator else None,
            "counted": [{"incident_id": i, "code": codes.get(i)} for i in self.counted],
            "not_counted": [{"incident_id": i, "code": codes.get(i)} for i in self.not_counted],
        }


def incidents_from(events: Iterable[Mapping[str, Any]]) -> dict[str, Incident]:
    incidents: dict[str, Incident] = {}
    for e in events:
        data, key = e["data"], str(e["incident_id"])
        if e["type"] == "incident.reported" and key not in incidents:
            zone = data.get("zone") or (data.get("location") or {}).get("zone")
            incidents[key] = Incident(key, data["kind"], e["occurred_at"], zone, data.get("short_code"))
            continue
        incident = incidents.get(key)
        if incident is None:
            continue
        if e["type"] == "incident.cancelled":
            incident.cancelled = True
        elif e["type"] == "documentation.fields_completed":
            incident.disposition = (data.get("fields") or {}).get("disposition") or incident.disposition
        elif e["type"] == "followup.attempt_recorded":
            if data.get("reached"):
                incident.contacts.append(e["occurred_at"])
            if MOUD & set(data.get("accepted") or ()):
                incident.moud.append(e["occurred_at"])
        elif e["type"] == "moud.bridge_recorded" and data.get("dose_given_at"):
            incident.moud.append(datetime.fromisoformat(str(data["dose_given_at"]).replace("Z", "+00:00")))
        elif e["type"] == "followup.completed" and data.get("outcome") in CONTACT_OUTCOMES:
            incident.contacts.append(e["occurred_at"])
        elif e["type"] == "followup.series_ended" and data.get("outcome") == "engaged_in_care":
            incident.contacts.append(e["occurred_at"])
    return incidents


def _within(incidents: Iterable[Incident], times: str, window: timedelta, now: datetime) -> Figure:
    counted, not_counted = [], []
    for incident in incidents:
        deadline = incident.reported_at + window
        if any(incident.reported_at <= t <= deadline for t in getattr(incident, times)):
            counted.append(incident.incident_id)
        elif now >= deadline:
            not_counted.append(incident.incident_id)
    return Figure(tuple(counted), tuple(not_counted))


def _series(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    ended: dict[str, str] = {}
    attempted: set[str] = set()
    for e in events:
        task = str(e["data"].get("task_id"))
        if e["type"] == "followup.series_ended":
            ended.setdefault(task, e["data"]["outcome"])
        elif e["type"] == "followup.attempt_recorded":
            attempted.add(task)
    return {"ended": dict(sorted(Counter(ended.values()).items())), "in_progress": len(attempted - set(ended))}


def _people(events: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    linked: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e["type"] == "person.incident_linked":
            linked[str(e["data"]["person_id"])].add(str(e["data"]["incident_id"]))
        elif e["type"] == "person.incident_unlinked":
            linked[str(e["data"]["person_id"])].discard(str(e["data"]["incident_id"]))
    return linked


def _repeats(people: Mapping[str, set[str]], incidents: Mapping[str, Incident], now: datetime) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for days in WINDOWS:
        window = timedelta(days=days)
        for label, kinds in (("any", None), ("overdose", "overdose")):
            counted, not_counted = [], []
            for ids in people.values():
                mine = sorted((incidents[i] for i in ids if i in incidents), key=lambda i: i.reported_at)
                for incident in mine:
                    if kinds and incident.kind != kinds:
                        continue
                    later = [
                        j
                        for j in mine
                        if j is not incident
                        and incident.reported_at < j.reported_at <= incident.reported_at + window
                        and (not kinds or j.kind == kinds)
                    ]
                    if later:
                        counted.append(incident.incident_id)
                    elif now >= incident.reported_at + window:
                        not_counted.append(incident.incident_id)
            result[f"{label}_{days}d"] = Figure(tuple(counted), tuple(not_counted))
    return result


def _unmet(events: Iterable[Mapping[str, Any]], incidents: Mapping[str, Incident], zone: tzinfo) -> dict[str, Any]:
    cells: Counter[tuple[str, int]] = Counter()
    shortfalls: Counter[str] = Counter()
    for e in events:
        if e["type"] != "dispatch.unfilled":
            continue
        incident = incidents.get(str(e["incident_id"]))
        place = (incident.zone if incident else None) or "outside every zone"
        cells[(place, e["occurred_at"].astimezone(zone).hour)] += 1
        shortfalls.update(e["data"].get("shortfalls") or ["unspecified"])
    return {
        "by_zone_and_hour": [{"zone": z, "hour": h, "unfilled": n} for (z, h), n in sorted(cells.items())],
        "by_shortfall": dict(sorted(shortfalls.items())),
    }


def after_hours(at: datetime, zone: tzinfo) -> bool:
    local = at.astimezone(zone)
    return local.weekday() >= 5 or local.hour < 8 or local.hour >= 18


def _load(events: Iterable[Mapping[str, Any]], zone: tzinfo) -> list[dict[str, Any]]:
    pages: Counter[tuple[str, str]] = Counter()
    late: Counter[tuple[str, str]] = Counter()
    for e in events:
        if e["type"] != "dispatch.offered":
            continue
        key = (str(e["data"]["responder_id"]), e["occurred_at"].astimezone(zone).strftime("%Y-%m"))
        pages[key] += 1
        late[key] += after_hours(e["occurred_at"], zone)
    return [
        {"responder_id": r, "month": m, "pages": n, "after_hours": late[(r, m)]} for (r, m), n in sorted(pages.items())
    ]


def outcome_figures(events: list[Mapping[str, Any]], now: datetime, zone: tzinfo) -> dict[str, Any]:
    """Every figure, as JSON: ``events`` are the incidents' events of ``OUTCOME_TYPES`` in stream order."""
    incidents = incidents_from(events)
    codes = {i.incident_id: i.code for i in incidents.values()}
    survivors = [i for i in incidents.values() if i.survived]
    overdoses = [i for i in survivors if i.kind == "overdose"]
    moud_group = [i for i in survivors if i.kind in ("overdose", "withdrawal")]
    repeats = _repeats(_people(events), incidents, now)
    return {
        "computed_at": now,
        "contacted_72h": _within(overdoses, "contacts", timedelta(hours=72), now).json(codes),
        "moud_30d": _within(moud_group, "moud", timedelta(days=30), now).json(codes),
        "series_outcomes": _series(events),
        "repeat_crisis": {name: figure.json(codes) for name, figure in repeats.items()},
        "unmet_demand": _unmet(events, incidents, zone),
        "responder_load": _load(events, zone),
    }
