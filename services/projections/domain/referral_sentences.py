"""How the closed-loop referral's events and the person record's incident events read on an incident's timeline
(issue 17); joined into ``entries.WORDING``. A program is named when its answer carried its name; a family member
only by relation, never by name or phone."""

from __future__ import annotations

from typing import Any

from services.contract.events import (
    DisclosureRecorded,
    FamilyMessageBlocked,
    LevelOfCareChosen,
    PersonIncidentLinked,
    PersonIncidentUnlinked,
    ReferralAcceptanceOverdue,
    ReferralAccepted,
    ReferralAdmitted,
    ReferralCancelled,
    ReferralDeclined,
    ReferralEscalated,
    ReferralEscalationAnswered,
    ReferralInfoProvided,
    ReferralInfoRequested,
    ReferralInsuranceVerified,
    ReferralNoShow,
    ReferralReceived,
    ReferralSent,
    ReferralTransportArranged,
    ReferralWithdrawn,
)
from services.projections.domain.plain_words import words


def _program(e: Any) -> str:
    return getattr(e.data, "program_name", None) or f"program {str(e.data.program_id)[:8]}"


def _answer_channel(e: Any, t: Any) -> str:
    return {"link": "program link", "sms": "sms", "app": "app"}.get(e.data.channel, e.data.channel)


def _sent(e: Any, t: Any) -> str:
    d = e.data
    return (
        f"referral {d.code} sent to {len(d.program_ids)} program(s) for level of care {d.level_of_care.value}; "
        f"accept by {t.moment(d.accept_by, e.occurred_at)}"
    )


def _chosen(e: Any, t: Any) -> str:
    d = e.data
    proposed = f" (triage proposed {d.proposed.value})" if d.proposed else ""
    why = f": {d.reason}" if d.reason else ""
    return f"level of care {d.chosen.value} chosen{proposed}{why}"


REFERRAL_WORDING: dict[type, tuple[Any, Any, Any]] = {
    LevelOfCareChosen: ("chosen_by", "app", _chosen),
    ReferralSent: ("sent_by", "app", _sent),
    ReferralReceived: ("actor", _answer_channel, lambda e, t: f"{_program(e)} received the referral"),
    ReferralAccepted: (
        "actor",
        _answer_channel,
        lambda e, t: (
            f"{_program(e)} accepted; admission {t.moment(e.data.admission_from, e.occurred_at)} "
            f"to {t.moment(e.data.admission_until, e.occurred_at)}"
        ),
    ),
    ReferralDeclined: ("actor", _answer_channel, lambda e, t: f"{_program(e)} declined: {words(e.data.reason.value)}"),
    ReferralInfoRequested: (
        "actor",
        _answer_channel,
        lambda e, t: f"{_program(e)} needs information: {', '.join(words(n.value) for n in e.data.needed)}",
    ),
    ReferralInfoProvided: ("actor", "app", lambda e, t: "information sent to the program"),
    ReferralWithdrawn: ("referral desk", "system", lambda e, t: f"offer withdrawn ({words(e.data.reason)})"),
    ReferralTransportArranged: ("actor", "app", lambda e, t: f"transport arranged: {words(e.data.mode)}"),
    ReferralInsuranceVerified: ("actor", "app", lambda e, t: f"insurance verified: {e.data.status}"),
    ReferralAdmitted: ("actor", _answer_channel, lambda e, t: f"arrival confirmed at {_program(e)}"),
    ReferralNoShow: ("actor", "system", lambda e, t: "the admission window closed without an arrival"),
    ReferralCancelled: ("actor", "app", lambda e, t: f"referral cancelled: {words(e.data.reason.value)}"),
    ReferralAcceptanceOverdue: (
        "referral desk",
        "system",
        lambda e, t: f"referral {e.data.code}: nobody accepted in time; the on-call supervisor is paged",
    ),
    ReferralEscalated: (
        "dispatcher",
        "sms",
        lambda e, t: (
            f"referral {e.data.code}: paged ({e.data.repeat}) "
            + (", ".join(p.role for p in e.data.notified) or "nobody on the roster")
        ),
    ),
    ReferralEscalationAnswered: (
        "dispatcher",
        "sms",
        lambda e, t: (
            f"referral {e.data.code}: "
            + (f"taken by the {e.data.role}" if e.data.role else f"paging ended ({words(e.data.reason)})")
        ),
    ),
    PersonIncidentLinked: ("actor", "app", lambda e, t: "linked to a person record"),
    PersonIncidentUnlinked: ("actor", "app", lambda e, t: f"unlinked from a person record ({words(e.data.reason)})"),
    FamilyMessageBlocked: (
        "person desk",
        "system",
        lambda e, t: f"family message not sent: {words(e.data.reason)}",
    ),
    DisclosureRecorded: (
        "person desk",
        "system",
        lambda e, t: f"disclosed to {e.data.recipient_label} ({words(e.data.channel)}) under consent",
    ),
}
"""event type -> (who: a data field name or a fixed name, channel, what)."""
