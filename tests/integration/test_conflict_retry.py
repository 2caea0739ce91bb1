"""Two instances of a processor on one store (SQLite and PostgreSQL): a message whose save conflicts with the other
instance's is handled again at once, on what the other wrote, instead of waiting for its redelivery; a conflict
that keeps coming is left to the redelivery, as before; a redelivery of what was applied stays a no-op."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import IntegrityError

from services.contract.events import IncidentReported
from services.runtime.clock import ManualClock
from services.runtime.processor import CONFLICT_RETRIES, StreamProcessor
from services.runtime.settings import RuntimeSettings, store_env
from tests import factories
from tests.integration.test_nats_cluster import IncidentTally


class Racer(StreamProcessor):
    """Keeps one tally per incident; ``before_save`` runs between reading the tally and saving it (another
    instance's save lands there)."""

    producer = "conflict-test"

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env, clock=ManualClock(factories.T0))
        self.before_save: Callable[[], None] | None = None
        self.attempts = 0

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Nothing else is handled."""

    @policy.register
    def _(self, reported: IncidentReported, processing_event: ProcessingEvent) -> None:
        self.attempts += 1
        tally = IncidentTally.of(self.repository, reported.data.incident_id)
        tally.process(str(reported.id), processing_event.tracking.notification_id)
        if self.before_save is not None:
            self.before_save()
        processing_event.collect_events(tally)

    def tally(self, incident_id: UUID) -> list[int]:
        return [sequence for _, sequence in self.repository.get(IncidentTally.create_id(incident_id)).processed]


@pytest.fixture
def two(tmp_path: Path, database_url: str):
    env = store_env(RuntimeSettings(var_dir=tmp_path, database_url=database_url), "racer")
    first, second = Racer(env), Racer(env)
    yield first, second
    first.close()
    second.close()


def again(event: IncidentReported) -> IncidentReported:
    return event.model_copy(update={"id": factories.incident_reported().id})


def test_a_conflicting_save_is_handled_again_at_once_on_the_others_write(two) -> None:
    a, b = two
    report = factories.incident_reported()
    incident = report.data.incident_id
    assert b.handle(report, 1)
    second, third = again(report), again(report)
    a.before_save = lambda: (setattr(a, "before_save", None), b.handle(second, 2))  # b saves first, once
    assert a.handle(third, 3) is True  # no IntegrityError for the consumer to nack
    assert a.attempts == 2  # the conflict, then the same message on b's write
    assert a.tally(incident) == b.tally(incident) == [1, 2, 3]
    assert a.recorder.has_tracking_id("CRISIS", 3)
    assert a.handle(third, 3) is False  # its redelivery: a no-op


def test_a_conflict_that_keeps_coming_is_left_to_the_redelivery(two) -> None:
    a, b = two
    report = factories.incident_reported()
    assert b.handle(report, 1)
    landed = iter(range(2, 100))
    a.before_save = lambda: b.handle(again(report), next(landed))  # b saves first every time
    with pytest.raises(IntegrityError):
        a.handle(again(report), 1000)
    assert a.attempts == CONFLICT_RETRIES + 1
    assert not a.recorder.has_tracking_id("CRISIS", 1000)
    a.before_save = None
    assert a.handle(again(report), 1000) is True  # the redelivery, with b quiet: applied
    assert a.tally(report.data.incident_id)[-1] == 1000
