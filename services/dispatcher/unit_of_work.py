"""The aggregates one use case touches, loaded once each and saved together."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate

from services.dispatcher.domain.incident import IncidentDispatch
from services.dispatcher.domain.roster import ResponderRecord

AggregateT = TypeVar("AggregateT", bound=Aggregate)


class UnitOfWork:
    """Loads each aggregate at most once; ``aggregates()`` is everything to save (or collect) at the end."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self.loaded: dict[UUID, Aggregate] = {}

    def get(self, aggregate_id: UUID) -> Any:
        """Raises ``AggregateNotFoundError`` for an id nothing was stored under."""
        if aggregate_id not in self.loaded:
            self.loaded[aggregate_id] = self.repository.get(aggregate_id)
        return self.loaded[aggregate_id]

    def add(self, aggregate: AggregateT) -> AggregateT:
        self.loaded[aggregate.id] = aggregate
        return aggregate

    def record(self, responder_id: UUID) -> ResponderRecord:
        return self.get(ResponderRecord.create_id(responder_id))

    def incident(self, incident_id: UUID) -> IncidentDispatch:
        return self.get(incident_id)

    def incident_or_none(self, incident_id: UUID) -> IncidentDispatch | None:
        try:
            return self.get(incident_id)
        except AggregateNotFoundError:
            return None

    def aggregates(self) -> list[Aggregate]:
        return list(self.loaded.values())
