"""The outcome figures (issue 19's must-show): on a seeded history published to a real stream and read by the
projections service, ``GET /v1/outcomes`` equals an independent recomputation that replays the raw stream through
a separate, simple script (``recount`` below, written from the README's definitions, sharing no code with
``domain/outcomes.py``); the figures are unchanged by a rebuild of the read models; the CSV export carries the same
rows; the page shows them to a director and refuses anyone else (403, audited)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from services.contract.events import (
    CrisisKind,
    DispatchUnfilled,
    DispatchUnfilledData,
    DocumentationFields,
    DocumentationFieldsCompleted,
    DocumentationFieldsCompletedData,
    FollowUpAttemptRecorded,
    FollowUpAttemptRecordedData,
    FollowUpCompleted,
    FollowUpCompletedData,
    FollowUpSeriesEnded,
    FollowUpSeriesEndedData,
    MoudBridgeRecorded,
    MoudBridgeRecordedData,
    PersonIncidentLinkData,
    PersonIncidentLinked,
    SelfHarmRiskDetails,
    new_event,
)
from services.projections.bootstrap import build_projections
from services.projections.domain.followups import task_id_for
from services.projections.domain.outcomes import OUTCOME_TYPES, outcome_figures
from services.projections.rebuild import replay_into
from services.runtime.clock import ManualClock
from tests.integration.test_projections import T0, Story, workspace
from tests.support.stream import publish_all, stream_events

NOW = T0 + timedelta(days=400)
DAY = timedelta(days=1)
RULE = "post_overdose_outreach"


def _ev(cls: Any, data: Any, at: datetime, incident_id: UUID) -> Any:
    return new_event(cls, data, event_id=uuid4(), occurred_at=at, producer="projections", incident_id=incident_id)


def attempt(story: Story, at: datetime, number: int, reached: bool, accepted: tuple[str, ...] = ()) -> Any:
    data = FollowUpAttemptRecordedData(
        task_id=task_id_for(story.incident_id, RULE), incident_id=story.incident_id, number=number, channel="visit",
        reached=reached, offered=list(accepted), accepted=list(accepted), recorded_by="dr-director",
    )  # fmt: skip
    return _ev(FollowUpAttemptRecorded, data, at, story.incident_id)


def linked(person: UUID, story: Story, at: datetime) -> Any:
    data = PersonIncidentLinkData(person_id=person, incident_id=story.incident_id, actor="dr-director")
    return _ev(PersonIncidentLinked, data, at, story.incident_id)


def seeded(space: Any) -> tuple[list[Any], dict[str, Story]]:
    """A year of incidents whose figures are known by construction."""
    coach = space.people["coach"]
    s = {
        "A": Story(start=T0, code="1001"),  # reached in 2 days; MOUD start on day 10; another overdose on day 20
        "B": Story(start=T0 + DAY, code="1002"),  # reached only on day 5: too late for 72 h
        "C": Story(start=T0 + 2 * DAY, code="1003"),  # died: no survivor
        "D": Story(start=NOW - DAY, code="1004"),  # yesterday: its 72 h have not passed
        "E": Story(start=T0 + 3 * DAY, code="1005"),  # a task completed as contact made after 1 day
        "F": Story(start=T0 + 20 * DAY, code="1006"),  # A's person again, 20 days later
        "G": Story(
            start=T0 + 100 * DAY,
            code="1007",
            kind=CrisisKind.SELF_HARM_RISK,
            overdose=None,
            self_harm=SelfHarmRiskDetails(q1=True, q2=False, q6_ever=False),
        ),  # fmt: skip  # E's person, 97 days later
    }
    events: list[Any] = []
    for story in s.values():
        events += [story.reported(), *story.offered(coach, 0.5)]
    a, b, c, e = s["A"], s["B"], s["C"], s["E"]
    events += [
        attempt(a, a.start + 2 * DAY, 1, True),
        attempt(a, a.start + 10 * DAY, 2, True, ("moud_start", "naloxone_kit")),
        _ev(
            FollowUpSeriesEnded,
            FollowUpSeriesEndedData(
                task_id=task_id_for(a.incident_id, RULE),
                incident_id=a.incident_id,
                outcome="engaged_in_care",
                attempts=2,
                ended_by="dr-director",
            ),
            a.start + 11 * DAY,
            a.incident_id,
        ),  # fmt: skip
        attempt(b, b.start + DAY, 1, False),
        attempt(b, b.start + 5 * DAY, 2, True),
        _ev(
            FollowUpSeriesEnded,
            FollowUpSeriesEndedData(
                task_id=task_id_for(b.incident_id, RULE),
                incident_id=b.incident_id,
                outcome="declined",
                attempts=2,
                ended_by="dr-director",
            ),
            b.start + 6 * DAY,
            b.incident_id,
        ),  # fmt: skip
        _ev(
            DocumentationFieldsCompleted,
            DocumentationFieldsCompletedData(
                incident_id=c.incident_id,
                fields=DocumentationFields(disposition="deceased"),
                completed_by="dr-director",
            ),
            c.start + timedelta(hours=2),
            c.incident_id,
        ),  # fmt: skip
        _ev(
            FollowUpCompleted,
            FollowUpCompletedData(
                task_id=task_id_for(e.incident_id, RULE),
                incident_id=e.incident_id,
                outcome="contact_made",
                completed_by="dr-director",
            ),
            e.start + DAY,
            e.incident_id,
        ),  # fmt: skip
        attempt(s["D"], NOW - timedelta(hours=12), 1, False),  # a series in progress
        _ev(
            MoudBridgeRecorded,
            MoudBridgeRecordedData(
                bridge_id=uuid4(),
                incident_id=b.incident_id,
                dose_mg=8,
                dose_given_at=b.start + 3 * DAY,
                appointment_at=b.start + 4 * DAY,
                recorded_by="dr",
            ),
            b.start + 3 * DAY,
            b.incident_id,
        ),  # fmt: skip  # B's first MOUD dose on day 3
    ]
    one, two = uuid4(), uuid4()
    events += [linked(one, a, a.start), linked(one, s["F"], s["F"].start), linked(two, e, e.start)]
    events += [linked(two, s["G"], s["G"].start)]
    for story, hour in ((b, 3), (e, 3), (s["G"], 14)):
        data = DispatchUnfilledData(incident_id=story.incident_id, reason="nobody", shortfalls=["nobody_on_call"])
        events.append(_ev(DispatchUnfilled, data, story.start + timedelta(hours=hour), story.incident_id))
    return events, s


def recount(events: list[Any], now: datetime, zone: Any) -> dict[str, Any]:
    """The README's definitions, counted the plain way from the raw stream (no code shared with the service)."""
    reports = {e.incident_id: e for e in events if e.type == "incident.reported"}
    of = {i: [e for e in events if e.incident_id == i] for i in reports}

    def died(i: UUID) -> bool:
        for e in of[i]:
            if e.type == "incident.cancelled":
                return True
            if e.type == "documentation.fields_completed" and e.data.fields.disposition in (
                "deceased", "false_alarm", "unable_to_locate",
            ):  # fmt: skip
                return True
        return False

    def contact_times(i: UUID) -> list[datetime]:
        times = []
        for e in of[i]:
            if e.type == "followup.attempt_recorded" and e.data.reached:
                times.append(e.occurred_at)
            if e.type == "followup.completed" and e.data.outcome in ("contact_made", "referred"):
                times.append(e.occurred_at)
            if e.type == "followup.series_ended" and e.data.outcome == "engaged_in_care":
                times.append(e.occurred_at)
        return times

    def moud_times(i: UUID) -> list[datetime]:
        times = [
            e.occurred_at for e in of[i]
            if e.type == "followup.attempt_recorded" and {"moud_start", "bridge_prescription"} & set(e.data.accepted)
        ]  # fmt: skip
        return times + [
            e.data.dose_given_at for e in of[i] if e.type == "moud.bridge_recorded" and e.data.dose_given_at
        ]

    def ratio(ids: list[UUID], times: Any, window: timedelta) -> tuple[set[str], set[str]]:
        yes, no = set(), set()
        for i in ids:
            start = reports[i].occurred_at
            if [t for t in times(i) if start <= t <= start + window]:
                yes.add(str(i))
            elif now >= start + window:
                no.add(str(i))
        return yes, no

    survivors = [i for i in reports if not died(i)]
    overdoses = [i for i in survivors if reports[i].data.kind.value == "overdose"]
    moud_group = [i for i in survivors if reports[i].data.kind.value in ("overdose", "withdrawal")]
    people: dict[UUID, set[UUID]] = {}
    for e in events:
        if e.type == "person.incident_linked":
            people.setdefault(e.data.person_id, set()).add(e.data.incident_id)
        if e.type == "person.incident_unlinked":
            people.setdefault(e.data.person_id, set()).discard(e.data.incident_id)
    repeats = {}
    for days in (30, 90, 365):
        for label in ("any", "overdose"):
            yes, no = set(), set()
            for ids in people.values():
                for i in ids:
                    if label == "overdose" and reports[i].data.kind.value != "overdose":
                        continue
                    start = reports[i].occurred_at
                    others = [
                        j for j in ids if j != i and start < reports[j].occurred_at <= start + timedelta(days=days)
                        and (label == "any" or reports[j].data.kind.value == "overdose")
                    ]  # fmt: skip
                    if others:
                        yes.add(str(i))
                    elif now >= start + timedelta(days=days):
                        no.add(str(i))
            repeats[f"{label}_{days}d"] = (yes, no)
    ended: dict[str, str] = {}
    tried = set()
    for e in events:
        if e.type == "followup.series_ended" and str(e.data.task_id) not in ended:
            ended[str(e.data.task_id)] = e.data.outcome
        if e.type == "followup.attempt_recorded":
            tried.add(str(e.data.task_id))
    outcomes: dict[str, int] = {}
    for outcome in ended.values():
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    unmet: dict[tuple[str, int], int] = {}
    for e in events:
        if e.type == "dispatch.unfilled":
            key = (reports[e.incident_id].data.zone or "outside every zone", e.occurred_at.astimezone(zone).hour)
            unmet[key] = unmet.get(key, 0) + 1
    load: dict[tuple[str, str], list[int]] = {}
    for e in events:
        if e.type == "dispatch.offered":
            local = e.occurred_at.astimezone(zone)
            row = load.setdefault((str(e.data.responder_id), local.strftime("%Y-%m")), [0, 0])
            row[0] += 1
            row[1] += local.weekday() >= 5 or local.hour < 8 or local.hour >= 18
    return {
        "contacted_72h": ratio(overdoses, contact_times, timedelta(hours=72)),
        "moud_30d": ratio(moud_group, moud_times, timedelta(days=30)),
        "repeat_crisis": repeats,
        "series_outcomes": {"ended": outcomes, "in_progress": len(tried - set(ended))},
        "unmet": sorted((z, h, n) for (z, h), n in unmet.items()),
        "load": sorted((r, m, n, late) for (r, m), (n, late) in load.items()),
    }


def ids(figure: dict[str, Any]) -> tuple[set[str], set[str]]:
    return {i["incident_id"] for i in figure["counted"]}, {i["incident_id"] for i in figure["not_counted"]}


def same_figures(api: dict[str, Any], plain: dict[str, Any]) -> None:
    for name in ("contacted_72h", "moud_30d"):
        assert ids(api[name]) == plain[name], name
        assert api[name]["numerator"] == len(plain[name][0])
    for window, expected in plain["repeat_crisis"].items():
        assert ids(api["repeat_crisis"][window]) == expected, window
    assert api["series_outcomes"] == plain["series_outcomes"]
    assert [(c["zone"], c["hour"], c["unfilled"]) for c in api["unmet_demand"]["by_zone_and_hour"]] == plain["unmet"]
    load = [(r["responder_id"], r["month"], r["pages"], r["after_hours"]) for r in api["responder_load"]]
    assert load == plain["load"]


async def test_the_figures_equal_a_plain_recount_of_the_stream_and_survive_a_rebuild(js, nats_server, tmp_path) -> None:
    clock = ManualClock(NOW)
    async with workspace(js, nats_server, tmp_path, clock=clock) as space:
        history, s = seeded(space)
        await publish_all(js, history)
        await space.settled(js)
        async with space.client("director") as director, space.client("clinician") as clinician:
            answer = await director.get("/v1/outcomes")
            assert answer.status_code == 200, answer.text
            api = answer.json()
            exported = await director.get("/v1/outcomes.csv", params={"figure": "contacted_72h"})
            unknown = await director.get("/v1/outcomes.csv", params={"figure": "happiness"})
            refused = await clinician.get("/v1/outcomes")
        stream = await stream_events(js, 1)
        zone = space.settings.time_zone()
        plain = recount(stream, NOW, zone)
        same_figures(api, plain)

        # what the seeded history says by construction, so the recount itself is checked too
        a, b, d, e = (str(s[k].incident_id) for k in "ABDE")
        assert ids(api["contacted_72h"]) == ({a, e}, {b, str(s["F"].incident_id)})  # C died; D is too recent
        assert ids(api["moud_30d"])[0] == {a, b}
        assert ids(api["repeat_crisis"]["any_30d"])[0] == {a} and ids(api["repeat_crisis"]["any_365d"])[0] == {a, e}
        assert ids(api["repeat_crisis"]["overdose_90d"])[0] == {a}
        assert api["series_outcomes"] == {"ended": {"declined": 1, "engaged_in_care": 1}, "in_progress": 1}
        assert sum(c["unfilled"] for c in api["unmet_demand"]["by_zone_and_hour"]) == 3
        assert sum(r["pages"] for r in api["responder_load"]) == len(s)

        rows = list(csv.reader(io.StringIO(exported.text)))
        assert exported.headers["content-type"].startswith("text/csv")
        assert rows[0] == ["incident_id", "incident_code", "counted"]
        assert {(r[0], r[2]) for r in rows[1:]} == {(a, "yes"), (e, "yes"), (b, "no"), (str(s["F"].incident_id), "no")}
        assert unknown.status_code == 422
        assert refused.status_code == 403
        denied = [r for r in space.read_models.audit.query(limit=1000) if r["action"] == "outcomes"]
        assert {r["outcome"] for r in denied} == {"read", "denied"}

        rebuilt_settings = space.settings.model_copy(update={"var_dir": tmp_path / "rebuilt"})
        rebuilt_settings.var_dir.mkdir()
        with build_projections(rebuilt_settings, clock, lambda subject: None) as rebuilt:
            await replay_into(js, rebuilt, reset=True)
            again = outcome_figures(rebuilt.store.events_of_types(OUTCOME_TYPES), NOW, zone)
        for name in ("contacted_72h", "moud_30d", "repeat_crisis", "series_outcomes", "unmet_demand"):
            assert again[name] == api[name] or _jsonish(again[name]) == api[name], name


def _jsonish(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
