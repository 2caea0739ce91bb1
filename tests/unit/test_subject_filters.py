"""Each service's durable reads only the subjects of the event types its handlers are registered for.

The filter is derived from the registrations (``StreamProcessor.handled_types``), so these tests compare it with
what each processor's dispatch actually does for every contract event type, including types added later.
"""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.application import ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod

from services.contract.events import (
    EVENT_TYPES,
    Envelope,
    IncidentReported,
    SmsReceived,
    SmsStatusUpdated,
    SmsStatusUpdatedData,
    derived_id,
    new_event,
    subject_for,
)
from services.dispatcher.application import STREAM_HANDLERS, Dispatcher
from services.notifier.application import Notifier
from services.projections.followup_desk import FollowUpDesk
from services.projections.read_models import ReadModels
from services.runtime.consumer import EVERYTHING, filter_subjects
from services.runtime.processor import StreamProcessor
from tests.factories import T0


def subjects(*types: type[Envelope], narrowed: dict | None = None) -> list[str]:
    """Each type's subject(s): its own, and its sub-subjects (only those ``narrowed`` names for it, if it does)."""
    return sorted(s for t in types for s in t.type_subjects((narrowed or {}).get(t)))


def acted_on_by_policy(processor: type[StreamProcessor]) -> list[type[Envelope]]:
    """The contract event types for which ``processor``'s singledispatch ``policy`` runs something other than its
    do-nothing default: found by dispatching every known type, not by reading the registrations."""
    policy = vars(processor)["policy"]
    default = policy.dispatcher.dispatch(object)
    return [t for t in EVENT_TYPES.values() if policy.dispatcher.dispatch(t) is not default]


@pytest.mark.parametrize("processor", [Notifier, FollowUpDesk])
def test_a_singledispatch_processor_reads_exactly_the_types_its_policy_acts_on(processor) -> None:
    assert filter_subjects(processor) == subjects(*acted_on_by_policy(processor), narrowed=processor.subject_suffixes)


def test_the_dispatcher_reads_exactly_the_types_its_handler_table_names() -> None:
    acted_on = [t for t in EVENT_TYPES.values() if STREAM_HANDLERS.get(t) is not None]
    assert filter_subjects(Dispatcher) == subjects(*acted_on)


def test_delivery_statuses_reach_only_the_services_that_act_on_them() -> None:
    status = subject_for(SmsStatusUpdated.TYPE)
    assert not [s for s in filter_subjects(Dispatcher) if SmsStatusUpdated.TYPE in s]
    assert not [s for s in filter_subjects(FollowUpDesk) if SmsStatusUpdated.TYPE in s]
    # failed and undelivered fail the notification; sent, delivered and the rest are not sent to the notifier (the
    # bare subject: statuses stored before the split, read as before); in no partition and in any
    anywhere = subject_for(SmsStatusUpdated.TYPE, "*")
    assert [s for s in filter_subjects(Notifier) if SmsStatusUpdated.TYPE in s] == [
        anywhere,
        f"{anywhere}.failed",
        status,
        f"{status}.failed",
    ]
    assert filter_subjects(ReadModels) == [EVERYTHING]  # every event may be on a timeline (statuses fold into rows)
    # what each reads is what it handles: the dispatcher its inputs and dead letters, not its own outputs
    dispatcher = filter_subjects(Dispatcher)
    assert {"crisis.incident.reported", "crisis.sms.received", "crisis.message.dead_lettered"} <= set(dispatcher)
    assert not {"crisis.dispatch.offered", "crisis.notification.requested"} & set(dispatcher)
    assert "crisis.notification.requested" in filter_subjects(Notifier)
    assert "crisis.incident.reported" not in filter_subjects(Notifier)


def test_a_handler_added_to_the_dispatchers_table_adds_its_subject(monkeypatch: pytest.MonkeyPatch) -> None:
    before = filter_subjects(Dispatcher)
    monkeypatch.setitem(STREAM_HANDLERS, SmsStatusUpdated, lambda dispatcher, work, event: None)
    assert filter_subjects(Dispatcher) == sorted([*before, *SmsStatusUpdated.type_subjects()])


@pytest.mark.parametrize(
    ("status", "subject"),
    [
        ("failed", "crisis.sms.status_updated.failed"),
        ("undelivered", "crisis.sms.status_updated.failed"),
        ("delivered", "crisis.sms.status_updated.progress"),
        ("sent", "crisis.sms.status_updated.progress"),
        ("read", "crisis.sms.status_updated.progress"),  # a status Twilio adds later: not a failure
    ],
)
def test_a_status_callback_is_published_on_its_outcome_s_sub_subject(status: str, subject: str) -> None:
    event = new_event(
        SmsStatusUpdated,
        SmsStatusUpdatedData(message_sid="SM" + "0" * 32, status=status),
        event_id=derived_id("status", status),
        occurred_at=T0,
        producer="intake_gateway",
    )
    assert event.subject == subject
    assert subject in SmsStatusUpdated.type_subjects()
    with pytest.raises(ValueError, match="no sub-subject"):
        SmsStatusUpdated.type_subjects(("queued",))


class Probe(StreamProcessor):
    """A processor registering its handlers as the notifier and the follow-up desk do."""

    def on_reported(self, event: IncidentReported, processing_event: ProcessingEvent) -> None: ...

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None: ...

    policy.register(IncidentReported, on_reported)


def test_a_handler_registered_on_a_policy_adds_its_subject_and_a_subclass_inherits_them() -> None:
    assert filter_subjects(Probe) == ["crisis.*.incident.reported", "crisis.incident.reported"]

    class Extended(Probe):
        pass

    vars(Probe)["policy"].register(SmsReceived, lambda self, event, processing_event: None)
    assert filter_subjects(Probe, partition=None) == ["crisis.incident.reported", "crisis.sms.received"]
    assert filter_subjects(Extended) == filter_subjects(Probe)


def test_a_processor_registering_nothing_or_the_envelope_itself_reads_everything() -> None:
    class Quiet(StreamProcessor):
        pass

    class Everything(StreamProcessor):
        @singledispatchmethod
        def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None: ...

        @policy.register
        def _(self, event: Envelope, processing_event: ProcessingEvent) -> None: ...

    assert filter_subjects(Quiet) == [EVERYTHING]
    assert filter_subjects(Everything) == [EVERYTHING]


def test_a_processor_declaring_no_types_at_all_is_refused() -> None:
    class Nothing(StreamProcessor):
        @classmethod
        def handled_types(cls) -> frozenset[type[Envelope]]:
            return frozenset()

    with pytest.raises(ValueError, match="handles no event type"):
        filter_subjects(Nothing)
