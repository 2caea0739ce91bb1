from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from services.dispatcher.application import ReplyLimits
from services.dispatcher.domain.field_policy import (
    CheckInPolicy,
    FieldPolicy,
    PairsOnly,
    parse_duress_words,
    parse_minutes_by,
    parse_pairs_only,
    step_offsets,
)
from services.dispatcher.domain.policy import AlarmPolicy, PagingPolicy, ReferralAlarmPolicy, StepPolicy
from services.dispatcher.domain.routing import RoutingRules
from services.runtime.settings import RuntimeSettings
from services.runtime.signed_links import ResponderLinks, link_key


class DispatcherSettings(RuntimeSettings):
    """Paging policy and routing rules. Defaults are DOMAIN.md's; every one is CRISIS_<NAME> in the environment."""

    roster_seed_file: Path | None = Field(
        default=Path("deploy/demo/roster.json"),
        description="demo roster + rotations published as roster events when the dispatcher has no responders; "
        "empty in production, where the admin API manages the roster",
    )
    ack_timeout_p1_seconds: int = Field(default=90, ge=10, description="P1 acknowledgement deadline per step")
    ack_timeout_p2_seconds: int = Field(default=300, ge=10, description="P2 acknowledgement deadline per step")
    ack_timeout_p3_seconds: int = Field(default=900, ge=10, description="P3 acknowledgement deadline per step")
    pages_at_once_p1: int = Field(default=2, ge=1, le=5, description="P1 pages this many at once")
    pages_at_once_p2: int = Field(default=1, ge=1, le=5)
    pages_at_once_p3: int = Field(default=1, ge=1, le=5)
    p1_reminder_seconds: int | None = Field(default=30, ge=5, description="second SMS for an open P1 page")
    p1_voice_seconds: int | None = Field(default=60, ge=5, description="voice call for a P1 page still open")
    candidate_steps: int = Field(default=2, ge=1, description="steps of next-best candidates before the supervisor")
    team_kinds: list[str] = Field(default=["self_harm_risk"], description="crisis kinds paged as clinician + peer")
    second_acceptance: Literal["backup", "stand_down"] = "backup"
    nobody_accepted_repeat_seconds: int = Field(
        default=120,
        ge=10,
        description="NOBODY ACCEPTED (a P1/P2 ladder ran out) is texted again to the supervisors and directors, "
        "and P1 called again, this often until someone accepts, the incident is cancelled or a disposition is "
        "recorded; 120 s suits the demo, production might choose 300",
    )
    referral_alarm_repeat_minutes: int = Field(
        default=15,
        ge=1,
        description="a referral nobody accepted in time: the on-duty supervisor is texted, then the supervisors and "
        "directors again this often until someone replies Y <code>, a program accepts or it is cancelled",
    )
    referral_alarm_soundings: int = Field(default=4, ge=1, le=20, description="how many times, the first included")
    after_hours_cap_per_week: int = Field(
        default=10,
        ge=0,
        description="after-hours pages (before 08:00, from 18:00, weekends) per person in 7 days; at the cap a "
        "person is passed over after hours while anyone else can go (0: no cap)",
    )
    rest_after_hard_call_hours: float = Field(
        default=8.0,
        ge=0,
        description="after a death or an overdose reversal, its responders are passed over in routing this long "
        "while anyone else can be paged (0: off)",
    )
    stale_location_minutes: int = Field(default=30, ge=1, description="older reported locations fall back to home")
    max_radius_km: float = Field(default=80.0, gt=0)
    busy_at_load: int = Field(default=1, ge=1, description="open incidents that make a responder busy")
    quiet_reply_limit: int = Field(default=5, ge=1, description="answers to no-op replies per number per window")
    quiet_reply_window_minutes: int = Field(default=15, ge=1)
    code_reuse_hours: int = Field(default=24, ge=0, description="a closed page's code is not reused before this")
    gazetteer_file: Path | None = Field(
        default=Path("deploy/demo/gazetteer.json"),
        description="places a responder may text as AT <place>, and the only names a page may give the scene",
    )
    workspace_public_url: str = Field(
        default="http://127.0.0.1:8081",
        max_length=57,  # with /r/ and the 40-character token, the link fits the one-segment accept confirmation
        pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._-]+)*/?$",
        description="the projections service's URL as responders' phones reach it: the accept confirmation links "
        "to <this>/r/<token>, the responder's incident page",
    )
    responder_link_hours: float = Field(
        default=12.0, gt=0, le=7 * 24, description="how long the link in an accept confirmation opens the page"
    )
    # ---- the field: check-ins, pairs only, late ETA, EMS not confirmed (field_policy.py) ----------------
    checkin_minutes: int = Field(default=15, ge=1, le=240, description="a responder on scene checks in this often")
    checkin_minutes_by: str = Field(
        default="",
        description="overrides of CHECKIN_MINUTES, comma separated: <kind>:<priority>=<min>, <kind>=<min> or "
        "<priority>=<min> (the first that matches, in that order), e.g. 'self_harm_risk:P1=10,P3=30'",
    )
    checkin_prompt_minutes: int = Field(
        default=2, ge=0, le=60, description="'Reply OK <code> by <time>' is texted this long before a check-in is due"
    )
    checkin_reminder_minutes: int = Field(default=0, ge=0, le=240, description="missed: a reminder text this late")
    checkin_call_minutes: int = Field(default=2, ge=0, le=240, description="missed: a voice call this late")
    checkin_supervisor_minutes: int = Field(
        default=5, ge=0, le=240, description="missed: the supervisor and the team partner paged this late"
    )
    checkin_911_minutes: int = Field(
        default=10, ge=0, le=240, description="missed: the supervisor told to call 911 this late"
    )
    checkin_minute_seconds: float = Field(
        default=60.0, ge=0.5, le=60.0, description="seconds in a check-in minute: 60 (a drill or a bench: fewer)"
    )
    duress_words: str = Field(
        default="",
        description="comma-separated words that, in any reply, answer as OK and silently page the supervisor; "
        "share them with staff only; empty: off",
    )
    pairs_only: str = Field(
        default="self_harm_risk:high",
        description="incidents a responder must not enter alone, comma separated: <kind> or <kind>:<risk level>",
    )
    eta_grace_minutes: int = Field(
        default=10, ge=0, le=240, description="not ARRIVED this long after the ETA given: the supervisor is prompted"
    )
    ems_confirm_minutes: int = Field(
        default=20,
        ge=1,
        le=240,
        description="a P1 needing EMS: EMS not confirmed on scene this long after 911 "
        "was called (or the report, when the reporter had called): the supervisor is prompted",
    )
    org_time_zone: str = Field(
        default="America/Denver", description="the organisation's IANA time zone: times in texts ('by 14:05')"
    )

    dispatcher_ops_host: str = Field(default="127.0.0.1", description="address of the ops endpoints")
    dispatcher_ops_port: int = Field(
        default=9101, ge=0, le=65535, description="port of /metrics, /livez and /readyz; 0 turns them off"
    )
    # ---- naloxone in the bag (naloxone_stock.py) ----------------------------------------------------------
    naloxone_low_stock: int = Field(
        default=1,
        ge=0,
        le=50,
        description="the supervisor is told once when a responder's usable naloxone kits fall to this or below "
        "(again only after a restock above it)",
    )

    @field_validator("roster_seed_file", "gazetteer_file", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        """`CRISIS_ROSTER_SEED_FILE=` (empty) switches the file off; it is not the current directory."""
        return None if value == "" else value

    @field_validator("checkin_minutes_by")
    @classmethod
    def _minutes_by(cls, value: str) -> str:
        parse_minutes_by(value)
        return value

    @field_validator("pairs_only")
    @classmethod
    def _pairs_only(cls, value: str) -> str:
        parse_pairs_only(value)
        return value

    @field_validator("org_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/Denver)") from exc
        return value

    def field_policy(self) -> FieldPolicy:
        minute = timedelta(seconds=self.checkin_minute_seconds)
        steps = step_offsets(
            self.checkin_reminder_minutes,
            self.checkin_call_minutes,
            self.checkin_supervisor_minutes,
            self.checkin_911_minutes,
        )
        return FieldPolicy(
            check_in=CheckInPolicy(
                minutes=self.checkin_minutes,
                minutes_by=parse_minutes_by(self.checkin_minutes_by),
                prompt_before=minute * self.checkin_prompt_minutes,
                step_after=tuple(minute * (step / timedelta(minutes=1)) for step in steps),
                minute=minute,
            ),
            pairs_only=PairsOnly(parse_pairs_only(self.pairs_only)),
            eta_grace=timedelta(minutes=self.eta_grace_minutes),
            ems_confirm=timedelta(minutes=self.ems_confirm_minutes),
            duress_words=parse_duress_words(self.duress_words),
        )

    def paging_policy(self) -> PagingPolicy:
        def step(pages: int, timeout: int, reminder: int | None = None, voice: int | None = None) -> StepPolicy:
            return StepPolicy(
                pages,
                timedelta(seconds=timeout),
                timedelta(seconds=reminder) if reminder else None,
                timedelta(seconds=voice) if voice else None,
            )

        return PagingPolicy(
            by_priority={
                "P1": step(
                    self.pages_at_once_p1, self.ack_timeout_p1_seconds, self.p1_reminder_seconds, self.p1_voice_seconds
                ),
                "P2": step(self.pages_at_once_p2, self.ack_timeout_p2_seconds),
                "P3": step(self.pages_at_once_p3, self.ack_timeout_p3_seconds),
            },
            candidate_steps=self.candidate_steps,
            team_kinds=frozenset(self.team_kinds),
            second_acceptance=self.second_acceptance,
            alarm=AlarmPolicy(repeat_every=timedelta(seconds=self.nobody_accepted_repeat_seconds)),
            referral_alarm=ReferralAlarmPolicy(
                timedelta(minutes=self.referral_alarm_repeat_minutes), self.referral_alarm_soundings
            ),
            rest_hours=self.rest_after_hard_call_hours,
        )

    def routing_rules(self) -> RoutingRules:
        return RoutingRules(
            stale_after=timedelta(minutes=self.stale_location_minutes),
            max_radius_km=self.max_radius_km,
            busy_at_load=self.busy_at_load,
            after_hours_cap=self.after_hours_cap_per_week,
            zone=self.org_time_zone,
        )

    def responder_links(self) -> ResponderLinks:
        return ResponderLinks(
            link_key(self.responder_link_key, self.var_dir),
            timedelta(hours=self.responder_link_hours),
            self.workspace_public_url,
        )

    def reply_limits(self) -> ReplyLimits:
        return ReplyLimits(
            limit=self.quiet_reply_limit,
            window=timedelta(minutes=self.quiet_reply_window_minutes),
            code_reuse_after=timedelta(hours=self.code_reuse_hours),
        )
