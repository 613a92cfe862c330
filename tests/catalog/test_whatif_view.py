"""GET /automations/<slug>/what-if/: who gets the preview, what it shows, and 400s that say why."""

import re

import pytest
from django.urls import reverse

from automations.models import ReviewTask, Run
from catalog.models import Automation, SegmentPolicy
from tests.catalog.whatif_support import whatif_world
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def world(owner):
    return whatif_world(owner)


def url(world) -> str:
    return reverse("automation_whatif", args=[world["automation"].slug])


def figures(response) -> dict[str, tuple[int, int]]:
    """{figure: (now, with the change)} from the fragment's table."""
    html = response.content.decode()
    rows = re.findall(
        r'<tr data-figure="(\w+)"><th scope="row">[^<]*</th>'
        r'<td class="num">(\d+)</td><td class="num">(\d+)</td>',
        html,
    )
    return {name: (int(now), int(then)) for name, now, then in rows}


def test_the_fragment_shows_the_figures_before_and_after(client, owner, world):
    client.force_login(owner)

    response = client.get(url(world), {"min_confidence": "0.8"}, headers=HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # a fragment for htmx to swap in
    assert "What if: minimum confidence 0.70 → 0.80" in html
    assert figures(response) == {
        "person": (5, 7),
        "acts": (4, 2),
        "recorded": (0, 0),
        "blocked": (1, 1),
        "caught": (3, 4),
        "let_through": (1, 0),
        "stopped": (0, 0),
    }
    assert "+2 (2 more reviews)" in html
    assert "\u22121 (1 fewer let through)" in html
    assert "2 runs: acting on their own → a person" in html


def test_without_htmx_the_preview_is_a_whole_page(client, owner, world):
    client.force_login(owner)

    response = client.get(url(world), {"mode": "approve", "segment": "trial"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert "segment trial: mode autonomous (the automation&#x27;s) → approve" in html
    assert figures(response)["person"] == (5, 6)


def test_a_rule_from_the_query_string_is_previewed(client, owner, world):
    client.force_login(owner)

    response = client.get(
        url(world),
        {
            "rule_field": "payload.body",
            "rule_operator": "matches",
            "rule_value": "(?i)lawyer|lawsuit",
            "rule_effect": "block",
            "reason": "ignored: the whole settings form may come along",
        },
        headers=HTMX,
    )

    assert response.status_code == 200
    assert figures(response)["blocked"] == (1, 5)
    assert "a do-not-automate rule: payload.body matches &quot;(?i)lawyer|lawsuit&quot;" in (
        response.content.decode()
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_confidence": "high"}, "min_confidence"),
        ({"min_confidence": "-0.1"}, "min_confidence"),
        ({"mode": "reckless"}, "mode"),
        ({"segment": "trial"}, "mode"),
        ({"rule_field": "payload.body", "rule_operator": "matches"}, "rule_value"),
        (
            {
                "rule_field": "payload.body",
                "rule_operator": "matches",
                "rule_value": "(?<=no)lookbehind",
                "rule_effect": "review",
            },
            "rule_value",
        ),
    ],
)
def test_bad_parameters_get_a_400_fragment_naming_the_field(client, owner, world, params, field):
    client.force_login(owner)
    counts = (Run.objects.count(), ReviewTask.objects.count(), SegmentPolicy.objects.count())
    automation = Automation.objects.values().get(pk=world["automation"].pk)

    response = client.get(url(world), params, headers=HTMX)

    assert response.status_code == 400
    html = response.content.decode()
    assert 'role="alert"' in html
    assert f'<li data-field="{field}"><code>{field}</code>:' in html
    assert "<html" not in html
    # A preview never changes anything, least of all when it is refused.
    assert (Run.objects.count(), ReviewTask.objects.count(), SegmentPolicy.objects.count()) == (
        counts
    )
    assert Automation.objects.values().get(pk=world["automation"].pk) == automation


def test_hostile_text_in_a_proposed_rule_is_escaped(client, owner, world):
    client.force_login(owner)

    response = client.get(
        url(world),
        {
            "rule_field": "payload.body",
            "rule_operator": "contains",
            "rule_value": "<script>alert(1)</script>",
            "rule_effect": "review",
        },
        headers=HTMX,
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("role", ["reviewer", "compliance", "admin"])
def test_whoever_sees_the_automation_may_read_its_preview(client, world, role):
    user = UserFactory(username=f"the-{role}", roles=[role])
    if role == "reviewer":
        world["automation"].reviewers.add(user)
    client.force_login(user)

    assert client.get(url(world), headers=HTMX).status_code == 200


def test_others_get_404_as_for_the_automation_page(client, world):
    stranger = UserFactory(username="oscar", roles=["owner"])
    client.force_login(stranger)

    assert client.get(url(world), headers=HTMX).status_code == 404
    assert client.get(reverse("automation_whatif", args=["no-such"])).status_code == 404


def test_anonymous_users_are_sent_to_log_in(client, world):
    response = client.get(url(world))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_only_get_is_answered(client, owner, world):
    client.force_login(owner)

    assert client.post(url(world), {"min_confidence": "0.8"}).status_code == 405
