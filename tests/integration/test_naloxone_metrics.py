"""The directors' metrics count naloxone kits left behind by service zone and month (the organisation's month), in
the JSON metrics and on the metrics page. Over a real nats-server and a real port."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from services.contract.events import Envelope, NaloxoneLeftBehind, NaloxoneLeftBehindData, new_event
from services.projections.domain.metrics import KitsLeftRow, kits_left_behind
from tests.factories import T0
from tests.integration.test_projections import Story, publish_all, signed_in, workspace
from tests.support.documents import page_text


def left_behind(story: Story, responder_id: UUID, count: int, zone: str | None, at: datetime) -> Envelope:
    data = NaloxoneLeftBehindData(
        incident_id=story.incident_id, responder_id=responder_id, count=count, lot="AB12", zone=zone
    )
    return new_event(
        NaloxoneLeftBehind, data, event_id=uuid4(), occurred_at=at, producer="dispatcher", incident_id=story.incident_id
    )


def test_kits_are_counted_by_the_organisations_month_and_zone() -> None:
    denver = ZoneInfo("America/Denver")
    rows = [
        KitsLeftRow("a", datetime.fromisoformat("2026-11-23T09:00:00+00:00"), 2, "central"),
        KitsLeftRow("a", datetime.fromisoformat("2026-11-23T09:30:00+00:00"), 1, "central"),
        KitsLeftRow("b", datetime.fromisoformat("2026-12-01T03:00:00+00:00"), 1, "central"),  # 30 Nov in Denver
        KitsLeftRow("c", datetime.fromisoformat("2026-12-02T18:00:00+00:00"), 3, None),
    ]
    assert kits_left_behind(rows, denver) == [
        {"month": "2026-11", "zone": "central", "kits": 4, "incidents": 2},
        {"month": "2026-12", "zone": "unzoned", "kits": 3, "incidents": 1},
        {"month": "all", "zone": "all", "kits": 7, "incidents": 3},
    ]
    assert kits_left_behind([], denver) == [{"month": "all", "zone": "all", "kits": 0, "incidents": 0}]


async def test_the_metrics_show_kits_left_behind_by_zone_and_month(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        coach = space.people["coach"]
        november, late_november, december = Story(code="4821"), Story(code="4822"), Story(code="4823")
        events = [
            *november.full_response(coach, ack=1, en_route=2, arrive=12, done=40),
            left_behind(november, coach.responder_id, 2, "central", T0 + timedelta(minutes=35)),
            late_november.reported(),
            left_behind(late_november, coach.responder_id, 1, "central", datetime.fromisoformat("2026-12-01T03:00Z")),
            december.reported(),
            left_behind(december, coach.responder_id, 3, "north", datetime.fromisoformat("2026-12-10T18:00Z")),
        ]
        await publish_all(js, events)
        await space.settled(js)
        async with space.client("director") as director:
            everything = (await director.get("/v1/metrics")).json()
            december_only = (await director.get("/v1/metrics", params={"since": "2026-12-05T00:00:00Z"})).json()
        page = await signed_in(space, "dr-director", "director")
        try:
            shown = (await page.get("/workspace/metrics")).text
        finally:
            await page.aclose()
    assert everything["kits_left_behind"] == [
        {"month": "2026-11", "zone": "central", "kits": 3, "incidents": 2},
        {"month": "2026-12", "zone": "north", "kits": 3, "incidents": 1},
        {"month": "all", "zone": "all", "kits": 6, "incidents": 3},
    ]
    assert december_only["kits_left_behind"][0] == {"month": "2026-12", "zone": "north", "kits": 3, "incidents": 1}
    table = shown.split('id="kits-left-behind"')[1].split("</table>")[0]
    rows = [page_text(row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>")[1], re.S)]
    assert rows == ["November 2026 central 3 2", "December 2026 north 3 1", "All months All zones 6 3"]
