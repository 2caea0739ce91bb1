"""The person pages' forms as the workspace reads them: each form becomes the values of one contract event
(``services/contract/person.py``), or an ``InvalidFormValue`` naming the field that cannot be used (the page is
shown again as typed, 422). The words the pages say for each code (scopes, messages, purposes) are here too, so
a form and the page that shows what it recorded say the same thing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, get_args
from uuid import UUID

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.contract.events import derived_id
from services.contract.person import ConsentPurpose, ContactPreference, DisclosureScope, FamilyMessage, Relation
from services.contract.templates import Language
from services.contract.treatment import LanguageCode
from services.projections.entrypoints.form_values import InvalidFormValue, form_time
from services.runtime.credentials import Principal
from services.runtime.gazetteer import GazetteerIndex, load_gazetteer
from services.runtime.input_times import within_input_range
from services.runtime.request_ids import FRESH, RequestIds

SCOPE_WORDS: dict[str, str] = {
    DisclosureScope.SAFETY_STATUS: "Safety status: help is on the way, a responder is with them, they are safe",
    DisclosureScope.CONTACT_POINT: "Where to call: the organisation's number, 988, family-support guidance",
    DisclosureScope.TREATMENT_STATUS: "Treatment status: referred to or admitted to treatment (not where, not why)",
    DisclosureScope.REFERRAL_NEEDS: "Referral needs: the level of care and needs, to the programs referred to",
    DisclosureScope.CLINICAL_RECORD: "Clinical record: the crisis documentation, to a treating provider",
}
"""Each ``DisclosureScope`` in plain words (the consent form's checkboxes, the disclosure list)."""
MESSAGE_WORDS: dict[str, str] = {
    FamilyMessage.HELP_ON_THE_WAY: "Help is on the way",
    FamilyMessage.RESPONDER_WITH_THEM: "A responder is with them",
    FamilyMessage.PERSON_SAFE: "They are safe",
    FamilyMessage.SUPPORT_GUIDANCE: "Where to call for support (family guidance)",
    FamilyMessage.ADMITTED_TO_CARE: "They were admitted to care",
}
PURPOSE_WORDS: dict[str, str] = {
    "family_support": "Keeping family or caregivers informed and supported",
    "care_coordination": "Coordinating care with the recipient",
    "treatment_payment_operations": "Treatment, payment and health care operations (one consent for all)",
}
SIGNER_WORDS = {"self": "The person", "guardian": "Guardian", "personal_representative": "Personal representative"}
REVOKE_WORDS = {"verbal": "Said so", "written": "In writing", "sms_stop": "Texted STOP", "app": "In the app"}
UNLINK_WORDS = {"entered_in_error": "Entered in error", "not_this_person": "Not this person"}
RELATIONS: tuple[str, ...] = get_args(Relation)
CONTACT_PREFERENCES: tuple[str, ...] = get_args(ContactPreference)
PERSON_LANGUAGES: tuple[str, ...] = get_args(LanguageCode)
SMS_LANGUAGES: tuple[str, ...] = get_args(Language)
PURPOSES: tuple[str, ...] = get_args(ConsentPurpose)
DEFAULT_REVOKE_HOW = "Tell any staff member, in person, by phone or in writing, or text STOP to our number."


class PersonPageSettings(BaseSettings):
    """The person pages' settings (environment ``CRISIS_...``)."""

    model_config = SettingsConfigDict(env_prefix="CRISIS_", extra="ignore")

    organisation_name: str = Field(
        default="", max_length=200, description="who may disclose, as a consent form proposes it; empty: typed"
    )
    gazetteer_file: Path | None = Field(
        default=Path("deploy/demo/gazetteer.json"),
        description="named places a person may choose as where they are (matching ranks programs from it)",
    )

    def places(self) -> GazetteerIndex | None:
        """The gazetteer's places; None when there is no file (then a place is given as lat/lon)."""
        if self.gazetteer_file is None or not self.gazetteer_file.exists():
            return None
        return GazetteerIndex(load_gazetteer(self.gazetteer_file))


def form_ids(who: Principal, values: Mapping[str, str], path: str) -> RequestIds:
    """The ids a form records under: derived from the key the page put in it (``form_key``) and the path it was
    sent to, so a form sent twice (a double click, a retry after a dropped answer) records once, while two forms
    of one page never share an id; fresh when it has none."""
    try:
        key = UUID(values.get("form_key", ""))
    except ValueError:
        return FRESH
    return RequestIds(derived_id("person_pages", who.subject, key, path))


def _text(values: Mapping[str, str], name: str) -> str:
    return values.get(name, "").strip()


def _choice(values: Mapping[str, str], name: str, allowed: Sequence[str], default: str | None = None) -> str:
    value = _text(values, name) or default or ""
    if value not in allowed:
        raise InvalidFormValue(name, f"choose one of {', '.join(allowed)}")
    return value


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidFormValue(name, "a number, e.g. 39.7392") from None


def chosen_place(values: Mapping[str, str], places: GazetteerIndex | None) -> dict[str, float] | None:
    """The place the person chose: lat and lon as typed, or a place the gazetteer knows by name; None if none."""
    lat, lon, name = _text(values, "lat"), _text(values, "lon"), _text(values, "place")
    if lat or lon:
        if not (lat and lon):
            raise InvalidFormValue("lon" if lat else "lat", "give both latitude and longitude, or a place's name")
        return {"lat": _number(lat, "lat"), "lon": _number(lon, "lon")}
    if not name:
        return None
    entry = places.match(name) if places else None
    if entry is None:
        raise InvalidFormValue("place", "not a place the gazetteer knows: give its name as listed, or lat and lon")
    return {"lat": entry.lat, "lon": entry.lon}


def place_names(places: GazetteerIndex | None) -> list[str]:
    """The named places a page offers to choose from (not the plain street addresses)."""
    return sorted({entry.place for entry in places.gazetteer.entries if entry.place}) if places else []


def profile_values(values: Mapping[str, str], places: GazetteerIndex | None) -> dict[str, Any]:
    """A person's profile (``PersonProfile`` but its id and actor)."""
    return {
        "alias": _text(values, "alias"),
        "preferred_language": _choice(values, "preferred_language", PERSON_LANGUAGES, "en"),
        "contact_preference": _choice(values, "contact_preference", CONTACT_PREFERENCES, "none"),
        "phone": _text(values, "phone").replace(" ", "").replace("-", "") or None,
        "chosen_place": chosen_place(values, places),
    }


def contact_values(values: Mapping[str, str]) -> dict[str, Any]:
    """A family contact (``FamilyContactAddedData`` but its ids and actor)."""
    return {
        "name": _text(values, "name"),
        "relation": _choice(values, "relation", RELATIONS),
        "phone": _text(values, "phone").replace(" ", "").replace("-", ""),
        "language": _choice(values, "language", SMS_LANGUAGES, "en"),
    }


def _recipient(values: Mapping[str, str]) -> dict[str, Any]:
    """'contact:<id>', 'program:<id>' or 'designation' (with its words) as a ``ConsentRecipient``."""
    chosen = _text(values, "recipient")
    kind, _, ident = chosen.partition(":")
    try:
        if kind == "contact":
            return {"kind": "family_contact", "contact_id": UUID(ident)}
        if kind == "program":
            return {"kind": "program", "program_id": UUID(ident)}
    except ValueError:
        raise InvalidFormValue("recipient", "choose a contact, a program or a general designation") from None
    if kind == "designation":
        if not _text(values, "designation"):
            raise InvalidFormValue("designation", "name the treating providers the consent designates")
        return {"kind": "general_designation", "designation": _text(values, "designation")}
    raise InvalidFormValue("recipient", "choose a contact, a program or a general designation")


def expiry(values: Mapping[str, str], zone: tzinfo) -> datetime | None:
    """The end of the day the consent expires on (it holds through that day, in the organisation's zone)."""
    text = _text(values, "expires_on")
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
        return within_input_range(datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone))
    except ValueError as exc:
        raise InvalidFormValue("expires_on", str(exc)) from None


def consent_values(
    values: Mapping[str, str], information: Sequence[str], zone: tzinfo, now: datetime
) -> dict[str, Any]:
    """A consent with every 42 CFR 2.31 element (``ConsentRecordedData`` but its ids and actor); ``information``:
    the scopes ticked. The contract refuses what is missing (no expiry, revocation not explained)."""
    unknown = [scope for scope in information if scope not in SCOPE_WORDS]
    if unknown or not information:
        raise InvalidFormValue("information", "tick at least one kind of information from the list")
    if not _text(values, "expires_on") and not _text(values, "expiry_event"):
        raise InvalidFormValue("expires_on", "give an expiry date or the event that ends the consent")
    if values.get("revocation_explained") != "yes":
        raise InvalidFormValue("revocation_explained", "explain the right to revoke, and how, then tick the box")
    signed_at = form_time(_text(values, "signed_at"), "signed_at", zone) or now
    expires_at = expiry(values, zone)
    if expires_at is not None and expires_at <= signed_at:
        raise InvalidFormValue("expires_on", "the consent must end after the day it was signed")
    return {
        "patient_name": _text(values, "patient_name"),
        "discloser": _text(values, "discloser"),
        "recipient": _recipient(values),
        "information": list(dict.fromkeys(information)),
        "purpose": _choice(values, "purpose", PURPOSES),
        "expires_at": expires_at,
        "expiry_event": _text(values, "expiry_event") or None,
        "revocation_explained": True,
        "revoke_how": _text(values, "revoke_how"),
        "signed_by": _text(values, "signed_by"),
        "signer_relation": _choice(values, "signer_relation", tuple(SIGNER_WORDS), "self"),
        "signed_at": signed_at,
    }


def optional_id(values: Mapping[str, str], name: str) -> UUID | None:
    text = _text(values, name)
    if not text:
        return None
    try:
        return UUID(text)
    except ValueError:
        raise InvalidFormValue(name, "choose from the list") from None


def required_id(values: Mapping[str, str], name: str) -> UUID:
    chosen = optional_id(values, name)
    if chosen is None:
        raise InvalidFormValue(name, "choose from the list")
    return chosen
