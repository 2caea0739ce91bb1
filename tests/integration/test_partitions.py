"""The dispatcher on partitions (issue 16): a durable per partition, exactly once, order per incident, a roster change
read by every partition in stream order, and a change of the partition count. Two instances sharing the partitions:
test_exactly_once.py::test_two_dispatcher_instances_never_double_page[4]."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.contract.events import PARTITIONS_ENV, partition_of, partition_token
from services.dispatcher.adapters.roster_seed import seed_events
from services.dispatcher.bootstrap import build as build_dispatcher
from services.dispatcher.settings import DispatcherSettings
from services.runtime.clock import ManualClock
from services.runtime.partitions import partition_upstream
from services.runtime.processor_service import running_processor
from services.runtime.stream import STREAM_NAME
from tests import factories
from tests.support.stream import publish_all, relayed, stream_events, taken_in

ROSTER = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "roster.json"
FIRST_STEP = ["clinician", "peer_coach"]  # the demo roster's first page of every incident: clinician A and peer B


async def dispatcher_durables(js) -> list[str]:  # noqa: ANN001
    return sorted(
        c.name for c in await js.consumers_info(STREAM_NAME) if re.fullmatch(r"dispatcher(-p\d+of\d+)?", c.name)
    )


async def all_taken_in(js) -> None:  # noqa: ANN001
    for durable in await dispatcher_durables(js):
        await taken_in(js, durable)


async def offers(js) -> dict:  # noqa: ANN001
    found: dict = {}
    for event in await stream_events(js):
        if event.type == "dispatch.offered":
            found.setdefault(event.data.incident_id, []).append(event)
    return found


def three_in_each_of_four_partitions() -> list:
    """Twelve reports, three in each partition (incident ids are random: drawn until each partition has three)."""
    chosen: dict[int, list] = {index: [] for index in range(4)}
    while any(len(reports) < 3 for reports in chosen.values()):
        reported = factories.incident_reported(short_code=f"{3000 + sum(map(len, chosen.values()))}")
        if len(bucket := chosen[partition_of(reported.data.incident_id, 4)]) < 3:
            bucket.append(reported)
    return [reported for reports in chosen.values() for reported in reports]


def settings_for(nats_server, tmp_path: Path, database_url: str) -> DispatcherSettings:  # noqa: ANN001
    return DispatcherSettings(
        nats_url=nats_server.url, var_dir=tmp_path, database_url=database_url, roster_seed_file=None
    )


async def test_a_backlog_on_four_partitions_is_paged_once_each_on_the_roster_published_before_it(
    js, nats_server, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The roster (in no partition) and then twelve reports (in four partitions) are on the stream before the
    dispatcher starts: every partition's reader waits for the roster to be applied, so every incident is paged to the
    roster's first step, once; each durable tracks its own position; a restart changes nothing."""
    monkeypatch.setenv(PARTITIONS_ENV, "4")
    settings = settings_for(nats_server, tmp_path, database_url)
    incidents = three_in_each_of_four_partitions()
    await publish_all(js, seed_events(ROSTER, factories.T0))
    await publish_all(js, incidents)
    subjects = {m.subject for m in [await js.get_msg(STREAM_NAME, seq) for seq in range(1, 3)]}
    assert not [s for s in subjects if ".p" in s]  # roster events: in no partition
    with build_dispatcher(settings, ManualClock(factories.T0)) as dispatcher:
        for _ in range(2):  # the second start: every message is already applied
            async with running_processor(settings, dispatcher, durable="dispatcher"):
                await all_taken_in(js)
                await relayed(dispatcher)
        recorder = dispatcher.recorder
        for index in range(4):
            assert recorder.max_tracking_id(partition_upstream(partition_token(index, 4)))
    assert await dispatcher_durables(js) == ["dispatcher", *(f"dispatcher-p{i}of4" for i in range(4))]
    paged = await offers(js)
    for reported in incidents:
        assert sorted(o.data.responder_role for o in paged[reported.data.incident_id]) == FIRST_STEP


async def test_a_change_of_partition_count_reads_the_old_partitions_first_and_loses_nothing(
    js, nats_server, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reports published under two partitions wait in their durables while the dispatcher is stopped; the count goes
    to four and more reports arrive; the dispatcher, started with four, reads the old durables too: every report is
    paged, once."""
    settings = settings_for(nats_server, tmp_path, database_url)
    monkeypatch.setenv(PARTITIONS_ENV, "2")
    old = [factories.incident_reported(short_code=f"{5000 + i}") for i in range(6)]
    new = [factories.incident_reported(short_code=f"{5100 + i}") for i in range(6)]
    with build_dispatcher(settings, ManualClock(factories.T0)) as dispatcher:
        async with running_processor(settings, dispatcher, durable="dispatcher"):
            await publish_all(js, seed_events(ROSTER, factories.T0))
            await all_taken_in(js)
        await publish_all(js, old)  # the dispatcher is stopped: they wait in dispatcher-p0of2 and -p1of2
        monkeypatch.setenv(PARTITIONS_ENV, "4")
        await publish_all(js, new)
        async with running_processor(settings, dispatcher, durable="dispatcher"):
            await all_taken_in(js)
            await relayed(dispatcher)
    assert await dispatcher_durables(js) == [
        "dispatcher",
        "dispatcher-p0of2",
        "dispatcher-p0of4",
        "dispatcher-p1of2",
        "dispatcher-p1of4",
        "dispatcher-p2of4",
        "dispatcher-p3of4",
    ]
    paged = await offers(js)
    for reported in old + new:
        assert sorted(o.data.responder_role for o in paged[reported.data.incident_id]) == FIRST_STEP


async def test_partitions_added_to_a_running_dispatcher_start_after_its_history_and_page_each_report_once(
    js, nats_server, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dispatcher ran without partitions; the count goes to four. The new partitions' durables begin where the
    first durable had got to (its history is not read again, not even as barriers), and every report, before and
    after, is paged once."""
    settings = settings_for(nats_server, tmp_path, database_url)
    monkeypatch.delenv(PARTITIONS_ENV, raising=False)
    before = [factories.incident_reported(short_code=f"{6000 + i}") for i in range(10)]
    after = [factories.incident_reported(short_code=f"{6100 + i}") for i in range(4)]
    with build_dispatcher(settings, ManualClock(factories.T0)) as dispatcher:
        async with running_processor(settings, dispatcher, durable="dispatcher"):
            await publish_all(js, seed_events(ROSTER, factories.T0))
            await publish_all(js, before)
            await all_taken_in(js)
        monkeypatch.setenv(PARTITIONS_ENV, "4")
        await publish_all(js, after)
        async with running_processor(settings, dispatcher, durable="dispatcher"):
            await all_taken_in(js)
            await relayed(dispatcher)
    read = 0
    for index in range(4):
        info = await js.consumer_info(STREAM_NAME, f"dispatcher-p{index}of4")
        read += info.delivered.consumer_seq
    assert read == len(after)  # only the new reports: no barrier over the history
    paged = await offers(js)
    for reported in before + after:
        assert sorted(o.data.responder_role for o in paged[reported.data.incident_id]) == FIRST_STEP
