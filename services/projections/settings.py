from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from services.contract.triage import Thresholds
from services.projections.domain.followups import FollowUpPolicy
from services.projections.domain.outreach import OutreachPolicy
from services.projections.domain.progress import SlaTargets
from services.runtime.settings import RuntimeSettings


class ProjectionsSettings(RuntimeSettings):
    projections_host: str = Field(default="127.0.0.1", description="address the projections API listens on")
    projections_port: int = Field(default=8081, description="projections / director workspace HTTP port")

    sla_on_scene_minutes: int = Field(default=60, ge=1, description="on-scene target after the report (DOMAIN.md)")
    sla_on_scene_minutes_by_priority: dict[str, int] = Field(
        default_factory=dict, description='per-priority override, JSON, e.g. {"P3": 120}'
    )

    followup_outreach_hours: int = Field(default=72, ge=1, description="post-overdose outreach due after the report")
    followup_caring_contact_hours: int = Field(default=24, ge=1, description="caring contact after a suicidal crisis")
    followup_appointment_hours: int = Field(default=48, ge=1, description="appointment after a suicidal crisis")
    followup_medical_review_hours: int = Field(default=24, ge=1, description="medical review, severe CIWA-Ar")
    followup_prescriber_review_hours: int = Field(default=24, ge=1, description="prescriber review, COWS >= threshold")
    followup_bridge_grace_hours: int = Field(default=2, ge=1, description="an MOUD bridge appointment not kept by then")
    followup_debrief_hours: int = Field(default=72, ge=1, description="the debrief after a death or a reversal")
    followup_ed_visit_days: int = Field(default=7, ge=1, description="follow-up after an ED visit: target")
    followup_ed_deadline_days: int = Field(default=30, ge=1, description="follow-up after an ED visit: deadline")
    ciwa_severe_threshold: int = Field(default=19, ge=0, le=67, description="CIWA-Ar score that is severe")
    cows_prescriber_threshold: int = Field(default=8, ge=0, le=48, description="COWS score for prescriber review")
    followup_check_seconds: float = Field(default=30.0, gt=0, description="how often overdue follow-ups are checked")
    outreach_attempts: str = Field(
        default="post_overdose_outreach=4,caring_contact=5,follow_up_appointment=3,ed_follow_up=3,bridge_appointment=3",
        description="rules worked as a series of attempts, and how many attempts before 'unreachable'",
    )
    outreach_spacing_hours: float = Field(default=24.0, gt=0, description="the next attempt is due this much later")
    outreach_channels: str = Field(default="call,text,visit", description="the channel suggested for each attempt")

    session_secret: str = Field(
        default="", description="key signing workspace session cookies; empty: generated into <var_dir>/session.key"
    )
    session_hours: float = Field(default=8.0, gt=0, le=24 * 7, description="how long a workspace sign-in lasts")
    session_cookie_secure: bool = Field(default=False, description="mark the session cookie Secure (behind HTTPS)")
    max_request_bytes: int = Field(
        default=64 * 1024, ge=1024, description="largest request body accepted (JSON bodies and workspace forms)"
    )

    org_time_zone: str = Field(
        default="America/Denver",
        description="the organisation's IANA time zone: the workspace shows every time in it, with its abbreviation",
    )

    @field_validator("org_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/Denver)") from exc
        return value

    def time_zone(self) -> ZoneInfo:
        return ZoneInfo(self.org_time_zone)

    @field_validator("sla_on_scene_minutes_by_priority", mode="before")
    @classmethod
    def _json_map(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) and value.strip() else (value or {})

    def sla_targets(self) -> SlaTargets:
        minutes = {p: self.sla_on_scene_minutes for p in ("P1", "P2", "P3")}
        minutes.update(self.sla_on_scene_minutes_by_priority)
        return SlaTargets(on_scene_minutes=minutes, default_on_scene_minutes=self.sla_on_scene_minutes)

    def triage_thresholds(self) -> Thresholds:
        """What a re-assessment on scene re-runs triage with: intake's defaults, with this service's CIWA-Ar
        severe and COWS prescriber thresholds (the ones its follow-up rules use too)."""
        return Thresholds(ciwa_severe_at=self.ciwa_severe_threshold, cows_prescriber_at=self.cows_prescriber_threshold)

    def follow_up_policy(self) -> FollowUpPolicy:
        return FollowUpPolicy(
            outreach_hours=self.followup_outreach_hours,
            caring_contact_hours=self.followup_caring_contact_hours,
            appointment_hours=self.followup_appointment_hours,
            medical_review_hours=self.followup_medical_review_hours,
            prescriber_review_hours=self.followup_prescriber_review_hours,
            bridge_grace_hours=self.followup_bridge_grace_hours,
            debrief_hours=self.followup_debrief_hours,
            ed_visit_days=self.followup_ed_visit_days,
            ed_deadline_days=self.followup_ed_deadline_days,
            ciwa_severe_threshold=self.ciwa_severe_threshold,
            cows_prescriber_threshold=self.cows_prescriber_threshold,
            outreach=OutreachPolicy(
                attempts={
                    rule.strip(): int(n)
                    for rule, n in (p.split("=", 1) for p in self.outreach_attempts.split(",") if "=" in p)
                },
                spacing=timedelta(hours=self.outreach_spacing_hours),
                channels=tuple(c.strip() for c in self.outreach_channels.split(",") if c.strip()) or ("call",),
            ),
        )


def _pairs(text: str) -> list[tuple[str, str]]:
    """``a=1,b=2`` as [(a, 1), (b, 2)]; parts without '=' are ignored."""
    return [tuple(part.split("=", 1)) for part in text.split(",") if "=" in part]  # type: ignore[misc]
