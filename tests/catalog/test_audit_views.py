"""The compliance pages: who gets in, drawing a sample, working an item, reports, the trail."""

import csv
import io
import json

import pytest
from django.urls import reverse

from catalog.audit.arguments import sample_arguments
from catalog.audit.sampling import sample_draw
from catalog.audit.trail import trail_append
from catalog.models import AuditSample, AuditSampleItem, TrailEntry, TrailVerification
from tests.catalog.audit_support import INSIDE, WINDOW, runs_of
from tests.factories import AutomationFactory, IntentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sample(compliance):
    """3 autonomous runs (route to billing, p2) then 2 rejected ones, all in the sample."""
    automation = AutomationFactory(slug="support-triage")
    IntentFactory(automation=automation)
    runs_of(automation, "autonomous", 3, at=INSIDE)
    runs_of(automation, "rejected", 2, at=INSIDE)
    arguments = sample_arguments(name="November", size="5", seed="1", **WINDOW)
    return sample_draw(arguments=arguments, by=compliance)


def first_item(sample) -> AuditSampleItem:
    return sample.items.order_by("position").first()


def pages(sample) -> list[tuple[str, str, dict]]:
    item = first_item(sample)
    return [
        ("get", reverse("audit:samples"), {}),
        ("get", reverse("audit:sample_new"), {}),
        ("get", reverse("audit:sample", args=[sample.pk]), {}),
        ("get", reverse("audit:report", args=[sample.pk]), {}),
        ("get", reverse("audit:report_csv", args=[sample.pk]), {}),
        ("get", reverse("audit:report_json", args=[sample.pk]), {}),
        ("get", reverse("audit:chart", args=[sample.pk]), {}),
        ("get", reverse("audit:item", args=[item.pk]), {}),
        ("get", reverse("audit:trail"), {}),
        ("post", reverse("audit:item_reveal", args=[item.pk]), {}),
        ("post", reverse("audit:item_verdict", args=[item.pk]), {"verdict": "compliant"}),
        ("post", reverse("audit:trail_verify"), {}),
        ("post", reverse("audit:sample_new"), {"name": "x", "size": "1", **WINDOW}),
    ]


@pytest.mark.parametrize("role", ["reviewer", "owner", None])
def test_everyone_but_compliance_and_admins_is_refused_every_audit_page(client, sample, role):
    client.force_login(UserFactory(username="someone", roles=[role] if role else []))

    for method, url, data in pages(sample):
        assert getattr(client, method)(url, data).status_code == 403, url

    assert AuditSample.objects.count() == 1
    assert not AuditSampleItem.objects.exclude(verdict="").exists()
    assert not AuditSampleItem.objects.exclude(revealed_at=None).exists()
    assert not TrailVerification.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(client, sample):
    for method, url, data in pages(sample):
        response = getattr(client, method)(url, data)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


@pytest.mark.parametrize("who", ["compliance", "admin_user"])
def test_compliance_staff_and_admins_open_every_page(client, request, sample, who):
    client.force_login(request.getfixturevalue(who))

    for method, url, _ in pages(sample):
        if method == "get":
            assert client.get(url).status_code == 200, url


def test_the_nav_links_the_audit_pages_for_compliance_only(client, compliance, reviewer):
    client.force_login(compliance)
    assert 'href="/audit/"' in client.get("/").content.decode()
    client.force_login(reviewer)
    assert 'href="/audit/"' not in client.get("/").content.decode()


def test_drawing_from_the_browser_writes_the_sample_and_goes_to_it(client, compliance, sample):
    client.force_login(compliance)

    response = client.post(
        reverse("audit:sample_new"),
        {
            "name": "Browser draw",
            "size": "3",
            "seed": "1",
            "min_per_stratum": "1",
            "stratify_sent": "1",
            "stratify": ["outcome"],
            "outcome": ["autonomous", "rejected"],
            "automation": ["support-triage"],
            **WINDOW,
        },
    )

    drawn = AuditSample.objects.get(name="Browser draw")
    assert response.status_code == 303
    assert response["Location"] == reverse("audit:sample", args=[drawn.pk])
    assert drawn.created_by == compliance and drawn.seed == "1"
    assert [s.key for s in drawn.strata.order_by("position")] == [
        {"outcome": "autonomous"},
        {"outcome": "rejected"},
    ]
    assert drawn.items.count() == 3


def test_a_bad_draw_shows_what_is_wrong_keeps_the_input_and_writes_nothing(client, compliance):
    client.force_login(compliance)

    response = client.post(
        reverse("audit:sample_new"),
        {"name": "Keep me", "since": "2026-11-31", "until": "2026-11-01", "rate": "2"},
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert "not a date: write YYYY-MM-DD" in html
    assert "must be more than 0 and at most 1" in html
    assert 'value="Keep me"' in html
    assert not AuditSample.objects.exists()


def test_an_empty_window_is_a_form_error(client, compliance):
    client.force_login(compliance)
    response = client.post(
        reverse("audit:sample_new"),
        {"name": "n", "size": "3", "since": "2020-01-01", "until": "2020-02-01"},
    )
    assert response.status_code == 422
    assert "no finished run matches" in response.content.decode()


def test_the_blind_page_hides_what_was_done(client, compliance, sample):
    item = first_item(sample)
    client.force_login(compliance)

    html = client.get(reverse("audit:item", args=[item.pk])).content.decode()

    assert 'id="blind-form"' in html
    assert 'id="done-title"' not in html
    assert item.outcome not in html  # not even the stratum
    assert 'value="billing" selected' not in html  # the fields start empty


def test_a_blind_answer_reveals_the_comparison_and_a_disagreement_prefills_an_issue(
    client, compliance, sample
):
    item = first_item(sample)
    client.force_login(compliance)

    response = client.post(
        reverse("audit:item_blind", args=[item.pk]),
        {"intent": "route_ticket", "arg.team": "technical", "arg.priority": "p2"},
    )
    assert response.status_code == 303
    html = client.get(response["Location"]).content.decode()

    assert 'data-comparison="disagrees"' in html
    assert (
        "<code>arguments.team</code>: done <del>billing</del>, yours <ins>technical</ins>" in html
    )
    assert '<option value="wrong_arguments" selected>' in html
    assert "Blind re-review disagrees (arguments.team: billing → technical)." in html


def test_a_bad_blind_answer_is_shown_again_with_its_errors(client, compliance, sample):
    item = first_item(sample)
    client.force_login(compliance)

    response = client.post(
        reverse("audit:item_blind", args=[item.pk]), {"intent": "route_ticket", "arg.team": "x"}
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert "is required" in html and "is not one of" in html
    item.refresh_from_db()
    assert item.revealed_at is None and item.blind_intent is None


def test_a_verdict_goes_on_the_trail_and_the_next_item_swaps_in(client, compliance, sample):
    first, second = sample.items.order_by("position")[:2]
    client.force_login(compliance)
    client.post(reverse("audit:item_reveal", args=[first.pk]), HTTP_HX_REQUEST="true")

    response = client.post(
        reverse("audit:item_verdict", args=[first.pk]),
        {"verdict": "issue", "category": "policy", "note": "Not allowed."},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert response["HX-Push-Url"] == reverse("audit:item", args=[second.pk])
    html = response.content.decode()
    assert f'data-item-id="{second.pk}"' in html and "<html" not in html
    assert f"Recorded issue for item 1 (run {first.run_id})." in html
    first.refresh_from_db()
    assert (first.verdict, first.category, first.verdict_by) == ("issue", "policy", compliance)
    assert TrailEntry.objects.filter(kind="audit_verdict", run_id=first.run_id).count() == 1


def test_compliant_drops_a_prefilled_category_and_the_last_item_leads_back(
    client, compliance, sample
):
    last = sample.items.order_by("-position").first()
    client.force_login(compliance)
    client.post(reverse("audit:item_reveal", args=[last.pk]))

    response = client.post(
        reverse("audit:item_verdict", args=[last.pk]),
        {"verdict": "compliant", "category": "wrong_intent"},
    )

    assert response.status_code == 303
    assert response["Location"] == reverse("audit:sample", args=[sample.pk])
    last.refresh_from_db()
    assert (last.verdict, last.category) == ("compliant", "")


def test_an_issue_without_its_note_is_refused_in_place(client, compliance, sample):
    item = first_item(sample)
    client.force_login(compliance)
    client.post(reverse("audit:item_reveal", args=[item.pk]))

    response = client.post(
        reverse("audit:item_verdict", args=[item.pk]), {"verdict": "issue", "category": "other"}
    )

    assert response.status_code == 422
    assert "say what the issue is" in response.content.decode()
    item.refresh_from_db()
    assert item.verdict == ""


def test_the_report_page_has_the_table_the_chart_and_downloads(client, compliance, sample):
    client.force_login(compliance)
    item = first_item(sample)
    client.post(reverse("audit:item_verdict", args=[item.pk]), {"verdict": "compliant"})

    html = client.get(reverse("audit:report", args=[sample.pk])).content.decode()
    csv_response = client.get(reverse("audit:report_csv", args=[sample.pk]))
    json_response = client.get(reverse("audit:report_json", args=[sample.pk]))
    svg = client.get(reverse("audit:chart", args=[sample.pk]))

    assert "outcome=autonomous, segment=(none)" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="report-chart"' in html
    assert html.count("<circle") == 2  # the reviewed stratum and the overall estimate
    assert csv_response["Content-Disposition"].endswith('-report.csv"')
    rows = list(csv.reader(io.StringIO(csv_response.content.decode())))
    assert rows[0][0] == "stratum" and rows[-1][0] == "overall"
    assert json.loads(json_response.content)["overall"]["reviewed"] == 1
    assert svg["Content-Type"].startswith("image/svg+xml")
    assert svg.content.decode().startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_the_trail_page_shows_the_head_and_verify_now_runs_and_reports(
    client, compliance, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        trail_append(kind="fact", data={"n": 1})
        trail_append(kind="fact", data={"n": 2})
    client.force_login(compliance)

    page = client.get(reverse("audit:trail")).content.decode()
    assert "<dd data-head-seq>2</dd>" in page
    assert "The trail has not been verified yet." in page
    for command in ("verify_trail", "export_attestation", "verify_attestation", "trail_public_key"):
        assert f"manage.py {command}" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("audit:trail_verify"))
    assert response.status_code == 303

    page = client.get(reverse("audit:trail")).content.decode()
    verification = TrailVerification.objects.get()
    assert (verification.ok, verification.checked, verification.by) == (True, 2, compliance)
    assert 'data-verification-ok="true"' in page
    assert "trail ok: 2 entries" in page


def test_a_running_verification_polls_until_it_is_done(client, compliance):
    running = TrailVerification.objects.create(by=compliance, checked=5000)
    client.force_login(compliance)

    response = client.post(reverse("audit:trail_verify"), HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert TrailVerification.objects.count() == 1  # the one under way, not a second
    assert f'hx-get="/audit/trail/verifications/{running.pk}/"' in html
    assert 'hx-trigger="every 1s"' in html and "5000 of" in html

    TrailVerification.objects.filter(pk=running.pk).update(
        finished_at=running.started_at, ok=True, summary="trail ok: 9 entries"
    )
    fragment = client.get(reverse("audit:trail_verification", args=[running.pk]))
    assert "hx-trigger" not in fragment.content.decode()
    assert "trail ok: 9 entries" in fragment.content.decode()
