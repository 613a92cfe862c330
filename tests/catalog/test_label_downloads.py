"""Downloading an automation's review labels from its page: formats, access, `since`."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.models import Label
from automations.services.reviews import review_claim_next, review_decide
from tests.factories import (
    AutomationFactory,
    IntentFactory,
    ReviewTaskFactory,
    RunFactory,
    UserFactory,
)

PROPOSED = {
    "intent": "route_ticket",
    "arguments": {"team": "billing", "priority": "p2"},
    "confidence": 0.6,
    "rationale": "Invoice question.",
}


@pytest.fixture(autouse=True)
def _no_execution(monkeypatch):
    monkeypatch.setattr("automations.services.dispatch.enqueue_execute", lambda run_id: None)


@pytest.fixture
def automation(owner, reviewer):
    automation = AutomationFactory(
        slug="support-triage", owner=owner, reviewers=[reviewer], instructions="Triage tickets."
    )
    IntentFactory(automation=automation)
    return automation


def decide(automation, reviewer, **decision):
    run = RunFactory(
        event__automation=automation, state="awaiting_review", proposed_intent=PROPOSED
    )
    task = ReviewTaskFactory(run=run)
    assert review_claim_next(user=reviewer, automation=automation).pk == task.pk
    return review_decide(task_id=task.pk, user=reviewer, **decision)


@pytest.fixture
def labelled(automation, reviewer):
    """Two labels: one approved with an edit, one rejected."""
    decide(automation, reviewer, action="approve", arguments={"team": "sales", "priority": "p2"})
    decide(automation, reviewer, action="reject", reject_reason="duplicate")
    return automation


def jsonl_url(slug="support-triage"):
    return reverse("automation_labels_jsonl", args=[slug])


def csv_url(slug="support-triage"):
    return reverse("automation_labels_csv", args=[slug])


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_owner_downloads_openai_chat_jsonl_with_only_answered_cases(client, owner, labelled):
    client.force_login(owner)

    response = client.get(jsonl_url())

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("application/jsonl")
    assert 'filename="support-triage-labels.jsonl"' in response["Content-Disposition"]
    [line] = body(response).splitlines()
    messages = json.loads(line)["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[0]["content"] == "Triage tickets."
    assert json.loads(messages[2]["content"]) == {
        "intent": "route_ticket",
        "arguments": {"team": "sales", "priority": "p2"},
    }


def test_csv_has_a_header_and_every_label(client, owner, labelled):
    client.force_login(owner)

    response = client.get(csv_url())

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert [row["outcome"] for row in rows] == ["edited", "rejected"]
    assert rows[0]["reviewer"] == "ravi"


@pytest.mark.parametrize("who", ["admin_user", "compliance"])
def test_admins_and_compliance_may_download(client, request, who, labelled):
    client.force_login(request.getfixturevalue(who))

    assert client.get(jsonl_url()).status_code == 200
    assert client.get(csv_url()).status_code == 200


def test_a_reviewer_of_the_automation_may_not_download(client, reviewer, labelled):
    client.force_login(reviewer)

    assert client.get(jsonl_url()).status_code == 403
    assert client.get(csv_url()).status_code == 403


def test_another_owner_does_not_even_see_the_automation(client, labelled):
    client.force_login(UserFactory(username="oscar", roles=["owner"]))

    assert client.get(jsonl_url()).status_code == 404
    assert client.get(csv_url()).status_code == 404


def test_anonymous_visitor_is_sent_to_log_in(client, labelled):
    response = client.get(csv_url())

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_since_leaves_out_older_labels(client, owner, labelled):
    Label.objects.filter(outcome="edited").update(created_at=timezone.now() - timedelta(days=10))
    client.force_login(owner)
    since = (timezone.localdate() - timedelta(days=1)).isoformat()

    response = client.get(csv_url(), {"since": since})

    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert [row["outcome"] for row in rows] == ["rejected"]
    assert f"since-{since}" in response["Content-Disposition"]


def test_each_download_says_how_many_labels_it_holds_for_the_progress_bar(client, owner, labelled):
    Label.objects.filter(outcome="edited").update(created_at=timezone.now() - timedelta(days=10))
    client.force_login(owner)
    since = (timezone.localdate() - timedelta(days=1)).isoformat()

    for url, query, lines in [
        (jsonl_url(), {}, 1),  # the rejection has no answer to train on
        (csv_url(), {}, 2),
        (csv_url(), {"since": since}, 1),
        (jsonl_url(), {"since": since}, 0),
    ]:
        response = client.get(url, query)
        written = len(body(response).splitlines()) - (url == csv_url())
        assert response["X-Handrail-Rows"] == str(written) == str(lines)


@pytest.mark.parametrize(
    "since", ["yesterday", "2025-02-30", "2025-1-5", "20250105", "2025-01-05T00:00"]
)
def test_a_bad_since_is_a_400_with_a_message(client, owner, labelled, since):
    client.force_login(owner)

    response = client.get(jsonl_url(), {"since": since})

    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.content.decode()


def test_an_empty_since_means_every_label(client, owner, labelled):
    client.force_login(owner)

    rows = list(csv.DictReader(io.StringIO(body(client.get(csv_url(), {"since": ""})))))

    assert len(rows) == 2


def test_the_automation_page_links_the_downloads_for_those_allowed(
    client, owner, reviewer, labelled
):
    client.force_login(owner)
    page = client.get(reverse("automation_detail", args=["support-triage"])).content.decode()
    assert jsonl_url() in page and csv_url() in page

    client.force_login(reviewer)
    page = client.get(reverse("automation_detail", args=["support-triage"])).content.decode()
    assert jsonl_url() not in page and csv_url() not in page
