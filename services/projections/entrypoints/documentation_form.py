"""The documentation form as the workspace reads it: every field a clinician fills in is recorded, or the whole
form is refused with the field named (``InvalidFormValue``) and shown again as typed. Nothing is dropped: a
naloxone dose without the time it was given is refused, not left out of an answer that says "Saved.". The
sign-off form is checked the same way (``sign_off_refusal``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, tzinfo
from typing import Any

from pydantic import ValidationError

from services.contract.events import DocumentationFields
from services.projections.adapters.record_layout import SAFETY_STEPS
from services.projections.entrypoints.form_values import InvalidFormValue, form_time

FORM: tuple[tuple[str, str, str], ...] = (
    # (form field, its label, how it is read), in the form's order
    ("disposition", "Disposition", "text"),
    ("ems_activated", "EMS (911) activated", "yes/no"),
    ("ems_agency", "EMS agency", "text"),
    ("handoff_organisation", "Hand-off organisation", "text"),
    ("handoff_receiving_person", "Hand-off receiving person", "text"),
    ("supervisor_name", "Supervisor", "text"),
    ("documentation_minutes", "Minutes documenting", "number"),
    ("language", "Language used", "text"),
    ("interpreter_used", "Interpreter used", "yes/no"),
    ("acknowledged_at", "Acknowledged at", "time"),
    ("en_route_at", "En route at", "time"),
    ("on_scene_at", "On scene at", "time"),
    ("handed_off_at", "Care handed off at", "time"),
    ("cleared_at", "Cleared at", "time"),
    ("dose.given_at", "Given at", "dose"),
    ("dose.product", "Product", "dose"),
    ("dose.dose_mg", "Dose (mg)", "dose"),
    ("dose.route", "Route", "dose"),
    ("dose.given_by_role", "Given by (role)", "dose"),
    ("dose.response", "Response", "dose"),
    ("follow_up_plan", "Follow-up plan", "text"),
    *((f"safety_plan.{key}", text, "safety plan") for key, text in SAFETY_STEPS),
    ("notes", "Notes", "text"),
)
TEXT_FIELDS, YES_NO_FIELDS, TIME_FIELDS = (
    [name for name, _, how in FORM if how == kind] for kind in ("text", "yes/no", "time")
)
DOSE_ENTERED_BY = ("dose.given_at", "dose.product", "dose.dose_mg", "dose.given_by_role", "dose.response")
"""A dose counts as entered when any of these is filled in (the route always has a value)."""

SIGN_OFF_COMMENT_LIMIT = 1000  # DocumentationSignedOffData.comment

LABELS = {name: label for name, label, _ in FORM}
"""Form field -> the label the form shows it under, and the words a refusal names it by."""

SAVED_WORDS = {
    "naloxone_doses": "a naloxone dose",
    "notes": "a note",
    "safety_plan": "the safety plan",
    "ems_activated": "whether EMS was activated",
}


def _number(text: str, field: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise InvalidFormValue(field, "a whole number" if kind is int else "a number, e.g. 4 or 0.4") from None


def _yes_no(values: Mapping[str, str], field: str) -> bool | None:
    value = values.get(field, "")
    if value not in ("", "true", "false"):
        raise InvalidFormValue(field, "yes, no, or left empty")
    return None if value == "" else value == "true"


def _dose(values: Mapping[str, str], zone: tzinfo) -> dict[str, Any] | None:
    """The dose typed on the form, or None when none was; a dose typed without its time or product is refused."""
    if not any(values.get(name, "").strip() for name in DOSE_ENTERED_BY):
        return None
    for field, what in (("dose.given_at", "the time it was given"), ("dose.product", "the product given")):
        if not values.get(field, "").strip():
            raise InvalidFormValue(field, f"a naloxone dose needs {what}")
    dose: dict[str, Any] = {
        "given_at": form_time(values["dose.given_at"], "dose.given_at", zone),
        "product": values["dose.product"].strip(),
        "route": values.get("dose.route") or "intranasal",
        "given_by_role": values.get("dose.given_by_role", "").strip() or "unknown",
    }
    if values.get("dose.dose_mg", "").strip():
        dose["dose_mg"] = float(_number(values["dose.dose_mg"].strip(), "dose.dose_mg", float))
    if values.get("dose.response"):
        dose["response"] = values["dose.response"]
    return dose


def _form_field(location: tuple[Any, ...]) -> str:
    """The form field a validation error's location points at ('naloxone_doses', 0, 'route' -> 'dose.route')."""
    if location[:1] == ("naloxone_doses",):
        return f"dose.{location[-1]}" if len(location) > 2 else "dose.given_at"
    return ".".join(str(part) for part in location)


def documentation_fields(values: Mapping[str, str], zone: tzinfo = UTC) -> DocumentationFields:
    """Every non-empty form field as a DocumentationFields, times read in ``zone``; InvalidFormValue naming the
    first field that cannot be recorded as typed."""
    fields: dict[str, Any] = {name: values[name].strip() for name in TEXT_FIELDS if values.get(name, "").strip()}
    if values.get("documentation_minutes", "").strip():
        fields["documentation_minutes"] = _number(values["documentation_minutes"].strip(), "documentation_minutes", int)
    for name in YES_NO_FIELDS:
        if (answer := _yes_no(values, name)) is not None:
            fields[name] = answer
    for name in TIME_FIELDS:
        if moment := form_time(values.get(name), name, zone):
            fields[name] = moment
    plan = {
        key: values[f"safety_plan.{key}"].strip()
        for key, _ in SAFETY_STEPS
        if values.get(f"safety_plan.{key}", "").strip()
    }
    if plan:
        fields["safety_plan"] = plan
    if (dose := _dose(values, zone)) is not None:
        fields["naloxone_doses"] = [dose]
    try:
        return DocumentationFields.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidFormValue(_form_field(tuple(first["loc"])), first["msg"]) from None


def refusal_words(error: InvalidFormValue) -> str:
    """What the page says when the form is refused: nothing recorded, which field, why."""
    label = LABELS.get(error.field, error.field)
    return f"Not saved; nothing was recorded. {label} — {error.field}: {error.message}"


def recorded_as(field: str) -> str:
    """The DocumentationFields field a form field fills in ('dose.route' -> 'naloxone_doses')."""
    if field.startswith("dose."):
        return "naloxone_doses"
    return field.split(".")[0]


def _in_a_sentence(label: str) -> str:
    """'Cleared at' -> 'cleared at'; 'EMS agency' keeps its capitals."""
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


def saved_words(fields: DocumentationFields) -> str:
    """'Saved: disposition, a note and a naloxone dose.': each thing the save recorded, in the form's order."""
    order = dict.fromkeys(recorded_as(name) for name, _, _ in FORM)
    names = [name for name in order if name in fields.model_fields_set]
    said = [SAVED_WORDS.get(name) or _in_a_sentence(LABELS.get(name, name)) for name in names]
    listed = said[0] if len(said) == 1 else ", ".join(said[:-1]) + " and " + said[-1]
    return f"Saved: {listed}."


def sign_off_refusal(decision: str, comment: str | None) -> InvalidFormValue | None:
    """Why a sign-off form cannot be recorded as it was sent; None when it can."""
    if decision not in ("approved", "returned"):
        return InvalidFormValue("decision", "sign off, or return for changes")
    if comment and len(comment) > SIGN_OFF_COMMENT_LIMIT:
        return InvalidFormValue("comment", f"at most {SIGN_OFF_COMMENT_LIMIT} characters ({len(comment)} typed)")
    return None
