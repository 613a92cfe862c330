"""Claims and decisions on real PostgreSQL: no task held twice, no decision half written."""

import threading
from collections import Counter
from unittest import mock

import pytest
from django.db import connection

from automations.models import Label, ReviewTask, Run, RunTransition
from automations.services import reviews
from automations.services.reviews import (
    RunNotAwaitingReview,
    review_claim_next,
    review_decide,
)
from tests.factories import (
    AutomationFactory,
    IntentFactory,
    ReviewTaskFactory,
    RunFactory,
    UserFactory,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)"
    ),
]

THREADS = 8
CLAIMS_EACH = 25
PROPOSED = {"intent": "route_ticket", "arguments": {"team": "billing", "priority": "p2"}}


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_never_claim_the_same_task():
    reviewers = [UserFactory(username=f"r{n}", roles=["reviewer"]) for n in range(THREADS)]
    automation = AutomationFactory(slug="busy-queue", reviewers=reviewers)
    IntentFactory(automation=automation)
    for _ in range(THREADS * CLAIMS_EACH + 10):
        run = RunFactory(
            event__automation=automation, state="awaiting_review", proposed_intent=PROPOSED
        )
        ReviewTaskFactory(run=run)
    start = threading.Barrier(THREADS)
    claims: dict[str, list[int]] = {}
    failures: list[BaseException] = []

    def work(user):
        mine = claims.setdefault(user.username, [])
        try:
            start.wait()
            for n in range(CLAIMS_EACH):
                task = review_claim_next(user=user, automation=automation)
                mine.append(task.pk)
                if n % 2:
                    review_decide(task_id=task.pk, user=user, action="approve")
                else:
                    review_decide(
                        task_id=task.pk, user=user, action="reject", reject_reason="policy"
                    )
        except BaseException as exc:  # reported below, with the thread's context
            failures.append(exc)
        finally:
            connection.close()

    with mock.patch("automations.services.dispatch.enqueue_execute"):
        threads = [threading.Thread(target=work, args=(user,)) for user in reviewers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert failures == []
    every_claim = [pk for pks in claims.values() for pk in pks]
    assert len(every_claim) == THREADS * CLAIMS_EACH
    assert [pk for pk, n in Counter(every_claim).items() if n > 1] == []
    assert ReviewTask.objects.filter(state="done").count() == THREADS * CLAIMS_EACH
    deciders = dict(Label.objects.values_list("review_task_id", "reviewer__username"))
    assert all(deciders[pk] == name for name, pks in claims.items() for pk in pks)


def _decided_while_something_moves(monkeypatch, move):
    """Run `move` between the decision's read and its write (as a concurrent request would)."""
    validate = reviews._decision

    def racing(**kwargs):
        move()
        return validate(**kwargs)

    monkeypatch.setattr(reviews, "_decision", racing)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("move", "refusal"),
    [
        # The task's row is locked from the decision's read on, so only the run can move:
        # a kill switch blocking it while the reviewer decides.
        (
            lambda task: Run.objects.filter(pk=task.run_id).update(state="blocked"),
            RunNotAwaitingReview,
        ),
    ],
    ids=["run-blocked"],
)
def test_a_decision_overtaken_between_read_and_write_writes_nothing(monkeypatch, move, refusal):
    reviewer = UserFactory(username="ravi", roles=["reviewer"])
    automation = AutomationFactory(slug="busy-queue", reviewers=[reviewer])
    IntentFactory(automation=automation)
    run = RunFactory(
        event__automation=automation, state="awaiting_review", proposed_intent=PROPOSED
    )
    ReviewTaskFactory(run=run)
    task = review_claim_next(user=reviewer, automation=automation)
    _decided_while_something_moves(monkeypatch, lambda: move(task))

    with pytest.raises(refusal):
        review_decide(task_id=task.pk, user=reviewer, action="approve")

    assert not Label.objects.exists()
    assert ReviewTask.objects.get(pk=task.pk).state != "done"
    assert not RunTransition.objects.filter(run=run, from_state="awaiting_review").exists()
