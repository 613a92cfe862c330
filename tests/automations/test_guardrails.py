from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from automations import guardrails
from automations.guardrails import GUARDRAILS, GuardrailContext, guardrails_run, strictest
from automations.guardrails.base import CheckResult
from automations.matching import event_document
from automations.models import DailySpend
from automations.providers import PROVIDERS
from automations.services.spend import model_call_record
from catalog.models import Automation
from tests.factories import (
    AutomationFactory,
    DoNotAutomateRuleFactory,
    EventFactory,
    IntentFactory,
    RunFactory,
    SegmentPolicyFactory,
)

pytestmark = pytest.mark.django_db


def context(automation, *, segment="", payload=None, decision=None, now=None):
    event = EventFactory(
        automation=automation,
        segment=segment,
        payload=payload or {"subject": "Invoice", "body": "Where is my invoice?"},
    )
    run = RunFactory(event=event)
    return GuardrailContext(
        automation=automation,
        run=run,
        document=event_document(event),
        decision=decision,
        now=now,
    )


def result_of(name, ctx):
    check = next(g for g in GUARDRAILS if g.name == name)
    return check.check(ctx)


def decision(intent="route_ticket", confidence=0.92):
    return {
        "intent": intent,
        "arguments": {"team": "billing", "priority": "p2"},
        "confidence": confidence,
        "rationale": "Invoice question.",
    }


# Registry


def test_guardrails_run_in_the_documented_order():
    assert [(g.name, g.stage) for g in GUARDRAILS] == [
        ("segment_policy", "before"),
        ("do_not_automate", "before"),
        ("budget", "before"),
        ("pii_policy", "before"),
        ("intent_risk", "after"),
        ("confidence", "after"),
    ]


def test_guardrails_run_returns_every_check_of_the_stage_in_order():
    automation = AutomationFactory()
    IntentFactory(automation=automation)
    ctx = context(automation, decision=decision())
    before = guardrails_run(stage="before", ctx=ctx)
    after = guardrails_run(stage="after", ctx=ctx)
    assert [r.check_name for r in before] == [
        "segment_policy",
        "do_not_automate",
        "budget",
        "pii_policy",
    ]
    assert [r.check_name for r in after] == ["intent_risk", "confidence"]
    assert {r.verdict for r in before + after} == {"pass"}


def test_an_unknown_stage_is_refused():
    ctx = context(AutomationFactory())
    with pytest.raises(ValueError, match="unknown guardrail stage"):
        guardrails_run(stage="during", ctx=ctx)


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([], "pass"),
        (["pass", "pass"], "pass"),
        (["pass", "review", "pass"], "review"),
        (["review", "block", "pass"], "block"),
        (["block", "review"], "block"),
    ],
)
def test_strictest_verdict_wins(verdicts, expected):
    results = [CheckResult(f"check{i}", v, "why") for i, v in enumerate(verdicts)]
    assert strictest(results) == expected


def test_a_check_that_crashes_sends_the_run_to_a_person(monkeypatch):
    class Broken:
        name = "broken"
        stage = "before"

        def check(self, ctx):
            raise RuntimeError("secret payload text")

    monkeypatch.setattr(guardrails, "GUARDRAILS", [Broken()])
    [result] = guardrails_run(stage="before", ctx=context(AutomationFactory()))
    assert result.verdict == "review"
    assert "secret payload text" not in result.reason


def test_prefetched_rules_provider_runs_the_before_stage_without_queries(
    django_assert_num_queries,
):
    automation = AutomationFactory()
    SegmentPolicyFactory(automation=automation, key="enterprise")
    DoNotAutomateRuleFactory(automation=automation)
    ctx = context(automation, segment="enterprise")
    ctx.automation = Automation.objects.prefetch_related(
        "intents", "segments", "do_not_automate"
    ).get(pk=automation.pk)
    with django_assert_num_queries(0):
        guardrails_run(stage="before", ctx=ctx)


# segment_policy


def test_a_switched_off_segment_blocks():
    automation = AutomationFactory()
    SegmentPolicyFactory(automation=automation, key="trial", enabled=False)
    result = result_of("segment_policy", context(automation, segment="trial"))
    assert result.verdict == "block"
    assert result.reason == "segment trial is switched off"


def test_a_segment_policy_mode_overrides_the_automation_mode():
    automation = AutomationFactory(mode="autonomous")
    SegmentPolicyFactory(automation=automation, key="enterprise", mode="approve")
    result = result_of("segment_policy", context(automation, segment="enterprise"))
    assert result.verdict == "pass"
    assert result.details == {"effective_mode": "approve"}


def test_without_a_policy_for_the_segment_the_automation_mode_applies():
    automation = AutomationFactory(mode="suggest")
    SegmentPolicyFactory(automation=automation, key="trial", enabled=False)
    result = result_of("segment_policy", context(automation, segment="enterprise"))
    assert result.verdict == "pass"
    assert result.details == {"effective_mode": "suggest"}


# do_not_automate


def test_a_matching_do_not_automate_rule_asks_for_review_without_quoting_the_payload():
    automation = AutomationFactory()
    DoNotAutomateRuleFactory(automation=automation, name="legal threat", effect="review")
    ctx = context(automation, payload={"body": "My lawyer jane@example.com will call"})
    result = result_of("do_not_automate", ctx)
    assert result.verdict == "review"
    assert result.reason == 'do-not-automate rule "legal threat" matched payload.body'
    assert "jane@example.com" not in str(result.details)
    assert "lawyer" not in result.reason


def test_the_strictest_matching_rule_wins_and_every_match_is_named():
    automation = AutomationFactory()
    DoNotAutomateRuleFactory(automation=automation, name="legal threat", effect="review")
    DoNotAutomateRuleFactory(
        automation=automation,
        name="chargeback",
        field="payload.subject",
        operator="contains",
        value="chargeback",
        effect="block",
        position=1,
    )
    ctx = context(automation, payload={"subject": "chargeback", "body": "lawsuit coming"})
    result = result_of("do_not_automate", ctx)
    assert result.verdict == "block"
    assert '"legal threat"' in result.reason and '"chargeback"' in result.reason


def test_no_matching_rule_passes():
    automation = AutomationFactory()
    DoNotAutomateRuleFactory(automation=automation)
    assert result_of("do_not_automate", context(automation)).verdict == "pass"


def test_a_rule_that_cannot_be_evaluated_sends_the_run_to_review():
    automation = AutomationFactory()
    DoNotAutomateRuleFactory(automation=automation, name="broken", value="(unclosed")
    result = result_of("do_not_automate", context(automation))
    assert result.verdict == "review"
    assert '"broken"' in result.reason


# budget


def spend(automation, *amounts):
    run = RunFactory(event=EventFactory(automation=automation))
    for amount in amounts:
        model_call_record(
            run=run, automation=automation, provider="openai", cost_usd=Decimal(amount)
        )


def test_a_spent_daily_budget_sends_openai_runs_to_review():
    automation = AutomationFactory(provider="openai", daily_budget_usd=Decimal("25"))
    spend(automation, "12.51", "12.51")
    result = result_of("budget", context(automation))
    assert result.verdict == "review"
    assert result.reason == "daily model budget spent ($25.02 of $25.00)"


def test_spend_under_the_budget_passes():
    automation = AutomationFactory(provider="openai", daily_budget_usd=Decimal("25"))
    spend(automation, "3.10")
    spend(AutomationFactory(provider="openai"), "30")  # another automation's spend
    result = result_of("budget", context(automation))
    assert result.verdict == "pass"
    assert result.reason == "$3.10 of $25.00 spent today"


def test_budgets_under_a_cent_read_with_their_digits():
    automation = AutomationFactory(provider="openai", daily_budget_usd=Decimal("0.005"))
    spend(automation, "0.0024", "0.0012")
    result = result_of("budget", context(automation))
    assert result.verdict == "pass"
    assert result.reason == "$0.0036 of $0.005 spent today"


def test_yesterdays_spend_does_not_count_today():
    automation = AutomationFactory(provider="openai", daily_budget_usd=Decimal("25"))
    spend(automation, "30")
    tomorrow = timezone.now() + timedelta(days=1)
    assert result_of("budget", context(automation, now=tomorrow)).verdict == "pass"


def test_the_day_s_spend_is_one_row_that_adds_up_every_call():
    automation = AutomationFactory(provider="openai")
    other = AutomationFactory(provider="openai")
    spend(automation, "0.10", "0.25", "1.000001")
    spend(other, "7")

    today = DailySpend.objects.get(automation=automation)
    assert (today.cost_usd, today.calls) == (Decimal("1.350001"), 3)
    assert today.day == timezone.now().astimezone(UTC).date()
    assert DailySpend.objects.get(automation=other).cost_usd == Decimal("7")


def test_the_rules_provider_has_no_budget():
    automation = AutomationFactory(provider="rules", daily_budget_usd=Decimal("1"))
    spend(automation, "5")
    assert result_of("budget", context(automation)).verdict == "pass"


# pii_policy

PII_PAYLOAD = {
    "subject": "Refund to GB82 WEST 1234 5698 7654 32",
    "body": "From jane@example.com, please cc bob@example.com",
}


@pytest.fixture
def public_openai(settings):
    settings.OPENAI_BASE_URL = ""
    settings.HANDRAIL_PRIVATE_MODEL_HOSTS = []


def test_restricted_data_is_redacted_before_going_to_a_public_host(public_openai):
    automation = AutomationFactory(provider="openai", data_classification="restricted")
    ctx = context(automation, payload=PII_PAYLOAD)
    result = result_of("pii_policy", ctx)
    assert result.verdict == "pass"
    assert result.reason == "redacted 2 email, 1 iban before sending to api.openai.com"
    assert result.details == {"redactions": {"email": 2, "iban": 1}, "host": "api.openai.com"}
    assert ctx.document["payload"] == {
        "subject": "Refund to [IBAN]",
        "body": "From [EMAIL], please cc [EMAIL]",
    }
    assert ctx.run.event.payload == PII_PAYLOAD


def test_restricted_data_without_pii_passes_unchanged(public_openai):
    automation = AutomationFactory(provider="openai", data_classification="restricted")
    ctx = context(automation)
    document = dict(ctx.document)
    result = result_of("pii_policy", ctx)
    assert result.reason == "no PII found"
    assert ctx.document == document


def test_restricted_data_is_not_redacted_for_a_private_host(settings):
    settings.HANDRAIL_PRIVATE_MODEL_HOSTS = ["vllm.internal", "127.0.0.1"]
    automation = AutomationFactory(
        provider="openai",
        data_classification="restricted",
        base_url="http://127.0.0.1:8001/v1",
    )
    ctx = context(automation, payload=PII_PAYLOAD)
    result = result_of("pii_policy", ctx)
    assert result.verdict == "pass"
    assert "127.0.0.1 is private" in result.reason
    assert ctx.document["payload"] == PII_PAYLOAD


def test_the_settings_base_url_decides_the_host_when_the_automation_has_none(settings):
    settings.OPENAI_BASE_URL = "https://llm.example.net/v1"
    settings.HANDRAIL_PRIVATE_MODEL_HOSTS = []
    automation = AutomationFactory(provider="openai", data_classification="restricted")
    result = result_of("pii_policy", context(automation, payload=PII_PAYLOAD))
    assert result.reason == "redacted 2 email, 1 iban before sending to llm.example.net"


def test_internal_data_is_not_redacted(public_openai):
    automation = AutomationFactory(provider="openai", data_classification="internal")
    ctx = context(automation, payload=PII_PAYLOAD)
    result = result_of("pii_policy", ctx)
    assert result.verdict == "pass"
    assert "internal" in result.reason
    assert ctx.document["payload"] == PII_PAYLOAD


def test_the_rules_provider_needs_no_redaction(public_openai):
    automation = AutomationFactory(provider="rules", data_classification="restricted")
    ctx = context(automation, payload=PII_PAYLOAD)
    result_of("pii_policy", ctx)
    assert ctx.document["payload"] == PII_PAYLOAD


def test_do_not_automate_rules_see_the_text_before_redaction(public_openai):
    automation = AutomationFactory(provider="openai", data_classification="restricted")
    DoNotAutomateRuleFactory(
        automation=automation, name="vip", operator="contains", value="jane@example.com"
    )
    ctx = context(automation, payload=PII_PAYLOAD)
    results = guardrails_run(stage="before", ctx=ctx)
    assert strictest(results) == "review"
    assert "jane@example.com" not in str(ctx.document)


# Providers the guardrails know only through the registry


class HostedProvider:
    """A stand-in remote, billed provider whose endpoint is its own, not OpenAI's."""

    name = "hosted"
    remote = True
    bills = True
    attempts = 1
    needs_model = True

    def endpoint(self, automation) -> str:
        return "https://models.hosted.example/v2"

    def decide(self, **kwargs):
        raise AssertionError("guardrails do not decide")


@pytest.fixture
def hosted(monkeypatch, public_openai):
    monkeypatch.setitem(PROVIDERS, "hosted", HostedProvider())


def test_a_registered_remote_provider_gets_the_budget_check(hosted):
    automation = AutomationFactory(provider="hosted", daily_budget_usd=Decimal("1"))
    spend(automation, "1.50")

    result = result_of("budget", context(automation))

    assert result.verdict == "review"
    assert result.reason == "daily model budget spent ($1.50 of $1.00)"


def test_a_registered_remote_provider_gets_restricted_data_redacted_for_its_own_host(hosted):
    automation = AutomationFactory(provider="hosted", data_classification="restricted")
    ctx = context(automation, payload=PII_PAYLOAD)

    result = result_of("pii_policy", ctx)

    assert result.reason == "redacted 2 email, 1 iban before sending to models.hosted.example"
    assert "jane@example.com" not in str(ctx.document)


def test_a_registered_remote_provider_s_private_host_sees_the_data_unredacted(hosted, settings):
    settings.HANDRAIL_PRIVATE_MODEL_HOSTS = ["models.hosted.example"]
    automation = AutomationFactory(provider="hosted", data_classification="restricted")
    ctx = context(automation, payload=PII_PAYLOAD)

    result = result_of("pii_policy", ctx)

    assert result.reason == "model host models.hosted.example is private: no redaction needed"
    assert ctx.document["payload"] == PII_PAYLOAD


# intent_risk


def test_a_high_risk_intent_asks_for_a_person():
    automation = AutomationFactory()
    IntentFactory(automation=automation, name="flag_inconsistency", risk="high")
    ctx = context(automation, decision=decision("flag_inconsistency"))
    result = result_of("intent_risk", ctx)
    assert result.verdict == "review"
    assert result.reason == 'intent "flag_inconsistency" is high-risk: a person approves it'


def test_a_low_risk_intent_passes():
    automation = AutomationFactory()
    IntentFactory(automation=automation, name="route_ticket", risk="low")
    result = result_of("intent_risk", context(automation, decision=decision()))
    assert result.verdict == "pass"


# confidence


def test_low_confidence_asks_for_a_person():
    automation = AutomationFactory(min_confidence=0.7)
    result = result_of("confidence", context(automation, decision=decision(confidence=0.42)))
    assert result.verdict == "review"
    assert result.reason == "confidence 0.42 is below 0.70"


@pytest.mark.parametrize("confidence", [0.7, 0.92, 1])
def test_confidence_at_or_above_the_threshold_passes(confidence):
    automation = AutomationFactory(min_confidence=0.7)
    result = result_of("confidence", context(automation, decision=decision(confidence=confidence)))
    assert result.verdict == "pass"
