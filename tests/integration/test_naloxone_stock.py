"""Naloxone in the bag, through the dispatcher on a real store: the stock a restock records, what a dose and kits
left take out, routing that stops offering overdoses to a carrier with no kit (and says why) and offers them again
after a restock, and the supervisor's low-stock notice, once per fall.

Time is a ManualClock; nothing waits.
"""

# ruff: noqa: F811 - the fixtures (settings, harness) are imported from tests/support/dispatch_harness.py
from __future__ import annotations

from datetime import date
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from services.contract.events import (
    Envelope,
    NaloxoneKits,
    NaloxoneRestockReported,
    NaloxoneRestockReportedData,
    ResponderProfile,
    new_event,
)
from services.dispatcher.adapters.roster_seed import seed_events
from services.dispatcher.bootstrap import build
from services.dispatcher.unit_of_work import UnitOfWork
from services.notifier.domain.templates import render
from tests import dispatch_factories as f
from tests.factories import T0
from tests.support.dispatch_harness import Harness, harness, messages, of, settings  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def restock_reported(responder_id: UUID, *kits: tuple[int, str | None, date | None]) -> Envelope:
    data = NaloxoneRestockReportedData(
        responder_id=responder_id,
        kits=[NaloxoneKits(count=n, lot=lot, expires_on=exp) for n, lot, exp in kits],
        recorded_by="Generated clinician",
    )
    return new_event(NaloxoneRestockReported, data, event_id=uuid4(), occurred_at=T0, producer="projections")


def give_dose(harness: Harness, who: ResponderProfile, incident_id: UUID) -> list[Envelope]:
    """What the field reports do for ``NARCAN <code>`` (sms_replies -> field_reports -> ``stock.dose_given``)."""
    app = harness.app
    work = UnitOfWork(app.repository)
    app.stock.dose_given(work, work.record(who.responder_id), incident_id, "sms", None, app.clock.now(), uuid4())
    app.save(*work.aggregates())
    return harness.new()


@pytest.fixture
def crew(harness: Harness) -> dict[str, ResponderProfile]:
    """One naloxone carrier, their supervisor and a director, all on call in zone central."""
    director = f.responder("director", skills=("licensed_clinician",), home=(39.70, -104.95))
    supervisor = f.responder("supervisor", skills=("licensed_clinician",), home=(39.74, -104.99))
    carrier = f.responder(
        "clinician", skills=("naloxone_carrier",), home=(39.744, -104.988), supervisor_id=supervisor.responder_id
    )
    people = [director, supervisor, carrier]
    harness.feed(*(f.registered(p) for p in people), *(f.rotation([p.responder_id]) for p in people))
    harness.new()
    return {"director": director, "supervisor": supervisor, "carrier": carrier}


def offered_to(events: list[Envelope]) -> list[UUID]:
    return [e.data.responder_id for e in of(events, "dispatch.offered")]


def test_after_the_last_kit_the_carrier_is_not_offered_overdoses_with_the_reason_and_after_a_restock_again(
    harness: Harness, crew
) -> None:
    carrier, supervisor = crew["carrier"], crew["supervisor"]
    stocked = harness.feed(restock_reported(carrier.responder_id, (1, "AB12", date(2027, 6, 30))))
    changed = of(stocked, "naloxone.stock_changed")
    assert [(c.data.reason, c.data.change, c.data.usable) for c in changed] == [("restocked", 1, 1)]

    first = f.incident(short_code="1111")
    out = harness.feed(first)
    assert offered_to(out) == [carrier.responder_id]
    harness.reply(carrier.phone, "Y 1111")
    used = give_dose(harness, carrier, first.data.incident_id)
    assert [(c.data.reason, c.data.change, c.data.usable, c.data.kits) for c in of(used, "naloxone.stock_changed")] == [
        ("dose_given", -1, 0, [])
    ]
    assert of(used, "naloxone.stock_changed")[0].incident_id == first.data.incident_id
    harness.reply(carrier.phone, "DONE 1111")  # free again: only the stock stands in the way now

    second = f.incident(short_code="2222")
    out = harness.feed(second)
    assert carrier.responder_id not in offered_to(out)
    unfilled = of(out, "dispatch.unfilled")
    assert unfilled[0].data.shortfalls == ["no_naloxone_in_stock"]
    assert "no naloxone in stock" in unfilled[0].data.reason
    assert offered_to(out) == [supervisor.responder_id]  # nobody qualified: straight to the supervisor rung

    harness.feed(restock_reported(carrier.responder_id, (2, "CD34", date(2027, 12, 31))))
    third = f.incident(short_code="3333")
    assert offered_to(harness.feed(third)) == [carrier.responder_id]


def test_only_expired_kits_is_no_stock(harness: Harness, crew) -> None:
    carrier = crew["carrier"]
    out = harness.feed(restock_reported(carrier.responder_id, (2, "OLD1", date(2026, 11, 22))))
    assert of(out, "naloxone.stock_changed")[0].data.usable == 0
    unfilled = of(harness.feed(f.incident()), "dispatch.unfilled")
    assert unfilled[0].data.shortfalls == ["no_naloxone_in_stock"]


def test_a_carrier_whose_stock_was_never_recorded_is_offered_as_before_and_a_dose_changes_nothing(
    harness: Harness, crew
) -> None:
    carrier = crew["carrier"]
    reported = f.incident()
    assert offered_to(harness.feed(reported)) == [carrier.responder_id]
    harness.reply(carrier.phone, "Y 4821")
    assert of(give_dose(harness, carrier, reported.data.incident_id), "naloxone.stock_changed") == []


def test_the_supervisor_is_told_once_per_fall_to_the_low_stock_threshold(harness: Harness, crew) -> None:
    carrier, supervisor = crew["carrier"], crew["supervisor"]
    reported = f.incident()
    harness.feed(restock_reported(carrier.responder_id, (3, "AB12", None)))
    harness.feed(reported)
    harness.reply(carrier.phone, "Y 4821")
    incident_id = reported.data.incident_id

    assert messages(give_dose(harness, carrier, incident_id)) == []  # 2 usable: above the threshold (1)
    low = give_dose(harness, carrier, incident_id)  # 1 usable
    assert messages(low) == [(supervisor.phone, "stock_low")]
    notice = of(low, "notification.requested")[0]
    assert notice.data.params == {"responder_name": carrier.name, "usable": 1}
    assert render("stock_low", notice.data.params).segments == 1
    told = of(low, "naloxone.stock_low")
    assert [(t.data.responder_id, t.data.usable, t.data.threshold, t.data.supervisor_id) for t in told] == [
        (carrier.responder_id, 1, 1, supervisor.responder_id)
    ]
    assert messages(give_dose(harness, carrier, incident_id)) == []  # 0 usable: the same fall, not told again

    harness.feed(restock_reported(carrier.responder_id, (1, None, None)))  # 1 usable: still low, still not again
    assert harness.new() == []
    harness.feed(restock_reported(carrier.responder_id, (2, None, None)))  # 3 usable: the fall is over
    assert messages(harness.new()) == []
    give_dose(harness, carrier, incident_id)
    assert messages(give_dose(harness, carrier, incident_id)) == [(supervisor.phone, "stock_low")]  # a new fall


def test_a_restock_for_an_unknown_responder_changes_nothing(harness: Harness, crew) -> None:
    assert harness.feed(restock_reported(uuid4(), (2, None, None))) == []


def test_the_stock_survives_a_restart(harness: Harness, crew, settings) -> None:
    carrier = crew["carrier"]
    harness.feed(restock_reported(carrier.responder_id, (1, "AB12", None)))
    with build(settings, harness.clock) as restarted:
        view = restarted.known.roster[carrier.responder_id]
        assert view.naloxone_usable(T0.date()) == 1
        again = harness.resume(restarted, harness.sequence)
        again.feed(restock_reported(carrier.responder_id, (1, "AB12", None)))
        restarted.catch_up()
        assert restarted.known.roster[carrier.responder_id].naloxone_usable(T0.date()) == 2


# ---- by text: RESTOCK, NARCAN, KIT ------------------------------------------------------------------------------


def answers(events: list[Envelope], phone: str) -> list[tuple[str, dict]]:
    return [(e.data.template, e.data.params) for e in of(events, "notification.requested") if e.data.to == phone]


def test_by_text_the_last_kit_used_stops_overdose_pages_with_the_reason_and_a_restock_starts_them_again(
    harness: Harness, crew
) -> None:
    carrier, supervisor = crew["carrier"], crew["supervisor"]
    restocked = harness.reply(carrier.phone, "RESTOCK 1 LOT AB12 EXP 2027-06")
    assert [(c.data.reason, c.data.change, c.data.usable) for c in of(restocked, "naloxone.stock_changed")] == [
        ("restocked", 1, 1)
    ]
    assert of(restocked, "naloxone.stock_changed")[0].data.kits == [
        NaloxoneKits(count=1, lot="AB12", expires_on=date(2027, 6, 30))
    ]
    assert answers(restocked, carrier.phone) == [("restock_confirmed", {"added": 1, "usable": 1})]
    assert render("restock_confirmed", {"added": 1, "usable": 1}).text == (
        "Restock noted: 1 kit of naloxone added. You now have 1 usable kit."
    )

    first = f.incident(short_code="1111")
    assert offered_to(harness.feed(first)) == [carrier.responder_id]
    harness.reply(carrier.phone, "Y 1111")
    dose = harness.reply(carrier.phone, "NARCAN 1111")
    assert len(of(dose, "incident.naloxone_administered")) == 1
    assert [(c.data.reason, c.data.usable, c.data.incident_id) for c in of(dose, "naloxone.stock_changed")] == [
        ("dose_given", 0, first.data.incident_id)
    ]
    harness.reply(carrier.phone, "DONE 1111")

    second = harness.feed(f.incident(short_code="2222"))
    assert carrier.responder_id not in offered_to(second)
    assert of(second, "dispatch.unfilled")[0].data.shortfalls == ["no_naloxone_in_stock"]
    assert offered_to(second) == [supervisor.responder_id]

    harness.reply(carrier.phone, "REPONER 2")
    assert offered_to(harness.feed(f.incident(short_code="3333"))) == [carrier.responder_id]


def test_kits_left_behind_by_text_are_recorded_with_the_zone_and_confirmed_even_after_done(
    harness: Harness, crew
) -> None:
    carrier, supervisor = crew["carrier"], crew["supervisor"]
    harness.reply(carrier.phone, "RESTOCK 3 LOT AB12")
    reported = f.incident()
    harness.feed(reported)
    harness.reply(carrier.phone, "Y 4821")

    left = harness.reply(carrier.phone, "KIT 4821 2 LOT AB12")
    kits = of(left, "naloxone.left_behind")
    assert [(k.data.count, k.data.lot, k.data.zone, k.data.responder_id, k.incident_id) for k in kits] == [
        (2, "AB12", "central", carrier.responder_id, reported.data.incident_id)
    ]
    assert [(c.data.reason, c.data.change, c.data.usable) for c in of(left, "naloxone.stock_changed")] == [
        ("left_behind", -2, 1)
    ]
    assert answers(left, carrier.phone) == [("kits_left_noted", {"code": "4821", "count": 2, "usable": 1})]
    assert answers(left, supervisor.phone) == [("stock_low", {"responder_name": carrier.name, "usable": 1})]

    harness.reply(carrier.phone, "DONE 4821")
    after_done = harness.reply(carrier.phone, "DEJE 4821 1")  # kits are often left at the very end
    assert [k.data.count for k in of(after_done, "naloxone.left_behind")] == [1]
    assert answers(after_done, carrier.phone) == [("kits_left_noted", {"code": "4821", "count": 1, "usable": 0})]


def test_kits_left_by_a_responder_whose_stock_was_never_recorded_count_for_the_metrics_only(
    harness: Harness, crew
) -> None:
    carrier = crew["carrier"]
    harness.feed(f.incident())
    harness.reply(carrier.phone, "Y 4821")
    left = harness.reply(carrier.phone, "KIT 1")  # the only incident they are on: no code needed
    assert [k.data.count for k in of(left, "naloxone.left_behind")] == [1]
    assert of(left, "naloxone.stock_changed") == []
    assert answers(left, carrier.phone) == [("kits_left_noted", {"code": "4821", "count": 1})]
    assert "RESTOCK" in render("kits_left_noted", {"code": "4821", "count": 1}).text


@pytest.mark.parametrize(
    ("body", "part"),
    [
        ("RESTOCK", "count"),
        ("RESTOCK 200", "count"),
        ("RESTOCK 2 EXP 2020-01", "expiry"),  # those kits expired: no stock
        ("KIT 4821 50", "count"),
    ],
)
def test_a_stock_text_not_understood_says_which_part_and_records_nothing(harness: Harness, crew, body, part) -> None:
    carrier = crew["carrier"]
    harness.feed(f.incident())
    harness.reply(carrier.phone, "Y 4821")
    out = harness.reply(carrier.phone, body)
    assert [e.type for e in out] == ["notification.requested"]
    ((template, params),) = answers(out, carrier.phone)
    assert template == "reply_not_understood" and params["part"] == part
    assert render(template, params).segments == 1


def test_kits_left_at_an_incident_the_responder_was_not_on_are_not_recorded(harness: Harness, crew) -> None:
    carrier = crew["carrier"]
    harness.feed(f.incident())  # offered, never accepted
    out = harness.reply(carrier.phone, "KIT 4821 1")
    assert of(out, "naloxone.left_behind") == [] and of(out, "naloxone.stock_changed") == []
    assert [t for t, _ in answers(out, carrier.phone)] == ["reply_unknown"]


def test_the_demo_roster_seeds_a_stock_for_every_naloxone_carrier(harness: Harness) -> None:
    harness.feed(*seed_events(ROOT / "deploy" / "demo" / "roster.json", T0))
    harness.app.catch_up()
    carriers = [v for v in harness.app.known.roster.values() if "naloxone_carrier" in v.skills]
    assert len(carriers) == 3
    assert all((v.naloxone_usable(T0.date()) or 0) >= 2 for v in carriers)
    assert all(v.naloxone is None for v in harness.app.known.roster.values() if v not in carriers)


def test_a_restock_that_would_take_the_bag_above_500_kits_is_refused_as_a_typo(harness: Harness, crew) -> None:
    carrier = crew["carrier"]
    for _ in range(5):
        harness.reply(carrier.phone, "RESTOCK 100")
    refused = harness.reply(carrier.phone, "RESTOCK 1")
    assert of(refused, "naloxone.stock_changed") == []
    assert [(t, p["part"]) for t, p in answers(refused, carrier.phone)] == [("reply_not_understood", "count")]
    assert of(harness.feed(restock_reported(carrier.responder_id, (1, None, None))), "naloxone.stock_changed") == []
    harness.app.catch_up()
    assert harness.app.known.roster[carrier.responder_id].naloxone_usable(T0.date()) == 500
