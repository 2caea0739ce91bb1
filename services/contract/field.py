"""Events of the field: what happens once a responder accepted, by text, voice keypad or the incident page.

Three areas (issue "In the field"):

- **Safety check-ins.** ``ARRIVED`` starts a check-in timer; the responder confirms with ``OK`` (restarts it) or
  ends it with ``CLEAR``/``DONE``. A missed check-in climbs: reminder, voice call, the supervisor and the team
  partner paged with the last known location, then the supervisor told to call 911. A duress word is accepted
  like ``OK`` on the responder's side and silently alerts the supervisor (``checkin.duress``: the word itself is
  never in any event). A solo responder on a "pairs only" incident is told to wait (``field.pair_wait``).
- **Field reports by text.** ETA with the accept, naloxone given, EMS arrived, cannot find the person, backup,
  vitals, 911 called; and the prompts the clock raises from them (late against the ETA, EMS not confirmed).
- **Naloxone in the bag** (``naloxone.*``): each responder's kits (count, lot, expiry), what used them, restocks,
  kits left behind with the person or family, and the supervisor's low-stock notice.

Produced by the dispatcher, except where a docstring names another producer (the incident page, served by the
projections, publishes ``naloxone.restock_reported`` and ``incident.reassessed``). Naloxone doses and EMS arrival
reported by text are recorded as the gateway's own ``incident.naloxone_administered`` and
``incident.ems_arrived`` (producer dispatcher), so the documentation reads them one way.
"""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import Field, StrictInt

from services.contract.envelope import MessageSid, Priority, ShortCode, Strict, UtcDatetime, event_type

Channel = Literal["sms", "voice", "app"]
"""How the responder said it: a text, the voice call's keypad, or a button on their incident page."""


class LastKnownLocation(Strict):
    """Where the responder was last known to be: what the supervisor is told when a check-in is missed.

    Coordinates for the workspace; ``place_name`` only ever a gazetteer name (never typed text)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    as_of: UtcDatetime
    source: Literal["scene", "reported", "home_base"] = Field(
        description="scene: they said they arrived, so the incident's location; reported: their last AT or app "
        "location; home_base: nothing newer"
    )
    place_name: str | None = Field(default=None, max_length=100, description="the gazetteer's name for the point")


# ---- safety check-ins -----------------------------------------------------------------------------------------


class CheckInStartedData(Strict):
    incident_id: UUID
    responder_id: UUID
    code: ShortCode
    channel: Channel
    minutes: StrictInt = Field(ge=1, le=240, description="the check-in interval the policy gave this incident")
    due_at: UtcDatetime


class CheckInPromptedData(Strict):
    """Before the check-in ends: "Reply OK <code> by <time>"."""

    incident_id: UUID
    responder_id: UUID
    code: ShortCode
    due_at: UtcDatetime


class CheckInConfirmedData(Strict):
    """``OK``: the responder is safe; the timer restarts. (A duress word looks exactly like this one too.)"""

    incident_id: UUID
    responder_id: UUID
    code: ShortCode
    channel: Channel
    message_sid: MessageSid | None = None
    next_due_at: UtcDatetime


CheckInStep = Literal["reminder", "call", "supervisor_paged", "call_911"]


class CheckInMissedData(Strict):
    """A check-in passed without an answer and the next step was taken (one event per step, fired once)."""

    incident_id: UUID
    responder_id: UUID
    code: ShortCode
    step: CheckInStep
    due_at: UtcDatetime = Field(description="when the missed check-in was due")
    minutes_overdue: StrictInt = Field(ge=0)
    last_known: LastKnownLocation | None = None
    notified: list[UUID] = Field(default_factory=list, description="who was paged or called at this step")


class CheckInDuressData(Strict):
    """The duress word was in a reply: the supervisor is paged at once with the location; the responder's phone
    was answered as for OK. Staff-only: never shown on the responder's page."""

    incident_id: UUID
    responder_id: UUID
    code: ShortCode
    last_known: LastKnownLocation | None = None
    notified: list[UUID] = Field(default_factory=list)


class CheckInEndedData(Strict):
    incident_id: UUID
    responder_id: UUID
    code: ShortCode
    reason: Literal["clear", "done", "cancelled", "completed"]
    channel: Channel | None = None


class PairWaitData(Strict):
    """A responder alone on an incident the policy says needs two (e.g. C-SSRS high risk) was told to wait for the
    partner before going in; the supervisor was told."""

    incident_id: UUID
    responder_id: UUID
    code: ShortCode
    rule: str = Field(max_length=100, description="the pairs-only rule that applied, e.g. 'self_harm_risk: high'")
    supervisor_id: UUID | None = None


# ---- field reports ----------------------------------------------------------------------------------------


class EtaGivenData(Strict):
    """``Y <code> <minutes>``: accepted with an estimate of arrival."""

    incident_id: UUID
    responder_id: UUID
    code: ShortCode
    minutes: StrictInt = Field(ge=1, le=240)
    eta_at: UtcDatetime
    message_sid: MessageSid | None = None


class EtaOverdueData(Strict):
    """The responder has not said they arrived well after their ETA: the supervisor was prompted."""

    incident_id: UUID
    responder_id: UUID
    code: ShortCode
    eta_at: UtcDatetime
    minutes_late: StrictInt = Field(ge=0)
    supervisor_id: UUID | None = None


class CannotLocateData(Strict):
    """``NOFIND <code>``: the responder cannot find the person."""

    incident_id: UUID
    responder_id: UUID
    code: ShortCode
    message_sid: MessageSid | None = None
    supervisor_id: UUID | None = None
    caller_asked: bool = Field(description="the report had a callback number and the caller was asked to confirm")


class BackupRequestedData(Strict):
    """``BACKUP <code>``: the next qualified responder is paged at once (their page is a dispatch.offered)."""

    incident_id: UUID
    responder_id: UUID
    code: ShortCode
    message_sid: MessageSid | None = None
    paged: list[UUID] = Field(default_factory=list, description="empty: nobody qualified was left to page")


Responsiveness = Literal["alert", "voice", "pain", "unresponsive"]
"""AVPU."""


class VitalsRecordedData(Strict):
    """``VITALS <code> RR 12 SPO2 94 HR 88 AVPU V`` (any subset, at least one value)."""

    incident_id: UUID
    responder_id: UUID
    code: ShortCode
    taken_at: UtcDatetime
    respiratory_rate: StrictInt | None = Field(default=None, ge=0, le=80, description="breaths per minute")
    spo2: StrictInt | None = Field(default=None, ge=50, le=100, description="oxygen saturation, %")
    pulse: StrictInt | None = Field(default=None, ge=20, le=250, description="beats per minute")
    responsiveness: Responsiveness | None = None
    channel: Channel = "sms"
    message_sid: MessageSid | None = None


class EmsCalledData(Strict):
    """911 was called for the incident (``911 <code>`` by text, or from the incident page)."""

    incident_id: UUID
    called_at: UtcDatetime
    responder_id: UUID | None = None
    channel: Channel = "sms"
    message_sid: MessageSid | None = None
    recorded_by: str | None = Field(default=None, max_length=100)


class EmsOverdueData(Strict):
    """A P1 that needed EMS: EMS not confirmed on scene this long after it was called (or after the report, when
    the reporter had called): the supervisor was prompted."""

    incident_id: UUID
    since: UtcDatetime
    minutes_waited: StrictInt = Field(ge=0)
    supervisor_id: UUID | None = None


class IncidentReassessedData(Strict):
    """A clinician re-scored the person on scene (incident page); triage re-ran. Produced by the projections
    (the incident page); the dispatcher acts on a priority change."""

    incident_id: UUID
    instrument: Literal["cows", "ciwa_ar", "c_ssrs"]
    score: StrictInt | None = Field(default=None, ge=0, le=67, description="COWS 0-48 or CIWA-Ar 0-67 total")
    c_ssrs_risk: Literal["low", "moderate", "high"] | None = None
    previous_priority: Priority
    priority: Priority
    risk_level: str | None = Field(default=None, max_length=32)
    reasons: list[str] = Field(default_factory=list)
    recorded_by: str = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None


# ---- naloxone in the bag --------------------------------------------------------------------------------------


class NaloxoneKits(Strict):
    """Kits of one lot."""

    count: StrictInt = Field(ge=0, le=500)
    lot: str | None = Field(default=None, max_length=40, pattern=r"^[A-Za-z0-9-]+$")
    expires_on: date | None = Field(default=None, description="None: not recorded (counted as usable)")


class NaloxoneStockChangedData(Strict):
    """A responder's naloxone stock after a change. ``usable``: kits not expired on the day of the change."""

    responder_id: UUID
    reason: Literal["dose_given", "left_behind", "restocked", "corrected"]
    change: StrictInt = Field(description="kits added (positive) or taken out (negative)")
    kits: list[NaloxoneKits]
    usable: StrictInt = Field(ge=0)
    incident_id: UUID | None = None
    channel: Channel | None = None
    message_sid: MessageSid | None = None


class NaloxoneRestockReportedData(Strict):
    """A restock entered on the incident page (producer: projections); the dispatcher applies it to the stock."""

    responder_id: UUID
    kits: list[NaloxoneKits] = Field(min_length=1, max_length=10)
    recorded_by: str = Field(min_length=1, max_length=100)


class NaloxoneLeftBehindData(Strict):
    """Kits left with the person or family (leave-behind programs report these by zone and month)."""

    incident_id: UUID
    responder_id: UUID
    count: StrictInt = Field(ge=1, le=20)
    lot: str | None = Field(default=None, max_length=40, pattern=r"^[A-Za-z0-9-]+$")
    zone: str | None = Field(default=None, max_length=64)
    channel: Channel = "sms"
    message_sid: MessageSid | None = None


class NaloxoneStockLowData(Strict):
    """A responder's usable kits fell to the low-stock threshold or below: the supervisor was told."""

    responder_id: UUID
    usable: StrictInt = Field(ge=0)
    threshold: StrictInt = Field(ge=0)
    supervisor_id: UUID | None = None


class CheckInStarted(event_type("checkin.started", CheckInStartedData)):
    pass


class CheckInPrompted(event_type("checkin.prompted", CheckInPromptedData)):
    pass


class CheckInConfirmed(event_type("checkin.confirmed", CheckInConfirmedData)):
    pass


class CheckInMissed(event_type("checkin.missed", CheckInMissedData)):
    pass


class CheckInDuress(event_type("checkin.duress", CheckInDuressData)):
    pass


class CheckInEnded(event_type("checkin.ended", CheckInEndedData)):
    pass


class PairWait(event_type("field.pair_wait", PairWaitData)):
    pass


class EtaGiven(event_type("field.eta_given", EtaGivenData)):
    pass


class EtaOverdue(event_type("field.eta_overdue", EtaOverdueData)):
    pass


class CannotLocate(event_type("field.cannot_locate", CannotLocateData)):
    pass


class BackupRequested(event_type("field.backup_requested", BackupRequestedData)):
    pass


class VitalsRecorded(event_type("field.vitals_recorded", VitalsRecordedData)):
    pass


class EmsCalled(event_type("field.ems_called", EmsCalledData)):
    pass


class EmsOverdue(event_type("field.ems_overdue", EmsOverdueData)):
    pass


class IncidentReassessed(event_type("incident.reassessed", IncidentReassessedData)):
    pass


class NaloxoneStockChanged(event_type("naloxone.stock_changed", NaloxoneStockChangedData)):
    pass


class NaloxoneRestockReported(event_type("naloxone.restock_reported", NaloxoneRestockReportedData)):
    pass


class NaloxoneLeftBehind(event_type("naloxone.left_behind", NaloxoneLeftBehindData)):
    pass


class NaloxoneStockLow(event_type("naloxone.stock_low", NaloxoneStockLowData)):
    pass


EVENTS = (
    CheckInStarted,
    CheckInPrompted,
    CheckInConfirmed,
    CheckInMissed,
    CheckInDuress,
    CheckInEnded,
    PairWait,
    EtaGiven,
    EtaOverdue,
    CannotLocate,
    BackupRequested,
    VitalsRecorded,
    EmsCalled,
    EmsOverdue,
    IncidentReassessed,
    NaloxoneStockChanged,
    NaloxoneRestockReported,
    NaloxoneLeftBehind,
    NaloxoneStockLow,
)
UPCASTERS: dict = {}
