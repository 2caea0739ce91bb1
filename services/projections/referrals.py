"""The referrals' read model: the port its table fills (``ReferralTable``, written by ``ReadModels`` in the read
models' transaction, one row per referral holding its ``ReferralView``) and the JSON codec of a view.

Every ``referral.*`` event (except ``referral.level_of_care_chosen``, which belongs to the incident only) is
folded with ``domain/referral.py``'s ``fold_referral``; a transition the state machine refuses changes nothing
here (the commands refuse it before it is appended; one that was appended anyway, e.g. by an older producer, is
kept on the incident's timeline and not applied to the referral).
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any, Protocol

from services.contract.referral import OfferState
from services.projections.domain.referral import Offer, ReferralView, Transition
from services.projections.stores import iso, parse_time


class ReferralTable(Protocol):
    """The referrals' table, beside the read models' (same database). ``get`` and ``save`` run inside the read
    models' transaction (``cursor``); the others in their own. Raises PersistenceError when the database fails."""

    def create_table(self) -> None: ...

    def drop_table(self) -> None: ...

    def get(self, cursor: Any, referral_id: str) -> ReferralView | None: ...

    def save(self, cursor: Any, view: ReferralView, sequence: int) -> None: ...

    def referral(self, referral_id: str) -> ReferralView | None: ...

    def for_incident(self, incident_id: str) -> list[ReferralView]:
        """The incident's referrals, oldest first."""

    def for_person(self, person_id: str) -> list[ReferralView]:
        """The person's referrals (``person_id`` given when sent), oldest first."""

    def referrals(self, *, open_only: bool = False, limit: int = 500) -> list[ReferralView]:
        """The latest referrals first; ``open_only``: not admitted and not cancelled."""


class OpenReferrals(Protocol):
    def __call__(self, beside: Any, prefix: str) -> ReferralTable: ...


# ---- the view as stored JSON ------------------------------------------------------------------------------------

_TIMES = ("sent_at", "accept_by", "admitted_at", "no_show_at", "cancelled_at", "acceptance_overdue_at")
_OFFER_TIMES = ("answered_at", "admission_from", "admission_until")


def view_json(view: ReferralView) -> str:
    body = asdict(view)
    for name in _TIMES:
        body[name] = iso(getattr(view, name))
    body["offers"] = [
        asdict(o) | {"state": o.state.value} | {n: iso(getattr(o, n)) for n in _OFFER_TIMES} for o in view.offers
    ]
    body["history"] = [asdict(h) | {"at": iso(h.at)} for h in view.history]
    return json.dumps(body, separators=(",", ":"))


def view_from_json(text: str) -> ReferralView:
    body: dict[str, Any] = json.loads(text)
    times: dict[str, datetime | None] = {name: parse_time(body[name]) for name in _TIMES}
    offers = tuple(
        Offer(**(o | {"state": OfferState(o["state"]), "info_needed": tuple(o["info_needed"])})) for o in body["offers"]
    )
    offers = tuple(replace(o, **{n: parse_time(getattr(o, n)) for n in _OFFER_TIMES}) for o in offers)  # type: ignore[arg-type]
    history = tuple(Transition(**(h | {"at": parse_time(h["at"])})) for h in body["history"])
    return ReferralView(**(body | times | {"offers": offers, "history": history}))
