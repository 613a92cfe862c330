"""The sweep hands overdue runs to workers again; ingestion survives a broker that is down."""

import json
from datetime import timedelta
from unittest import mock

import kombu.exceptions
import pytest
from django.db import connection
from django.utils import timezone

from automations.models import Action, ActionAttempt, Run
from automations.services import dispatch, runs
from automations.services.actions import IN_FLIGHT, LOST
from automations.services.recovery import database_up_seconds, runs_overdue, sweep
from automations.services.runs import (
    SWEPT,
    hold,
    hold_lease_seconds,
    holds_release,
    holds_renew,
    run_take_over,
    run_transition,
    worker_actor,
)
from automations.tasks import decide_run, execute_run
from catalog.tokens import token_issue
from reviewapp.celery import app as celery_app
from tests.factories import (
    BILLING_RULE,
    AutomationFactory,
    EventFactory,
    IntentFactory,
    RunFactory,
    UserFactory,
)
from tests.support.webhook_receiver import WebhookReceiver, new_webhook_secret

pytestmark = pytest.mark.django_db

PAST = timedelta(seconds=5)


@pytest.fixture
def sent():
    """The runs the sweep enqueues, by task, instead of running them."""
    calls = {"decide": [], "execute": []}

    def enqueued(task):
        return lambda run_id, **options: calls[task].append(run_id) or True

    with (
        mock.patch.object(dispatch, "enqueue_decide", side_effect=enqueued("decide")),
        mock.patch.object(dispatch, "enqueue_execute", side_effect=enqueued("execute")),
    ):
        yield calls


def run_in(state, *, due_in: timedelta | None, held_by: str = ""):
    due = None if due_in is None else timezone.now() + due_in
    return RunFactory(state=state, due_at=due, held_by=held_by)


def test_overdue_runs_go_to_the_task_that_moves_them_on(sent):
    received = run_in("received", due_in=-PAST)
    deciding = run_in("deciding", due_in=-PAST, held_by="worker:lost")
    approved = run_in("approved", due_in=-PAST)
    executing = run_in("executing", due_in=-PAST, held_by="worker:lost")

    result = sweep()

    assert sorted(sent["decide"]) == sorted([received.pk, deciding.pk])
    assert sorted(sent["execute"]) == sorted([approved.pk, executing.pk])
    assert (result.overdue, result.dispatched, result.waiting) == (4, 4, 0)


def test_runs_not_yet_due_or_waiting_for_a_person_are_left_alone(sent):
    run_in("received", due_in=timedelta(seconds=30))
    run_in("deciding", due_in=timedelta(seconds=30), held_by="worker:busy")
    run_in("awaiting_review", due_in=None)
    run_in("executed", due_in=None)

    assert sweep().overdue == 0
    assert sent == {"decide": [], "execute": []}


def test_a_run_sent_again_is_not_sent_again_by_the_next_sweep(sent):
    run = run_in("received", due_in=-PAST)

    sweep()
    sweep()

    assert sent["decide"] == [run.pk]
    run.refresh_from_db()
    assert run.due_at > timezone.now() + timedelta(seconds=20)  # due again in half the bound


def test_unheld_runs_wait_while_messages_are_queued_but_lost_holders_do_not(sent):
    queued = run_in("received", due_in=-PAST)
    lost = run_in("deciding", due_in=-PAST, held_by="worker:lost")

    with mock.patch.object(dispatch, "queue_length", return_value=12):
        result = sweep()

    # The received run's message may be waiting behind the other twelve.
    assert sent["decide"] == [lost.pk]
    assert (result.dispatched, result.waiting) == (1, 1)
    assert Run.objects.get(pk=queued.pk).due_at < timezone.now()


def test_runs_whose_message_went_out_before_the_broker_restarted_are_sent_at_once(sent, settings):
    grace = timedelta(seconds=settings.HANDRAIL_RECOVERY_SECONDS / 2)
    started = timezone.now() - timedelta(seconds=2)  # Redis came back 2 s ago, empty
    before, after = started - timedelta(seconds=5) + grace, timezone.now() + grace
    received = RunFactory(state="received", due_at=before)
    approved = RunFactory(state="approved", due_at=before)
    swept = RunFactory(state="deciding", due_at=before, held_by=SWEPT)
    received_since = RunFactory(state="received", due_at=after)
    deciding = RunFactory(state="deciding", due_at=before, held_by="worker:busy")
    retry = RunFactory(state="executing", due_at=before, held_by="")  # its retry is not due

    with (
        mock.patch.object(dispatch, "queue_length", return_value=12),
        mock.patch.object(dispatch, "broker_started_at", return_value=started),
    ):
        result = sweep()

    # Sent although not overdue and messages are queued: theirs are not among them.
    assert sorted(sent["decide"]) == sorted([received.pk, swept.pk])
    assert sent["execute"] == [approved.pk]
    assert (result.overdue, result.dispatched) == (0, 3)
    for run in (received_since, deciding, retry):
        assert Run.objects.get(pk=run.pk).held_by == run.held_by


def test_holds_that_lapsed_while_the_database_was_away_are_left_to_their_workers_a_while(sent):
    # Its worker sent the action, then could not record the answer nor renew its hold
    # while PostgreSQL restarted; it records it as soon as its pool has reconnected.
    cut_off = run_in("executing", due_in=-PAST, held_by="worker:cut-off")
    up = "automations.services.recovery.database_up_seconds"

    with mock.patch(up, return_value=1.0):
        sweep()
    assert sent["execute"] == []
    assert Run.objects.get(pk=cut_off.pk).held_by == "worker:cut-off"

    with mock.patch(up, return_value=hold_lease_seconds() + 1):  # its worker is lost after all
        sweep()
    assert sent["execute"] == [cut_off.pk]


@pytest.mark.postgres
def test_postgresql_says_how_long_it_has_been_up():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")

    assert database_up_seconds() > 0


def test_nothing_is_sent_or_pushed_on_while_the_broker_is_down(sent):
    run = run_in("received", due_in=-PAST)
    due = Run.objects.get(pk=run.pk).due_at

    with mock.patch.object(
        dispatch, "queue_length", side_effect=dispatch.BrokerUnavailable("refused")
    ):
        result = sweep()

    assert sent["decide"] == [] and result.dispatched == 0
    assert Run.objects.get(pk=run.pk).due_at == due


SECRET_ENV = "TEST_WEBHOOK_SECRET"
FINAL_INTENT = {"intent": "route_ticket", "arguments": {"team": "billing", "priority": "p2"}}


@pytest.fixture
def receiver(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, new_webhook_secret())
    with WebhookReceiver() as receiver:
        yield receiver


def executing_run(receiver, *, last_error: str, held_by: str):
    """A run whose first delivery attempt ended with `last_error`, overdue since 5 s."""
    automation = AutomationFactory(mode="autonomous")
    IntentFactory(
        automation=automation,
        action_config={"url": receiver.url("/hooks/route"), "secret_env": SECRET_ENV},
    )
    run = RunFactory(
        event=EventFactory(automation=automation),
        state="executing",
        final_intent=FINAL_INTENT,
        decided_by="model",
        held_by=held_by,
        due_at=timezone.now() - PAST,
    )
    action = Action.objects.create(
        run=run, automation=automation, adapter="webhook", idempotency_key="act_1", attempt_count=1
    )
    ActionAttempt.objects.create(
        action=action, number=1, started_at=timezone.now() - PAST, error=last_error
    )
    return run


def test_a_run_a_lost_worker_was_deciding_is_decided_once_the_sweep_sends_it(sent):
    automation = AutomationFactory(mode="approve", rules=[BILLING_RULE])
    IntentFactory(automation=automation)
    run = RunFactory(
        event=EventFactory(automation=automation),
        state="deciding",
        held_by="worker:lost",
        due_at=timezone.now() - PAST,
    )

    sweep()
    for run_id in sent["decide"]:
        decide_run.run(run_id)

    run.refresh_from_db()
    assert run.state == "awaiting_review"


def test_an_attempt_a_lost_worker_was_sending_is_sent_again_once_the_sweep_sends_it(sent, receiver):
    run = executing_run(receiver, last_error=IN_FLIGHT, held_by="worker:lost")

    sweep()
    for run_id in sent["execute"]:
        execute_run.run(run_id)

    run.refresh_from_db()
    assert run.state == "executed"
    attempts = ActionAttempt.objects.filter(action__run=run).order_by("number")
    assert [(a.number, a.error) for a in attempts] == [(1, LOST), (2, "")]
    assert [d.headers["webhook-id"] for d in receiver.deliveries] == ["act_1"]


def test_a_retry_whose_message_was_lost_is_sent_once_the_sweep_sends_it(sent, receiver):
    run = executing_run(receiver, last_error="receiver answered 503", held_by="")

    sweep()
    for run_id in sent["execute"]:
        execute_run.run(run_id)

    run.refresh_from_db()
    assert run.state == "executed"
    assert len(receiver.deliveries) == 1


def test_of_two_messages_for_a_swept_run_only_the_first_takes_it(sent):
    run = run_in("deciding", due_in=-PAST, held_by="worker:lost")
    sweep()
    first, twin = Run.objects.get(pk=run.pk), Run.objects.get(pk=run.pk)
    assert first.held_by == twin.held_by == SWEPT

    assert run_take_over(run=first, seconds=30)
    assert not run_take_over(run=twin, seconds=30)
    assert Run.objects.get(pk=run.pk).held_by == first.held_by != SWEPT


# -- holds renewed while a worker works on a run --------------------------------------------


@pytest.fixture
def renewing(monkeypatch, settings):
    """This process renews its holds, as a Celery worker does (without the thread)."""
    settings.HANDRAIL_RECOVERY_SECONDS = 60
    monkeypatch.setattr(runs, "_renewal", object())
    holds_release()
    yield
    holds_release()


def test_a_worker_that_renews_its_holds_holds_for_a_third_of_the_bound(renewing):
    run = run_in("received", due_in=timedelta(seconds=30))
    before = timezone.now()

    # A decision that may take ten minutes (every model attempt at its budget).
    run_transition(run=run, to_state="deciding", actor="worker:test", fields=hold(600))

    run.refresh_from_db()
    assert run.held_by == worker_actor()
    assert 19 < (run.due_at - before).total_seconds() <= 21


def test_a_hold_is_renewed_while_its_task_runs_and_lapses_once_it_is_over(renewing):
    run = run_in("received", due_in=timedelta(seconds=30))
    run_transition(run=run, to_state="deciding", actor="worker:test", fields=hold(600))
    later = timezone.now() + timedelta(seconds=15)

    assert holds_renew(now=later) == 1
    assert Run.objects.get(pk=run.pk).due_at == later + timedelta(seconds=20)

    holds_release()  # the task is over, its run left held (it failed midway)
    assert holds_renew(now=later + timedelta(seconds=15)) == 0
    assert Run.objects.get(pk=run.pk).due_at == later + timedelta(seconds=20)


def test_a_run_this_worker_let_go_of_or_lost_is_not_renewed(renewing):
    moved_on = run_in("received", due_in=timedelta(seconds=30))
    run_transition(run=moved_on, to_state="deciding", actor="worker:test", fields=hold(600))
    run_transition(run=moved_on, to_state="awaiting_review", actor="worker:test")
    taken = run_in("received", due_in=timedelta(seconds=30))
    run_transition(run=taken, to_state="deciding", actor="worker:test", fields=hold(600))
    Run.objects.filter(pk=taken.pk).update(held_by="worker:other")
    due = Run.objects.get(pk=taken.pk).due_at

    assert holds_renew(now=timezone.now() + timedelta(seconds=15)) == 0
    assert Run.objects.get(pk=moved_on.pk).due_at is None
    assert Run.objects.get(pk=taken.pk).due_at == due


def test_without_renewal_a_hold_covers_the_whole_work():
    run = run_in("received", due_in=timedelta(seconds=30))
    before = timezone.now()

    run_transition(run=run, to_state="deciding", actor="worker:test", fields=hold(600))

    run.refresh_from_db()
    assert 599 < (run.due_at - before).total_seconds() <= 601


def test_what_the_sweep_hands_on_goes_ahead_of_the_queue(settings):
    run = run_in("deciding", due_in=-PAST, held_by="worker:lost")

    with mock.patch.object(decide_run, "apply_async") as publish:
        sweep()

    publish.assert_called_once_with(
        args=[run.pk], countdown=None, priority=settings.HANDRAIL_RECOVERY_PRIORITY
    )


def test_the_overdue_runs_are_listed_for_the_run_page_and_the_admin():
    overdue = run_in("executing", due_in=-PAST, held_by="worker:lost")
    run_in("executing", due_in=timedelta(seconds=30), held_by="worker:busy")

    assert list(runs_overdue()) == [overdue]


@pytest.fixture
def broker_down():
    """Tasks go to a broker (not in process) that refuses every message."""
    celery_app.conf.task_always_eager = False
    refused = kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6399")
    with mock.patch.object(decide_run, "apply_async", side_effect=refused) as publish:
        yield publish
    celery_app.conf.task_always_eager = True


def test_an_event_posted_while_the_broker_is_down_is_accepted_and_swept_later(
    client, broker_down, django_capture_on_commit_callbacks
):
    automation = AutomationFactory(slug="support-triage", mode="shadow", rules=[BILLING_RULE])
    IntentFactory(automation=automation)
    _, token = token_issue(name="zendesk")
    body = {"idempotency_key": "t-1", "payload": {"body": "Where is my invoice?"}}

    with (
        mock.patch("automations.services.dispatch.logger") as log,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            "/api/v1/automations/support-triage/events",
            data=json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )

    assert response.status_code == 202, response.content
    broker_down.assert_called_once()
    assert "waits for the sweep" in log.warning.call_args.args[0]
    run = Run.objects.get(pk=response.json()["run_id"])
    assert run.state == "received"

    # Once the broker is back and the run is due, the sweep sends it on.
    broker_down.side_effect = None
    Run.objects.filter(pk=run.pk).update(due_at=timezone.now() - PAST)
    with mock.patch.object(dispatch, "queue_length", return_value=0):
        assert sweep().dispatched == 1
    assert broker_down.call_args.kwargs["args"] == [run.pk]


def test_the_admin_lists_the_runs_waiting_for_recovery(client):
    client.force_login(UserFactory(username="ada", roles=["admin"], is_staff=True))
    waiting = run_in("executing", due_in=-PAST, held_by="worker:lost")
    run_in("executing", due_in=timedelta(seconds=30), held_by="worker:busy")

    response = client.get("/admin/automations/run/?recovery=waiting")

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [waiting]
    assert b"worker:lost" in response.content


@pytest.fixture
def redis_broker(settings):
    """The suite's Redis as the broker (not in process), on a queue no worker consumes."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: a real broker")
    celery_app.conf.task_always_eager = False
    queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = "handrail-test-queue-length"
    yield celery_app.conf.task_default_queue
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(celery_app.conf.task_default_queue)
    celery_app.conf.task_default_queue = queue


@pytest.mark.worker
def test_the_queue_length_on_redis_is_zero_when_nothing_is_queued(redis_broker):
    # Redis keeps no empty lists, so kombu calls an empty queue "not found"; the sweep
    # read that as an error and never sent a run again once the queue had drained.
    assert dispatch.queue_length() == 0

    decide_run.apply_async(args=[1], queue=redis_broker)

    assert dispatch.queue_length() == 1


@pytest.mark.worker
def test_on_redis_the_recovery_priority_is_served_before_the_pipelines(redis_broker, settings):
    for run_id in (1, 2, 3):
        decide_run.apply_async(args=[run_id], queue=redis_broker)
    recovery = settings.HANDRAIL_RECOVERY_PRIORITY
    decide_run.apply_async(args=[4], queue=redis_broker, priority=recovery)

    with celery_app.connection_for_read() as connection:
        first = connection.default_channel.basic_get(redis_broker, no_ack=True)

    assert first.decode()[0] == [4]


@pytest.mark.worker
def test_redis_says_when_it_started(redis_broker):
    started = dispatch.broker_started_at()

    assert started is not None and started <= timezone.now()
