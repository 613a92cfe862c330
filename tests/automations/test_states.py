from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import Run
from automations.services.runs import run_transition
from automations.states import IllegalTransition, RunState, check_transition
from tests.factories import RunFactory


def test_shadow_run_can_only_be_recorded_after_deciding():
    check_transition(RunState.DECIDING, RunState.RECORDED)
    with pytest.raises(IllegalTransition):
        check_transition(RunState.RECORDED, RunState.EXECUTING)


@pytest.mark.django_db
def test_transition_is_recorded_with_actor_and_reason():
    run = RunFactory()
    run_transition(run=run, to_state=RunState.DECIDING, actor="worker:test", reason="picked up")
    transition = run.transitions.get()
    assert (transition.from_state, transition.to_state) == ("received", "deciding")
    assert transition.actor == "worker:test"
    run.refresh_from_db()
    assert run.state == "deciding"


@pytest.mark.django_db
def test_a_move_marks_the_run_updated_at_the_time_of_its_transition():
    run = RunFactory()
    Run.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(hours=1))

    run_transition(run=run, to_state=RunState.DECIDING, actor="worker:test")

    run.refresh_from_db()
    assert abs(run.updated_at - run.transitions.get().at) < timedelta(seconds=1)


@pytest.mark.django_db
def test_stale_run_cannot_move_twice():
    run = RunFactory()
    stale = type(run).objects.get(pk=run.pk)
    run_transition(run=run, to_state=RunState.DECIDING, actor="worker:a")
    with pytest.raises(IllegalTransition):
        run_transition(run=stale, to_state=RunState.DECIDING, actor="worker:b")
    assert run.transitions.count() == 1


@pytest.mark.django_db
def test_illegal_transition_changes_nothing():
    run = RunFactory()
    with pytest.raises(IllegalTransition):
        run_transition(run=run, to_state=RunState.EXECUTED, actor="worker:a")
    run.refresh_from_db()
    assert run.state == "received"
    assert not run.transitions.exists()
