"""The demo's beat: every periodic task runs in process, one failing does not stop the others."""

from datetime import timedelta
from unittest import mock

import pytest
from celery.app.task import Task
from django.core.management import call_command
from django.utils import timezone

from automations.models import Run
from tests.factories import BILLING_RULE, AutomationFactory, EventFactory, IntentFactory, RunFactory

pytestmark = pytest.mark.django_db


def test_every_entry_of_the_schedule_runs_in_process_without_failing(settings):
    ran = []
    apply = Task.apply

    def counted(task, *args, **kwargs):
        ran.append(task.name)
        return apply(task, *args, **kwargs)

    with (
        mock.patch("automations.management.commands.run_periodic.logger") as log,
        mock.patch("celery.app.task.Task.apply", counted),
    ):
        call_command("run_periodic", "--once")

    log.exception.assert_not_called()
    assert sorted(ran) == sorted(e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values())


def test_the_sweep_it_runs_decides_a_run_whose_message_was_lost():
    automation = AutomationFactory(mode="shadow", rules=[BILLING_RULE])
    IntentFactory(automation=automation)
    run = RunFactory(
        event=EventFactory(automation=automation, payload={"body": "invoice?"}),
        state="received",
        due_at=timezone.now() - timedelta(seconds=5),
    )

    call_command("run_periodic", "--once")

    assert Run.objects.get(pk=run.pk).state == "recorded"
