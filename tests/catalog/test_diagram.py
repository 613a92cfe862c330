"""GET /automations/<slug>/diagram.svg: the transaction diagram drawn from the configuration."""

import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse

from catalog.models import ApiToken
from tests.factories import (
    AutomationFactory,
    DoNotAutomateRuleFactory,
    IntentFactory,
    SegmentPolicyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = 'Triage </text><script>alert("x")</script> & <b>co</b>\x07'
WEBHOOK_SECRET_VALUE = "whsec_aDNuZXZlci1zaG93LXRoaXM="


@pytest.fixture
def automation(owner, reviewer):
    automation = AutomationFactory(
        slug="support-triage",
        name="Support triage",
        owner=owner,
        mode="autonomous",
        provider="openai",
        model="gpt-4.1-mini",
        base_url="https://api.openai.com/v1",
        data_classification="restricted",
        latency_budget_ms=8000,
        reviewers=[reviewer],
    )
    IntentFactory(
        automation=automation,
        position=0,
        action_config={
            "url": "https://hooks.example.com/route",
            "secret_env": "SUPPORT_WEBHOOK_SECRET",
            "timeout_seconds": 2.5,
            "max_attempts": 3,
        },
    )
    IntentFactory(
        automation=automation,
        position=1,
        name="refund",
        risk="high",
        action_config={"url": "http://10.1.2.3/refund", "secret_env": "REFUND_WEBHOOK_SECRET"},
    )
    SegmentPolicyFactory(automation=automation, key="enterprise", mode="approve", position=0)
    SegmentPolicyFactory(automation=automation, key="trial", enabled=False, position=1)
    DoNotAutomateRuleFactory(automation=automation)
    return automation


def diagram(client, automation) -> tuple[ET.Element, str]:
    response = client.get(reverse("automation_diagram", args=[automation.slug]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    text = response.content.decode()
    return ET.fromstring(response.content), text


def box_text(root: ET.Element, key: str) -> list[str]:
    """The title and lines of one box, as drawn."""
    group = root.find(f".//{SVG}g[@data-box='{key}']")
    assert group is not None, f"no box {key}"
    return [text.text for text in group.iter(f"{SVG}text")]


def edge(root: ET.Element, key: str) -> tuple[list[str], str, bool]:
    """(label lines, trust, dashed) of one edge."""
    group = root.find(f".//{SVG}g[@data-edge='{key}']")
    assert group is not None, f"no edge {key}"
    line = group.find(f"{SVG}polyline")
    lines = [text.text for text in group.iter(f"{SVG}text")]
    return lines, group.get("data-trust"), line.get("stroke-dasharray") is not None


def test_every_stage_of_a_transaction_is_a_box_in_order(client, owner, automation):
    client.force_login(owner)

    root, _ = diagram(client, automation)

    keys = [g.get("data-box") for g in root.iter(f"{SVG}g") if g.get("data-box")]
    assert keys == [
        "source",
        "guardrails-before",
        "model",
        "guardrails-after",
        "routing",
        "review",
        "approved",
        "action-1",
        "action-2",
    ]
    assert box_text(root, "guardrails-before") == [
        "Guardrails before the model",
        "1. segment_policy: kill switches; off: trial",
        "2. do_not_automate: 1 rule (0 blocking)",
        "3. budget: 25.00 USD a day, then review",
        "4. pii_policy: PII redacted for public hosts",
    ]
    assert box_text(root, "guardrails-after") == [
        "Guardrails on the decision",
        "5. intent_risk: high-risk wait for a person: refund",
        "6. confidence: below 0.70 goes to a person",
    ]
    routing = box_text(root, "routing")
    assert routing[0] == "Routing by mode: autonomous"
    assert "segment enterprise: on, mode approve" in routing
    assert "segment trial: OFF (kill switch), blocked" in routing
    assert box_text(root, "review")[1] == "reviewers: ravi"


def test_edges_carry_latency_budgets_and_trust(client, owner, automation):
    client.force_login(owner)

    root, _ = diagram(client, automation)

    assert edge(root, "source-guardrails-before")[1:] == ("untrusted", True)
    assert edge(root, "source-guardrails-before")[0][0] == "trust: external input, untrusted"
    to_model = edge(root, "guardrails-before-model")
    assert to_model[0] == [
        "budget 8,000 ms × 3 attempts (24 s at most), then review",
        "trust: public model host, over HTTPS",
    ]
    assert to_model[1:] == ("public", True)
    assert edge(root, "model-guardrails-after")[0][0] == (
        "trust: model output, untrusted until validated"
    )
    route = edge(root, "approved-action-1")
    assert route[0] == [
        "timeout 2.5 s × 3 attempts, one idempotency key",
        "trust: signed webhook, to a public host",
    ]
    assert route[1:] == ("public", True)
    refund = edge(root, "approved-action-2")
    assert refund[0][0] == "timeout 10 s × 6 attempts, one idempotency key"
    assert box_text(root, "action-2") == [
        "refund (high risk)",
        "webhook to 10.1.2.3",
        "internal address, not listed: refused",
        "signed with the secret in REFUND_WEBHOOK_SECRET",
    ]


def test_a_private_model_host_is_marked_private(client, owner, automation, settings):
    settings.HANDRAIL_PRIVATE_MODEL_HOSTS = ["vllm.internal"]
    settings.HANDRAIL_ALLOWED_PRIVATE_HOSTS = ["vllm.internal"]
    automation.base_url = "http://vllm.internal:8000/v1"
    automation.save()
    client.force_login(owner)

    root, _ = diagram(client, automation)

    model = box_text(root, "model")
    assert model[:3] == [
        "Model: openai gpt-4.1-mini",
        "host vllm.internal:8000",
        "private model host: yes, may see unredacted data",
    ]
    assert "data restricted" in model
    lines, trust, dashed = edge(root, "guardrails-before-model")
    assert (lines[1], trust, dashed) == ("trust: private model host, over HTTP", "private", False)


def test_a_public_model_host_is_marked_public_and_its_data_redacted(client, owner, automation):
    client.force_login(owner)

    root, _ = diagram(client, automation)

    assert box_text(root, "model")[1:5] == [
        "host api.openai.com",
        "private model host: no (HANDRAIL_PRIVATE_MODEL_HOSTS)",
        "public address (checked on every connection)",
        "data restricted, PII redacted",
    ]


def test_the_rules_provider_stays_on_the_machine(client, owner, automation):
    automation.provider = "rules"
    automation.save()
    client.force_login(owner)

    root, _ = diagram(client, automation)

    assert box_text(root, "model")[0] == "Decision: rules (in process)"
    lines, trust, dashed = edge(root, "guardrails-before-model")
    assert (lines[0], trust, dashed) == ("in process: no network, no timeout", "private", False)


def test_token_scoping_is_counted(client, owner, automation):
    limited = ApiToken.objects.create(name="zendesk", token_hash="a" * 64, prefix="hr_a")
    limited.automations.add(automation)
    ApiToken.objects.create(name="everything", token_hash="b" * 64, prefix="hr_b")
    other = ApiToken.objects.create(name="other", token_hash="c" * 64, prefix="hr_c")
    other.automations.add(AutomationFactory(slug="elsewhere"))
    client.force_login(owner)

    root, _ = diagram(client, automation)

    assert "API tokens: 1 limited to it, 1 for every automation" in box_text(root, "source")


def test_owner_written_text_is_escaped_and_the_secret_never_shown(
    client, owner, automation, monkeypatch
):
    monkeypatch.setenv("SUPPORT_WEBHOOK_SECRET", WEBHOOK_SECRET_VALUE)
    automation.name = HOSTILE
    automation.model = 'gpt"><script>alert(2)</script>'
    automation.save()
    client.force_login(owner)

    root, text = diagram(client, automation)

    assert not any(element.tag.endswith("script") for element in root.iter())
    assert "<script" not in text
    title = root.find(f"{SVG}title").text
    assert title == (
        'Transaction diagram of Triage </text><script>alert("x")</script> & <b>co</b>'
        " (support-triage)"
    )
    assert box_text(root, "model")[0] == 'Model: openai gpt"><script>alert(2)</script>'
    assert WEBHOOK_SECRET_VALUE not in text
    assert "signed with the secret in SUPPORT_WEBHOOK_SECRET" in box_text(root, "action-1")


def test_long_text_is_cut_to_its_box(client, owner, automation):
    automation.model = "m" * 190
    automation.save()
    client.force_login(owner)

    root, _ = diagram(client, automation)

    title = box_text(root, "model")[0]
    assert title.endswith("…")
    assert len(title) < 80


@pytest.mark.parametrize(
    ("who", "status"),
    [("owner", 200), ("reviewer", 200), ("compliance", 200), ("stranger", 404)],
)
def test_the_diagram_answers_who_sees_the_automation(client, request, automation, who, status):
    if who == "stranger":
        user = UserFactory(username="oscar", roles=["owner", "reviewer"])
    else:
        user = request.getfixturevalue(who)
    client.force_login(user)

    response = client.get(reverse("automation_diagram", args=[automation.slug]))

    assert response.status_code == status


def test_anonymous_users_are_sent_to_log_in(client, automation):
    response = client.get(reverse("automation_diagram", args=[automation.slug]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_automation_page_shows_the_diagram(client, owner, automation):
    client.force_login(owner)

    response = client.get(reverse("automation_detail", args=[automation.slug]))

    src = reverse("automation_diagram", args=[automation.slug])
    assert f'<img src="{src}"' in response.content.decode()
