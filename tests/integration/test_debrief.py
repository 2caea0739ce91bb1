"""Staff wellbeing (issue 19 section 5): a death or an overdose reversal recorded on an incident opens one team
debrief, assigned to the supervisor of the responders on it (texted), due 72 h later; a documentation with neither
opens none. The follow-up desk on a real store (SQLite and PostgreSQL), fed by hand."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from services.contract.events import (
    DocumentationFields,
    DocumentationFieldsCompleted,
    DocumentationFieldsCompletedData,
    NaloxoneDoseRecord,
    new_event,
)
from services.projections.bootstrap import build_desk
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from tests.factories import T0
from tests.integration.test_projections import Story, team
from tests.integration.test_referral_desk import Fed


def documented(story: Story, at, **fields):
    data = DocumentationFieldsCompletedData(
        incident_id=story.incident_id, fields=DocumentationFields(**fields), completed_by="clinician-user"
    )
    return new_event(
        DocumentationFieldsCompleted,
        data,
        event_id=uuid4(),
        occurred_at=at,
        producer="t",
        incident_id=story.incident_id,
    )


def test_a_death_or_a_reversal_opens_one_debrief_for_the_supervisor(tmp_path, database_url) -> None:
    settings = ProjectionsSettings(var_dir=tmp_path, database_url=database_url)
    fed = Fed(build_desk(settings, ManualClock(T0)))
    try:
        people = team()
        clinician, supervisor = people["clinician"], people["supervisor"]
        died, reversed_, quiet = Story(), Story(code="5150"), Story(code="6160")
        fed.feed(*(p.registered() for p in people.values()))
        for story in (died, reversed_, quiet):
            fed.feed(*story.full_response(clinician, 1, 2, 20, 40))
        at = T0 + timedelta(hours=1)
        dose = NaloxoneDoseRecord(given_at=T0, product="naloxone 4 mg", route="intranasal", given_by_role="clinician",
                                  response="improved")  # fmt: skip
        out = fed.feed(
            documented(died, at, disposition="deceased"),
            documented(died, at, notes="again"),  # a second save: still one debrief
            documented(reversed_, at, naloxone_doses=[dose]),
            documented(quiet, at, disposition="stabilised_on_scene"),
        )
        created = [e.data for e in out if e.type == "followup.created" and e.data.rule == "debrief"]
        assert {c.incident_id for c in created} == {died.incident_id, reversed_.incident_id}
        assert {c.due_at for c in created} == {at + timedelta(hours=72)}
        assert {c.basis for c in created} == {"a death: team debrief", "an overdose reversal: team debrief"}
        assigned = {e.data.task_id: e.data.assignee_id for e in out if e.type == "followup.assigned"}
        assert {assigned[c.task_id] for c in created} == {supervisor.responder_id}
        told = [(e.data.to, e.data.template) for e in out if e.type == "notification.requested"]
        assert told.count((supervisor.phone, "task_due")) == 2
        cancelled = [e.data.reason for e in out if e.type == "followup.cancelled"]
        assert cancelled == ["deceased"]  # the death ends the outreach; the debrief stays
    finally:
        fed.desk.close()
