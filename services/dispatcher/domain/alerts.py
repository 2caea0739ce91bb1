"""Alerts about the system itself: one per message the services gave up on, however many of them did."""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

ALERT_NAMESPACE = UUID("5d1f0c3e-7a52-4f0e-9b1d-0a6c2e4f8b31")


class MessageAlert(Aggregate):
    """A message one or more consumers dead-lettered. The first dead letter raises the alert (a person is
    paged); the others, for the same message, only add their consumer's name, so one bad message pages once."""

    @staticmethod
    def create_id(stream_sequence: int) -> UUID:
        return uuid5(ALERT_NAMESPACE, f"message-alert/{stream_sequence}")

    @event("Raised")
    def __init__(self, stream_sequence: int, consumer: str) -> None:
        self.stream_sequence = stream_sequence
        self.consumers = [consumer]

    @event("AlsoGivenUp")
    def also_given_up(self, consumer: str) -> None:
        if consumer not in self.consumers:
            self.consumers.append(consumer)
