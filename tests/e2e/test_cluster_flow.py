"""The whole flow on a 3-node JetStream cluster (stream R3), with the services as separate processes.

Two gateways behind a round-robin client, two dispatcher instances sharing four partitions' durables
(``CRISIS_PARTITIONS=4``) and one PostgreSQL store, the notifier and the projections; while the reports arrive, the
node leading the stream gets SIGKILL and comes back seconds later. The harness is bench/chaos.py's: afterwards every
incident is on the stream once, was paged and is acknowledged or at the top of its ladder, every stored event
reached the stream, no event precedes its cause and every incident's story starts with its report (the order the
stream gave it), and the projections equal a clean rebuild.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import ChaosPlan, describe, run_chaos

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

CLUSTER_PLAN = ChaosPlan(
    incidents=8,
    responders=30,
    report_seconds=12.0,
    chaos_tail=6.0,
    victims=("nats-leader",),
    max_kills=1,
    kill_every=(5.0, 5.0),  # mid-flow: five seconds into the reports
    down_for=(8.0, 8.0),
    cluster=True,
    instances=(("dispatcher", 2), ("intake-gateway", 2)),
    partitions=4,  # the two dispatchers share four partitions (issue 16)
    settle_timeout=150.0,
)


async def test_killing_a_node_mid_flow_loses_nothing_with_services_as_several_instances(
    tmp_path: Path, postgres_url: str
) -> None:
    report = await run_chaos(CLUSTER_PLAN, tmp_path, database_url=postgres_url)
    summary = describe(report)
    assert report.problems == [], summary
    assert len(report.kills) == 1 and report.kills[0][1].startswith("nats:"), summary
    facts = report.facts
    assert len(report.accepted) == CLUSTER_PLAN.incidents, summary
    assert facts["acknowledged"] + facts["escalated to the ladder's top"] == CLUSTER_PLAN.incidents, summary
    assert facts["duplicate SMS"] == 0, summary  # the notifier was never killed
    assert facts["projections == rebuild"] is True, summary
