"""The read models' stream consumer: the runtime's durable consumer (confirmed acks, dead letters) that hands the
read models each event with the time the stream stored it, so they answer "as known at time T" by the stream's
clock."""

from __future__ import annotations

from datetime import datetime

from services.contract.events import Envelope
from services.projections.read_models import ReadModels
from services.runtime.consumer import ProcessorConsumer


class StreamTimedConsumer(ProcessorConsumer):
    processor: ReadModels

    def apply(self, event: Envelope, sequence: int, stored_at: datetime | None) -> bool:
        return self.processor.handle(event, sequence, stored_at)
