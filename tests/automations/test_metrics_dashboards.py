"""The dashboards: who sees what, server-side SVG charts, htmx refresh, queries flat in the
number of runs, and the rollups' rebuild with its progress in the browser."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.metrics.charts import nice_top, override_chart, volume_chart
from automations.metrics.figures import Figures, Point
from automations.metrics.models import Alert, RollupRebuild
from automations.metrics.rollup import Tally, rollup_run, tally_write
from automations.metrics.windows import hour_floor
from tests.automations.metrics_support import history, reviewed_run
from tests.factories import AutomationFactory, UserFactory

START = datetime(2026, 11, 24, tzinfo=UTC)


def point(hour: int, **sums) -> Point:
    return Point(START + timedelta(hours=hour), Figures(sums))


# -- chart geometry ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, (1.0, 4)), (7, (10, 5)), (0.37, (0.5, 5)), (180, (200, 4)), (2.1, (2.5, 5))],
)
def test_axes_end_on_a_round_number_with_round_steps(value, top):
    assert nice_top(value) == pytest.approx(top)


def test_outcomes_stack_from_the_axis_up():
    series = [point(0, runs=10, autonomous=6, rejected=2), point(1)]

    chart = volume_chart(series, hourly=True)

    autonomous, rejected = chart.bars
    assert (autonomous.css, rejected.css) == ("outcome-autonomous", "outcome-rejected")
    assert autonomous.y + autonomous.height == chart.plot_bottom  # on the x axis
    assert rejected.y + rejected.height == pytest.approx(autonomous.y)  # on top of it
    assert autonomous.height == pytest.approx(3 * rejected.height, abs=0.2)
    assert autonomous.title == "24 Nov 00:00: 6 autonomous"
    assert [tick.text for tick in chart.y_ticks] == ["0", "2", "4", "6", "8", "10"]


def test_a_period_without_reviews_breaks_the_override_line():
    series = [
        point(0, reviewed=10, overridden=1),
        point(1, reviewed=10, overridden=2),
        point(2),
        point(3, reviewed=4, overridden=2),
    ]
    baseline = Figures({"reviewed": 100, "overridden": 10})

    chart = override_chart(series, hourly=True, baseline=baseline, margin=0.1)

    [line] = chart.lines
    assert [len(path.split()) for path in line.paths] == [2, 1]
    assert [dot.title for dot in line.dots][-1] == "24 Nov 03:00: override rate 50%"
    baseline_rule, threshold_rule = chart.rules
    assert (baseline_rule.text, threshold_rule.text) == ("baseline 10%", "alert at 20%")
    assert threshold_rule.y < baseline_rule.y  # higher up


def test_an_empty_window_says_so_instead_of_drawing():
    chart = volume_chart([point(0), point(1)], hourly=True)

    assert chart.empty


# -- pages ---------------------------------------------------------------------------------


@pytest.fixture
def world(db, owner, reviewer):
    """Olivia's automation with runs, reviews and an alert; someone else's with runs too."""
    mine = AutomationFactory(slug="mine", name="Mine", owner=owner, reviewers=[reviewer])
    theirs = AutomationFactory(slug="theirs", name="Theirs")
    at = timezone.now() - timedelta(minutes=30)
    for _ in range(3):
        history(mine, at=at, segment="vip")
    reviewed_run(mine, at=at, outcome="edited", diff=["arguments.priority"])
    for _ in range(5):
        history(theirs, at=at)
    rollup_run()
    now = timezone.now()
    Alert.objects.create(
        automation=mine, kind="override_rate", value=0.5, baseline=0.1, threshold=0.2,
        raised_at=now, last_seen_at=now,
    )  # fmt: skip
    return mine, theirs


def figure(html: str, name: str) -> str:
    return re.search(rf'data-figure="{name}">([^<]*)<', html).group(1)


def test_an_owner_sees_the_figures_of_their_automation_only(client, owner, world):
    client.force_login(owner)

    overview = client.get(reverse("metrics:overview")).content.decode()
    hidden = client.get(reverse("metrics:automation", args=["theirs"]))

    assert figure(overview, "runs") == "4"  # not the 5 of the other automation
    assert "Theirs" not in overview
    assert hidden.status_code == 404


def test_an_automations_dashboard_shows_figures_charts_segments_and_alerts(client, owner, world):
    client.force_login(owner)

    response = client.get(reverse("metrics:automation", args=["mine"]), {"window": "7d"})

    html = response.content.decode()
    assert response.status_code == 200
    assert figure(html, "runs") == "4"
    assert figure(html, "override-rate") == "100.0 %"
    assert set(re.findall(r'data-chart="(\w+)"', html)) == {"volume", "latency", "override", "cost"}
    assert "<svg" in html and "<title>" in html
    assert "<td>vip</td>" in html and "(no segment)" in html
    assert "<code>arguments.priority</code>" in html
    assert 'data-kind="override_rate"' in html
    assert ' style="' not in html and "<style" not in html  # the CSP allows neither
    assert 'hx-trigger="every 60s"' in html


def test_an_htmx_refresh_gets_the_figures_alone(client, owner, world):
    client.force_login(owner)

    response = client.get(
        reverse("metrics:automation", args=["mine"]), headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="figures"')
    assert "<html" not in html


def test_an_unknown_window_is_a_400_that_says_which_ones_exist(client, owner, world):
    client.force_login(owner)

    response = client.get(reverse("metrics:overview"), {"window": "5d"})

    assert response.status_code == 400
    assert "window: one of 24h, 7d, 30d, not &#x27;5d&#x27;" in response.content.decode()


@pytest.mark.parametrize("window", ["24h", "7d", "30d"])
def test_queries_do_not_grow_with_the_runs(client, owner, django_assert_max_num_queries, window):
    automation = AutomationFactory(slug="busy", owner=owner)
    client.force_login(owner)
    url = reverse("metrics:automation", args=["busy"])
    client.get(url, {"window": window})  # the session and roles, once
    for day in range(40):
        tally = Tally()
        for segment in ("a", "b", "c"):
            at = hour_floor(timezone.now()) - timedelta(days=day)
            tally.add((automation.pk, segment, at), runs=500, decisions=500, reviewed=40)
        tally_write(tally)

    with django_assert_max_num_queries(12):
        assert client.get(url, {"window": window}).status_code == 200


# -- the rebuild ------------------------------------------------------------------------


def test_an_admin_rebuilds_the_rollups_and_follows_its_progress(
    client, admin_user, world, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(reverse("metrics:rebuild"), headers={"HX-Request": "true"})

    record = RollupRebuild.objects.get()
    assert started.status_code == 200
    assert record.finished_at is not None  # in process here: done on commit
    progress = client.get(reverse("metrics:rebuild_progress", args=[record.pk]))
    assert 'data-rebuild-done="true"' in progress.content.decode()
    assert f"Rollups rebuilt from {record.total} source rows" in progress.content.decode()


def test_a_rebuild_under_way_is_polled_by_admins_and_announced_to_everyone(client, owner, world):
    running = RollupRebuild.objects.create(total=1000, done=250)
    admin = UserFactory(username="ada", roles=["admin"])

    client.force_login(admin)
    as_admin = client.get(reverse("metrics:overview")).content.decode()
    client.force_login(owner)
    as_owner = client.get(reverse("metrics:overview")).content.decode()

    polled = f'hx-get="{reverse("metrics:rebuild_progress", args=[running.pk])}"'
    assert polled in as_admin and "250 of 1000 source rows read (25 %)" in as_admin
    assert polled not in as_owner and "250 of 1000 source rows read (25 %)" in as_owner
    assert 'data-action="rebuild"' not in as_owner


def test_only_admins_may_rebuild(client, owner, world):
    client.force_login(owner)

    response = client.post(reverse("metrics:rebuild"))

    assert response.status_code == 403
    assert not RollupRebuild.objects.exists()
