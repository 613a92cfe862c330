"""References to shared rows (automation, API token, reviewer) keep their deletion rules.

They carry no database constraint (see automations/models.py), so these rules
now rest on Django's on_delete alone: deleting through the ORM must still be
refused, or cleared, exactly as before, and change nothing else.
"""

import pytest
from django.db.models import ProtectedError

from automations.models import Event, Label, ReviewTask, Run
from catalog.models import ApiToken, Automation
from catalog.tokens import token_issue
from tests.automations.test_labels import decided, make_automation
from tests.factories import EventFactory, RunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_execution(monkeypatch):
    monkeypatch.setattr("automations.services.dispatch.enqueue_execute", lambda run_id: None)


def test_an_automation_with_runs_cannot_be_deleted(reviewer):
    automation = make_automation("support-triage", reviewer)
    run = RunFactory(event__automation=automation)

    with pytest.raises(ProtectedError):
        automation.delete()

    assert Automation.objects.filter(pk=automation.pk).exists()
    assert Run.objects.filter(pk=run.pk, automation=automation).exists()


def test_a_reviewer_with_decisions_cannot_be_deleted(reviewer):
    automation = make_automation("support-triage", reviewer)
    task = decided(automation, reviewer, action="approve")

    with pytest.raises(ProtectedError):
        reviewer.delete()

    assert ReviewTask.objects.get(pk=task.pk).decided_by_id == reviewer.pk
    assert Label.objects.get(review_task=task).reviewer_id == reviewer.pk


def test_deleting_an_api_token_keeps_its_events_and_clears_the_reference(reviewer):
    automation = make_automation("support-triage", reviewer)
    token, _ = token_issue(name="ingest", automations=[automation])
    event = EventFactory(automation=automation, api_token=token)

    token.delete()

    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert Event.objects.get(pk=event.pk).api_token_id is None
