"""The person record in the workspace (issue 17, section 4): ``/workspace/people`` (search by alias; a director's
list), ``/workspace/people/new`` (register; ``?incident=<id>`` links at once), ``/workspace/people/{id}`` (the
profile, linked incidents, family contacts, consents, family messages and the disclosure list) and
``/workspace/people/{id}/consents/new`` (a 42 CFR 2.31 consent); JSON ``GET /v1/people/{id}`` and
``/v1/people/{id}/disclosures``. Who may see and do what is ``domain/person_access.py``'s, checked by
``PersonCommands``; a form refused is shown again as typed with its field named (422), nothing recorded.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.projections.adapters import html_pages as pages
from services.projections.caring_commands import CaringCommands
from services.projections.directory import ProgramDirectory
from services.projections.domain.caring import DEFAULT_SCHEDULE
from services.projections.domain.directory import DirectoryFilter
from services.projections.domain.person_access import PersonAction
from services.projections.entrypoints import person_forms as forms
from services.projections.entrypoints.auth import ApiCaller, Caller, PageCaller
from services.projections.entrypoints.form_values import InvalidFormValue
from services.projections.errors import InvalidForm, Refused, StreamUnavailable
from services.projections.person_commands import PersonCommands, UnknownPerson
from services.projections.responder_desk import Recorded
from services.runtime.credentials import Principal
from services.runtime.problems import problem_response
from services.runtime.request_ids import RequestIds
from services.runtime.stream import STREAM_NAME

if TYPE_CHECKING:  # the person desk's view, read only through its desk
    from services.projections.domain.person_record import PersonView

router = APIRouter()
PEOPLE = "/workspace/people"
CONSENT_FORM_FIELDS = ("patient_name", "discloser", "recipient", "designation", "information", "purpose")


def install_person_pages(app: FastAPI) -> None:
    """The routes, their settings, and the 404 of an unknown person (a director's; anyone else gets a 403)."""
    settings = forms.PersonPageSettings()
    app.state.person_page_settings = settings
    app.state.person_places = settings.places()
    app.include_router(router)

    @app.exception_handler(UnknownPerson)
    async def on_unknown_person(request: Request, exc: UnknownPerson) -> Response:
        message = f"no person {exc} is known here (yet)"
        if request.url.path.startswith("/workspace"):
            return HTMLResponse(pages.error_page(404, message, None, None), 404, headers=pages.PAGE_SECURITY_HEADERS)
        return problem_response(404, message, instance=request.url.path)


def person_commands(request: Request) -> PersonCommands:
    state = request.app.state
    desk = getattr(state, "person_desk", None)
    if desk is None:  # installed by the lifespan with the other desks: not before it started
        raise StreamUnavailable("the person record is not available now: its desk is not running")
    directory = ProgramDirectory(state.read_models.directory, state.clock, state.staleness_rule)
    commands = PersonCommands(
        state.record_access,
        desk,
        lambda sequence, timeout: desk.recorder.wait(STREAM_NAME, sequence, timeout),
        lambda program_id: directory.listing(str(program_id)) is not None,
        state.person_page_settings.organisation_name,
    )
    schedule = getattr(state, "caring_schedule", DEFAULT_SCHEDULE)
    commands.caring = CaringCommands(commands, getattr(state, "caring_desk", None), schedule)
    return commands


def programs(request: Request) -> list[tuple[str, str]]:
    state = request.app.state
    directory = ProgramDirectory(state.read_models.directory, state.clock, state.staleness_rule)
    listings = directory.listings(DirectoryFilter())
    return [(str(item.entry.program_id), item.entry.profile["name"]) for item in listings if not item.entry.retired]


def html(request: Request, caller: Caller, template: str, title: str, status: int = 200, **context: Any) -> Response:
    shown = {"done": None, "error": None, "invalid": None, "typed": {}, "form": None, "form_key": str(uuid4())}
    body = pages.render(
        template,
        title=title,
        who=caller.principal,
        csrf=caller.session.csrf_token if caller.session else "",
        active="people",
        zone=request.app.state.time_zone,
        now=request.app.state.clock.now(),
        words=WORDS,
        **shown | context,
    )
    return HTMLResponse(body, status_code=status, headers=pages.PAGE_SECURITY_HEADERS)


WORDS = {
    "scope": forms.SCOPE_WORDS,
    "message": forms.MESSAGE_WORDS,
    "purpose": forms.PURPOSE_WORDS,
    "signer": forms.SIGNER_WORDS,
    "revoke": forms.REVOKE_WORDS,
    "unlink": forms.UNLINK_WORDS,
    "relations": forms.RELATIONS,
    "preferences": forms.CONTACT_PREFERENCES,
    "languages": forms.PERSON_LANGUAGES,
    "sms_languages": forms.SMS_LANGUAGES,
}


def refusal_words(exc: InvalidForm | InvalidFormValue) -> str:
    message = exc.message if isinstance(exc, InvalidFormValue) else str(exc)
    return f"Not saved; nothing was recorded. {exc.field}: {message}"


def said(recorded: Recorded) -> str:
    return f"Recorded: {recorded.what}."


def back(path: str, **message: str) -> RedirectResponse:
    query = urlencode({k: v for k, v in message.items() if v})
    return RedirectResponse(f"{path}?{query}" if query else path, status_code=303)


async def form_of(request: Request, caller: Caller) -> dict[str, str]:
    values = {k: str(v) for k, v in (await request.form()).items()}
    caller.check_csrf(values.get("csrf_token"))
    return values


async def incident_people(request: Request, caller: Caller, incident_id: UUID) -> tuple[list[PersonView], bool]:
    """The people linked to the incident (its page's "Person" box), and whether ``caller`` may link one (the link
    is offered only then); none and False while the person desk is not running."""
    if getattr(request.app.state, "person_desk", None) is None:
        return [], False
    commands = person_commands(request)
    people = await commands.people_on_incident(caller.principal, incident_id)
    return people, await commands.may(caller.principal, PersonAction.LINK, None, incident_id)


def incident_of(request: Request) -> UUID | None:
    try:
        return forms.optional_id(dict(request.query_params), "incident")
    except InvalidFormValue:
        return None


# ---- search, and registering ------------------------------------------------------------------------------------


@router.get(PEOPLE, include_in_schema=False)
async def people(request: Request, caller: PageCaller, alias: str = "", done: str | None = None) -> Response:
    """People by alias (a director sees everyone with nothing typed); ``?incident=`` offers to link each."""
    found = await person_commands(request).find(caller.principal, alias[:60])
    incident = incident_of(request)
    return html(request, caller, "people.html", "People", people=found, alias=alias, incident=incident, done=done)


async def register_view(request: Request, caller: Caller, status: int = 200, **shown: Any) -> Response:
    commands = person_commands(request)
    await commands.check(caller.principal, PersonAction.REGISTER, None, "new", None)
    incident = shown.pop("incident", None) or incident_of(request)
    named = forms.place_names(request.app.state.person_places)
    return html(
        request, caller, "person_new.html", "Register a person", status, incident=incident, places=named, **shown
    )


@router.get(PEOPLE + "/new", include_in_schema=False)
async def register_form(request: Request, caller: PageCaller) -> Response:
    return await register_view(request, caller)


@router.post(PEOPLE + "/new", include_in_schema=False)
async def register(request: Request, caller: PageCaller) -> Response:
    values = await form_of(request, caller)
    commands, who = person_commands(request), caller.principal
    try:
        incident = forms.optional_id(values, "incident")
        profile = forms.profile_values(values, request.app.state.person_places)
        ids = forms.form_ids(who, values, request.url.path)
        person_id, recorded = await commands.register(who, profile, incident, ids)
        if incident is not None:
            view = await asyncio.to_thread(commands.records.person, person_id)
            if view is None or incident not in {link.incident_id for link in view.incidents}:
                await commands.link(who, person_id, incident, ids)
    except (InvalidForm, InvalidFormValue) as exc:
        return await register_view(
            request,
            caller,
            422,
            error=refusal_words(exc),
            invalid=exc.field,
            typed=values,
            incident=incident_or(values),
        )
    return back(f"{PEOPLE}/{person_id}", done=said(recorded) + (" Linked to the incident." if incident else ""))


def incident_or(values: dict[str, str]) -> UUID | None:
    try:
        return forms.optional_id(values, "incident")
    except InvalidFormValue:
        return None


# ---- one person ------------------------------------------------------------------------------------------------


async def person_view(request: Request, caller: Caller, person_id: UUID, status: int = 200, **shown: Any) -> Response:
    """The person's page; ``shown``: a message, and after a refused form which one (``form``), what was typed and
    which field was wrong."""
    commands, who = person_commands(request), caller.principal
    view = await commands.person(who, person_id)
    offered = {action.value: await commands.may(who, action, view) for action in PersonAction}
    unlinkable = {
        link.incident_id: await commands.may(who, PersonAction.UNLINK, view, link.incident_id)
        for link in view.incidents
    }
    codes = await commands.incident_codes(view)
    named = forms.place_names(request.app.state.person_places)
    caring = await asyncio.to_thread(commands.caring.series, person_id)
    return html(
        request,
        caller,
        "person.html",
        f"Person {view.alias}",
        status,
        person=view,
        may=offered,
        unlinkable=unlinkable,
        codes=codes,
        places=named,
        caring=caring,
        **shown,
    )


@router.get(PEOPLE + "/{person_id}", include_in_schema=False)
async def person_page(
    request: Request, person_id: UUID, caller: PageCaller, done: str | None = None, error: str | None = None
) -> Response:
    return await person_view(request, caller, person_id, done=done, error=error)


Change = Callable[[PersonCommands, Principal, UUID, dict[str, str], Any, RequestIds], Awaitable[Recorded]]


def _unlink(app: PersonCommands, who: Principal, person: UUID, values: dict, _: Any, ids: RequestIds) -> Any:
    incident = forms.required_id(values, "incident_id")
    return app.unlink(who, person, incident, values.get("reason", ""), ids)


def _revoke(app: PersonCommands, who: Principal, person: UUID, values: dict, _: Any, ids: RequestIds) -> Any:
    return app.revoke_consent(who, person, forms.required_id(values, "consent_id"), values.get("how", ""), ids)


def _family_message(app: PersonCommands, who: Principal, person: UUID, values: dict, _: Any, ids: RequestIds) -> Any:
    contact, incident = forms.required_id(values, "contact_id"), forms.optional_id(values, "incident_id")
    return app.request_family_message(who, person, contact, values.get("message", ""), incident, ids)


CHANGES: dict[str, Change] = {
    "update": lambda app, who, person, values, places, ids: app.update(
        who, person, forms.profile_values(values, places), ids
    ),
    "link": lambda app, who, person, values, _, ids: app.link(
        who, person, forms.required_id(values, "incident_id"), ids
    ),
    "unlink": _unlink,
    "contact": lambda app, who, person, values, _, ids: app.add_contact(who, person, forms.contact_values(values), ids),
    "remove_contact": lambda app, who, person, values, _, ids: app.remove_contact(
        who, person, forms.required_id(values, "contact_id"), ids
    ),
    "revoke": _revoke,
    "family_message": _family_message,
    "caring": lambda app, who, person, values, _, ids: app.caring.enrol(who, person, values, ids),
    "caring_end": lambda app, who, person, values, _, ids: app.caring.end(
        who, person, forms.required_id(values, "enrolment_id"), ids
    ),
}
"""The forms of a person's page, each to its use case (form values as read by ``person_forms``)."""


@router.post(PEOPLE + "/{person_id}/{action}", include_in_schema=False)
async def change(request: Request, person_id: UUID, action: str, caller: PageCaller) -> Response:
    """One form of the person's page: update, link, unlink, contact, remove_contact, revoke, family_message,
    caring, caring_end."""
    values = await form_of(request, caller)
    path = f"{PEOPLE}/{person_id}"
    if action not in CHANGES:
        return HTMLResponse(pages.error_page(404, "no such form", caller.principal, None), 404)
    who, places = caller.principal, request.app.state.person_places
    ids = forms.form_ids(who, values, request.url.path)
    try:
        recorded = await CHANGES[action](person_commands(request), who, person_id, values, places, ids)
    except (InvalidForm, InvalidFormValue) as exc:
        error = refusal_words(exc)
        return await person_view(
            request, caller, person_id, 422, error=error, invalid=exc.field, typed=values, form=action
        )
    except Refused as exc:
        return back(path, error=f"Not recorded: {exc}"[:300])
    if action == "link" and values.get("from") == "incident":
        return back(f"/workspace/incidents/{values['incident_id']}")
    return back(path, done=said(recorded))


# ---- consents ----------------------------------------------------------------------------------------------------


async def consent_view(request: Request, caller: Caller, person_id: UUID, status: int = 200, **shown: Any) -> Response:
    commands = person_commands(request)
    view = await commands.person(caller.principal, person_id, "consent_form")
    await commands.check(caller.principal, PersonAction.CONSENT, view, str(person_id), None)
    organisation = request.app.state.person_page_settings.organisation_name
    listed = await asyncio.to_thread(programs, request)
    typed = shown.pop("typed", None) or {"discloser": organisation, "revoke_how": forms.DEFAULT_REVOKE_HOW}
    return html(
        request,
        caller,
        "consent_form.html",
        f"Consent for {view.alias}",
        status,
        person=view,
        programs=listed,
        purposes=forms.PURPOSES,
        typed=typed,
        **shown,
    )


@router.get(PEOPLE + "/{person_id}/consents/new", include_in_schema=False)
async def consent_form(request: Request, person_id: UUID, caller: PageCaller) -> Response:
    return await consent_view(request, caller, person_id)


@router.post(PEOPLE + "/{person_id}/consents/new", include_in_schema=False)
async def record_consent(request: Request, person_id: UUID, caller: PageCaller) -> Response:
    form = await request.form()
    information = [str(v) for v in form.getlist("information")]
    values = {k: str(v) for k, v in form.items() if k != "information"}
    caller.check_csrf(values.get("csrf_token"))
    commands, who = person_commands(request), caller.principal
    state = request.app.state
    try:
        consent = forms.consent_values(values, information, state.time_zone, state.clock.now())
        _, recorded = await commands.record_consent(
            who, person_id, consent, forms.form_ids(who, values, request.url.path)
        )
    except (InvalidForm, InvalidFormValue) as exc:
        typed = {**values, "information": information}
        return await consent_view(
            request, caller, person_id, 422, error=refusal_words(exc), invalid=exc.field, typed=typed
        )
    return back(f"{PEOPLE}/{person_id}", done=said(recorded))


# ---- JSON ----------------------------------------------------------------------------------------------------------


def person_json(view: PersonView) -> dict[str, Any]:
    return jsonable_encoder(dataclasses.asdict(view))


@router.get("/v1/people/{person_id}", tags=["people"])
async def person_api(request: Request, person_id: UUID, caller: ApiCaller) -> JSONResponse:
    """A person's record (profile, linked incidents, contacts, consents, disclosures, blocked family messages):
    directors; responders paged for a linked incident, or who registered the person. Audited."""
    view = await person_commands(request).person(caller.principal, person_id, "read:api")
    return JSONResponse(person_json(view), headers={"Cache-Control": "no-store"})


@router.get("/v1/people/{person_id}/disclosures", tags=["people"])
async def disclosures_api(request: Request, person_id: UUID, caller: ApiCaller) -> JSONResponse:
    """Every disclosure about the person (when, to whom, what, under which consent, by which channel) and every
    family message blocked (with why). Same access as the record; audited."""
    view = await person_commands(request).person(caller.principal, person_id, "disclosures:api")
    body = {
        "person_id": str(person_id),
        "disclosures": jsonable_encoder([dataclasses.asdict(d) for d in view.disclosures]),
        "blocked": jsonable_encoder([dataclasses.asdict(b) for b in view.blocked]),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
