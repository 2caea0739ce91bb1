"""The demo roster: a JSON file of responder profiles and rotations, published as ordinary roster events, and the
naloxone kits in the carriers' bags (``naloxone_stock``), published as restocks recorded by "demo-seed".

Production manages the roster through the gateway's admin API; this only gives `make run` people to page.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from services.contract.events import (
    Envelope,
    NaloxoneRestockReported,
    NaloxoneRestockReportedData,
    ResponderProfile,
    ResponderRegistered,
    RotationDefined,
    RotationDefinedData,
    derived_id,
    new_event,
)

PRODUCER = "dispatcher.seed"
RECORDED_BY = "demo-seed"


def seed_events(path: Path, now: datetime) -> list[Envelope]:
    """The roster events the file describes. Raises ValueError naming the entry when one is malformed."""
    document = json.loads(Path(path).read_text())
    events: list[Envelope] = []
    for kind, model, event_class, key in (
        ("responders", ResponderProfile, ResponderRegistered, "responder_id"),
        ("rotations", RotationDefinedData, RotationDefined, "rotation_id"),
        ("naloxone_stock", NaloxoneRestockReportedData, NaloxoneRestockReported, "responder_id"),
    ):
        for index, entry in enumerate(document.get(kind, [])):
            if kind == "naloxone_stock":
                entry = {**entry, "recorded_by": RECORDED_BY}
            try:
                data = model.model_validate(entry)
            except ValidationError as exc:
                raise ValueError(f"{path}: {kind}[{index}] is malformed: {exc.errors(include_url=False)}") from exc
            events.append(
                new_event(
                    event_class,
                    data,
                    event_id=derived_id("seed", kind, getattr(data, key)),
                    occurred_at=now,
                    producer=PRODUCER,
                )
            )
    return events
