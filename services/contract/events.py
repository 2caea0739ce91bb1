"""The event contract: one versioned envelope and a typed model per event type.

Every fact that crosses a service boundary travels on the CRISIS stream as one of these.
The types live in one module per area; this module gathers them into ``EVENT_TYPES`` and decodes
payloads, upcasting old schema versions. The JSON Schema files in ``schemas/`` are generated from
these models (``make schemas``) and a test proves they agree. Published events are never edited:
a change is a new ``schema_version`` plus an upcaster in the type's module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError

from services.contract import (
    caring,
    clinical_record,
    dispatch,
    field,
    intake,
    messaging,
    moud,
    operations,
    outreach,
    person,
    referral,
    roster,
    treatment,
)
from services.contract.caring import *  # noqa: F403
from services.contract.clinical_record import *  # noqa: F403
from services.contract.dispatch import *  # noqa: F403
from services.contract.envelope import *  # noqa: F403
from services.contract.envelope import Envelope, UnreadableMessage
from services.contract.field import *  # noqa: F403
from services.contract.intake import *  # noqa: F403
from services.contract.messaging import *  # noqa: F403
from services.contract.moud import *  # noqa: F403
from services.contract.operations import *  # noqa: F403
from services.contract.outreach import *  # noqa: F403
from services.contract.person import *  # noqa: F403
from services.contract.referral import *  # noqa: F403
from services.contract.roster import *  # noqa: F403
from services.contract.templates import *  # noqa: F403
from services.contract.treatment import *  # noqa: F403

_MODULES = (
    intake,
    dispatch,
    roster,
    messaging,
    clinical_record,
    operations,
    field,
    treatment,
    referral,
    person,
    caring,
    outreach,
    moud,
)

EVENT_TYPES: dict[str, type[Envelope]] = {cls.TYPE: cls for module in _MODULES for cls in module.EVENTS}

UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    key: step for module in _MODULES for key, step in module.UPCASTERS.items()
}
"""(type, version) -> function(raw envelope dict) -> raw envelope dict at version + 1."""


def upcast(raw: dict[str, Any]) -> dict[str, Any]:
    while (step := UPCASTERS.get((raw.get("type"), raw.get("schema_version")))) is not None:  # type: ignore[arg-type]
        raw = step(raw)
    return raw


@cache
def _current_events() -> TypeAdapter[Envelope]:
    """Every event type at its current schema version, told apart by ``type`` (pydantic picks the model)."""
    union = Union[tuple(EVENT_TYPES.values())]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(Annotated[union, Field(discriminator="type")])  # type: ignore[arg-type]


def decode_event(payload: bytes) -> Envelope:
    """Parse and validate a stream payload into its typed event (upcasting old versions).

    Most payloads are a known type at its current version: pydantic parses and validates those straight from the
    bytes, once. Anything else (an old version to upcast, or a payload no model accepts) takes the path below,
    which upcasts, and explains a refusal exactly as it always has.
    """
    try:
        return _current_events().validate_json(payload)
    except ValidationError:
        pass
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableMessage(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise UnreadableMessage("not a JSON object")
    event_class = EVENT_TYPES.get(raw.get("type"))  # type: ignore[arg-type]
    if event_class is None:
        raise UnreadableMessage(f"unknown event type {raw.get('type')!r}")
    raw = upcast(raw)
    try:
        return event_class.model_validate(raw)
    except ValidationError as exc:
        raise UnreadableMessage(f"invalid {event_class.TYPE}: {exc.errors(include_url=False)}") from exc
