"""MOUD continuity (issue 19 section 3): a buprenorphine (or other MOUD) bridge started in the field or the ED and
carried to a clinic appointment.

``moud.bridge_recorded`` (a prescriber, nurse or clinician on the incident, or a director): the dose given (how much,
when), the bridge prescription (days), and the bridge clinic appointment (when, and which program of the directory
if it is one), with who recorded it; linked to the incident's prescriber-review task when triage made one. The
follow-up desk then opens the outreach "if the bridge appointment is missed" (rule ``bridge_appointment``) due a
grace period after the appointment: ``moud.appointment_kept`` cancels it; if it passes, the coach and the
supervisor are paged that same moment (the overdue machinery) and the outreach is worked as a series of attempts.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import Field, model_validator

from services.contract.envelope import Strict, UtcDatetime, event_type
from services.contract.treatment import Medication


class MoudBridgeRecordedData(Strict):
    bridge_id: UUID
    incident_id: UUID
    task_id: UUID | None = Field(default=None, description="the incident's prescriber-review task, if any")
    medication: Medication = Medication.BUPRENORPHINE
    dose_mg: float | None = Field(default=None, gt=0, le=64, description="the dose given now, if one was")
    dose_given_at: UtcDatetime | None = None
    prescription_days: int | None = Field(default=None, ge=1, le=30, description="the bridge prescription")
    appointment_at: UtcDatetime
    program_id: UUID | None = Field(default=None, description="the bridge clinic, when it is in the directory")
    recorded_by: str = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None

    @model_validator(mode="after")
    def _dose(self) -> MoudBridgeRecordedData:
        if (self.dose_mg is None) != (self.dose_given_at is None):
            raise ValueError("a dose needs both how much and when")
        return self


class MoudAppointmentKeptData(Strict):
    bridge_id: UUID
    incident_id: UUID
    kept_at: UtcDatetime
    recorded_by: str = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None


class MoudBridgeRecorded(event_type("moud.bridge_recorded", MoudBridgeRecordedData)):
    pass


class MoudAppointmentKept(event_type("moud.appointment_kept", MoudAppointmentKeptData)):
    pass


EVENTS = (MoudBridgeRecorded, MoudAppointmentKept)
UPCASTERS: dict = {}
