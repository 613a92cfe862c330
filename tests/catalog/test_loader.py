"""Automations as code: load_catalog / dump_catalog (contracts section 1)."""

import copy
from decimal import Decimal
from pathlib import Path

import pytest

from catalog.loader import (
    CatalogInvalid,
    dump_catalog,
    load_catalog,
    parse_catalog,
    render_catalog,
)
from catalog.models import Automation, DoNotAutomateRule, Intent, SegmentPolicy
from tests.factories import AutomationFactory, UserFactory

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE = FIXTURES / "support_triage.yaml"
HISTORY_MODELS = (Automation, Intent, SegmentPolicy, DoNotAutomateRule)


@pytest.fixture
def people(db):
    # No password: hashing one costs more than the test itself.
    return {
        "olivia": UserFactory(username="olivia", roles=["owner"], password=None),
        "ravi": UserFactory(username="ravi", roles=["reviewer"], password=None),
        "rosa": UserFactory(username="rosa", roles=["reviewer"], password=None),
    }


def example() -> dict:
    return parse_catalog(EXAMPLE.read_text())


def history_rows() -> int:
    return sum(model.history.count() for model in HISTORY_MODELS)


def errors_of(document) -> list[str]:
    with pytest.raises(CatalogInvalid) as caught:
        load_catalog(document, source="test.yaml")
    return caught.value.errors


def test_contract_example_loads_with_every_setting_mapped(people):
    report = load_catalog(example(), source="support.yaml")

    assert report.created == ["support-triage"]
    assert report.summary() == "1 automation: 1 created, 0 updated, 0 unchanged"
    automation = Automation.objects.get(slug="support-triage")
    assert automation.name == "Support ticket triage"
    assert automation.owner == people["olivia"]
    assert {u.username for u in automation.reviewers.all()} == {"ravi", "rosa"}
    assert automation.purpose == "Route tickets and draft first replies."
    assert automation.rollback_plan == "Set mode to suggest; agents route by hand."
    assert (automation.risk_tier, automation.data_classification) == ("medium", "internal")
    assert automation.mode == "approve"
    assert automation.min_confidence == 0.7
    assert automation.latency_budget_ms == 8000
    assert automation.daily_budget_usd == Decimal("25")
    assert automation.audit_sample_rate == 0.05
    assert automation.review_sla_minutes == 60
    assert automation.enabled is True
    assert automation.reviewer_hourly_usd == Decimal("60.00")
    assert automation.manual_minutes_per_case == 6
    assert automation.provider == "openai"
    assert automation.model == "gpt-4.1-mini"
    assert automation.base_url == "http://127.0.0.1:8001/v1"
    assert automation.api_key_env == "OPENAI_API_KEY"
    assert automation.instructions == (
        "You triage customer support tickets. Pick exactly one intent.\n"
    )
    assert automation.rules == []
    assert automation.prompt_version == 1

    intent = automation.intents.get()
    assert (intent.name, intent.risk, intent.position) == ("route_ticket", "low", 0)
    assert intent.description == "Send the ticket to a team queue."
    assert intent.arguments_schema["required"] == ["team", "priority"]
    assert intent.arguments_schema["additionalProperties"] is False
    assert intent.action_adapter == "webhook"
    assert intent.action_config == {
        "url": "http://127.0.0.1:9000/hooks/route",
        "secret_env": "SUPPORT_WEBHOOK_SECRET",
    }
    segment = automation.segments.get()
    assert (segment.key, segment.enabled, segment.mode) == ("enterprise", True, "approve")
    rule = automation.do_not_automate.get()
    assert (rule.name, rule.field, rule.effect) == ("legal threat", "payload.body", "review")
    assert (rule.operator, rule.value) == ("matches", "(?i)lawyer|lawsuit")


def test_loading_the_same_document_twice_changes_nothing_and_records_no_history(people):
    load_catalog(example(), source="support.yaml")
    rows = history_rows()
    updated_at = Automation.objects.get().updated_at

    report = load_catalog(example(), source="support.yaml")

    assert report.unchanged == ["support-triage"]
    assert report.summary() == "1 automation: 0 created, 0 updated, 1 unchanged"
    assert history_rows() == rows
    assert Automation.objects.get().updated_at == updated_at


def test_history_rows_say_loaded_from_the_file_and_who_loaded_it(people):
    load_catalog(example(), source="catalog/support.yaml", user=people["olivia"])

    for model in HISTORY_MODELS:
        rows = list(model.history.all())
        assert rows, model
        assert {row.history_change_reason for row in rows} == {"loaded from catalog/support.yaml"}
        assert {row.history_user for row in rows} == {people["olivia"]}


def test_reason_replaces_the_default_change_reason(people):
    load_catalog(example(), source="support.yaml")
    document = example()
    document["automations"][0]["mode"] = "suggest"

    load_catalog(document, source="support.yaml", reason="Pause approvals for the audit")

    latest = Automation.history.latest()
    assert latest.mode == "suggest"
    assert latest.history_change_reason == "Pause approvals for the audit"


def test_minimal_automation_gets_the_documented_defaults(people):
    document = {
        "automations": [
            {
                "slug": "minimal",
                "name": "Minimal",
                "owner": "olivia",
                "purpose": "p",
                "rollback_plan": "r",
                "risk_tier": "low",
                "data_classification": "public",
                "mode": "shadow",
                "decision": {"provider": "rules"},
                "intents": [{"name": "escalate"}],
                "segments": [{"key": "smb"}],
            }
        ]
    }
    load_catalog(document, source="minimal.yaml")

    automation = Automation.objects.get(slug="minimal")
    assert list(automation.reviewers.all()) == []
    assert automation.min_confidence == 0.7
    assert automation.latency_budget_ms == 8000
    assert automation.daily_budget_usd == Decimal("25")
    assert automation.audit_sample_rate == 0.05
    assert automation.review_sla_minutes == 60
    assert (automation.model, automation.base_url, automation.instructions) == ("", "", "")
    intent = automation.intents.get()
    assert intent.risk == "low"
    assert intent.arguments_schema["type"] == "object"
    assert (intent.action_adapter, intent.action_config) == ("", {})
    segment = automation.segments.get()
    assert (segment.enabled, segment.mode) == (True, "")


def test_dump_then_load_changes_nothing(people):
    load_catalog(example(), source="support.yaml")
    load_catalog(parse_catalog((FIXTURES / "rules_and_json.json").read_text()), source="r.json")
    rows = history_rows()

    report = load_catalog(dump_catalog(), source="dump.yaml")

    assert report.unchanged == ["refund-router", "support-triage"]
    assert history_rows() == rows


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_dumped_text_parses_back_to_the_same_catalog(people, fmt):
    load_catalog(example(), source="support.yaml")
    document = dump_catalog()

    text = render_catalog(document, fmt=fmt)

    assert parse_catalog(text) == document
    assert load_catalog(parse_catalog(text), source="dump").unchanged == ["support-triage"]


def test_dump_is_in_the_file_format(people):
    load_catalog(example(), source="support.yaml")

    automation = dump_catalog()["automations"][0]

    original = example()["automations"][0]
    for key in ("slug", "owner", "reviewers", "purpose", "mode", "intents", "segments"):
        assert automation[key] == original[key], key
    assert automation["do_not_automate"] == original["do_not_automate"]
    assert automation["decision"] == original["decision"]


def test_json_input_loads(people):
    # Tabs and "\/" are valid JSON that YAML 1.1 parsers reject.
    text = (FIXTURES / "rules_and_json.json").read_text()
    assert "\t" in text and "\\/" in text

    load_catalog(parse_catalog(text), source="rules_and_json.json")

    automation = Automation.objects.get(slug="refund-router")
    assert automation.provider == "rules"
    assert automation.rules == [
        {
            "when": {"field": "payload.amount", "in": [1, 2, 3]},
            "intent": "refund",
            "arguments": {"amount": 3},
            "confidence": 0.9,
        }
    ]
    intent = automation.intents.get()
    assert intent.action_config["url"] == "https://refunds.example.test/hooks"
    assert intent.action_config["max_attempts"] == 3


def test_invalid_document_reports_every_problem_and_writes_nothing(people):
    # The first automation is valid; the second is not: neither is written.
    document = parse_catalog((FIXTURES / "invalid_several.yaml").read_text())

    errors = errors_of(document)

    assert errors == [
        "automations[1].colour: unknown key",
        "automations[1].slug: must be lowercase letters, digits and hyphens",
        "automations[1].risk_tier: must be one of low, medium, high",
        "automations[1].min_confidence: must be a number",
        "automations[1].intents[0].action.url: not a URL",
        "automations[1].do_not_automate[0].matches: not a valid regular expression: "
        "missing ), unterminated subpattern at position 0",
        'automations[1].owner: no user named "nobody"',
        "automations[1].decision.model: required when provider is openai",
    ]
    assert Automation.objects.count() == 0
    assert history_rows() == 0


def test_invalid_update_leaves_the_stored_automation_as_it_was(people):
    load_catalog(example(), source="support.yaml")
    rows = history_rows()
    document = example()
    automation = document["automations"][0]
    automation["name"] = "Renamed"
    automation["segments"] = []
    automation["intents"][0]["action"]["url"] = "ftp://example.test/"

    assert errors_of(document) == ["automations[0].intents[0].action.url: not a URL"]

    stored = Automation.objects.get()
    assert stored.name == "Support ticket triage"
    assert stored.segments.count() == 1
    assert history_rows() == rows


def _first(document):
    return document["automations"][0]


def _second_automation(document):
    twin = copy.deepcopy(_first(document))
    document["automations"].append(twin)
    return twin


CASES = [
    (lambda d: d.update(extra=1), "extra: unknown key"),
    (lambda d: _first(d).update(colour="blue"), "automations[0].colour: unknown key"),
    (
        lambda d: _first(d)["decision"].update(temperature=0),
        "automations[0].decision.temperature: unknown key",
    ),
    (
        lambda d: _first(d)["intents"][0]["action"].update(secret="s3cret"),
        "automations[0].intents[0].action.secret: unknown key",
    ),
    (lambda d: _first(d).update(owner="x"), 'automations[0].owner: no user named "x"'),
    (
        lambda d: _first(d).update(reviewers=["ravi", "nadia"]),
        'automations[0].reviewers[1]: no user named "nadia"',
    ),
    (lambda d: _first(d).pop("purpose"), "automations[0].purpose: required"),
    (
        lambda d: _first(d)["do_not_automate"][0].update(matches="[a-"),
        "automations[0].do_not_automate[0].matches: not a valid regular expression: "
        "unterminated character set at position 0",
    ),
    (
        lambda d: _first(d)["intents"][0]["arguments_schema"]["properties"]["team"].update(
            type="strin"
        ),
        "automations[0].intents[0].arguments_schema.properties.team.type: "
        "not a valid JSON Schema: 'strin' is not valid under any of the given schemas",
    ),
    (
        lambda d: _first(d)["intents"][0]["arguments_schema"].update(type="array"),
        'automations[0].intents[0].arguments_schema.type: must be "object"',
    ),
    (
        lambda d: _first(d)["decision"].update(
            rules=[{"when": {"field": "payload.x", "equals": 1}, "intent": "close_ticket"}]
        ),
        'automations[0].decision.rules[0].intent: no intent named "close_ticket"',
    ),
    (
        lambda d: _first(d)["decision"].update(
            rules=[
                {
                    "when": {"field": "payload.x", "equals": 1},
                    "intent": "route_ticket",
                    "arguments": {"team": "legal", "priority": "p1"},
                    "confidence": 0.8,
                }
            ]
        ),
        "automations[0].decision.rules[0].arguments.team: "
        "'legal' is not one of ['billing', 'technical', 'sales']",
    ),
    (
        lambda d: _first(d)["decision"].update(
            rules=[{"when": {"field": "x"}, "intent": "route_ticket"}]
        ),
        "automations[0].decision.rules[0].when: needs exactly one of matches, equals, contains, in",
    ),
    (
        lambda d: _first(d)["decision"].update(
            rules=[
                {
                    "when": {"field": "payload.x", "equals": 1},
                    "intent": "route_ticket",
                    "arguments": {"team": "sales", "priority": "p1"},
                    "confidence": 1.5,
                }
            ]
        ),
        "automations[0].decision.rules[0].confidence: must be between 0 and 1",
    ),
    (lambda d: _second_automation(d), 'automations[1].slug: duplicate slug "support-triage"'),
    (
        lambda d: _first(d)["intents"].append(copy.deepcopy(_first(d)["intents"][0])),
        'automations[0].intents[1].name: duplicate intent name "route_ticket"',
    ),
    (
        lambda d: _first(d)["segments"].append({"key": "enterprise", "enabled": False}),
        'automations[0].segments[1].key: duplicate segment key "enterprise"',
    ),
    (
        lambda d: _first(d)["do_not_automate"].append(
            {"name": "legal threat", "field": "source", "equals": "x", "effect": "block"}
        ),
        'automations[0].do_not_automate[1].name: duplicate rule name "legal threat"',
    ),
    (
        lambda d: _first(d)["do_not_automate"][0].update(equals="lawyer"),
        "automations[0].do_not_automate[0]: "
        "needs exactly one of matches, equals, contains, in (found matches, equals)",
    ),
    (
        lambda d: _first(d)["do_not_automate"][0].update(effect="ignore"),
        "automations[0].do_not_automate[0].effect: must be one of review, block",
    ),
    (
        lambda d: _first(d)["intents"][0]["action"].update(url="/hooks/route"),
        "automations[0].intents[0].action.url: not a URL",
    ),
    (
        lambda d: _first(d)["intents"][0]["action"].update(adapter="email"),
        "automations[0].intents[0].action.adapter: must be one of webhook",
    ),
    (
        lambda d: _first(d)["intents"][0]["action"].pop("secret_env"),
        "automations[0].intents[0].action.secret_env: required",
    ),
    (
        lambda d: _first(d)["intents"][0]["action"].update(timeout_seconds=0),
        "automations[0].intents[0].action.timeout_seconds: must be greater than 0",
    ),
    (
        lambda d: _first(d)["intents"][0]["action"].update(max_attempts=21),
        "automations[0].intents[0].action.max_attempts: must be between 1 and 20",
    ),
    (
        lambda d: _first(d)["intents"][0].update(name="route ticket"),
        "automations[0].intents[0].name: must be letters, digits and _",
    ),
    (
        lambda d: _first(d)["intents"][0].update(risk="medium"),
        "automations[0].intents[0].risk: must be one of low, high",
    ),
    (lambda d: _first(d).update(intents=[]), "automations[0].intents: must not be empty"),
    (
        lambda d: _first(d)["decision"].pop("model"),
        "automations[0].decision.model: required when provider is openai",
    ),
    (
        lambda d: _first(d)["decision"].update(base_url="127.0.0.1:8001"),
        "automations[0].decision.base_url: not a URL",
    ),
    (
        lambda d: _first(d)["decision"].update(api_key_env="openai-key"),
        "automations[0].decision.api_key_env: must be an environment variable name "
        "(A-Z, 0-9 and _, not starting with a digit)",
    ),
    (
        lambda d: _first(d)["decision"].update(provider="anthropic"),
        "automations[0].decision.provider: must be one of openai, rules",
    ),
    (
        lambda d: _first(d).update(min_confidence=True),
        "automations[0].min_confidence: must be a number",
    ),
    (
        lambda d: _first(d).update(audit_sample_rate=1.5),
        "automations[0].audit_sample_rate: must be between 0 and 1",
    ),
    (
        lambda d: _first(d).update(latency_budget_ms=0.5),
        "automations[0].latency_budget_ms: must be an integer",
    ),
    (
        lambda d: _first(d).update(daily_budget_usd=-1),
        "automations[0].daily_budget_usd: must be between 0 and 1e+08",
    ),
    (lambda d: _first(d).update(name=7), "automations[0].name: must be a string"),
    (
        lambda d: _first(d)["segments"][0].update(enabled="yes"),
        "automations[0].segments[0].enabled: must be true or false",
    ),
    (
        lambda d: _first(d)["segments"][0].update(mode="manual"),
        "automations[0].segments[0].mode: must be one of shadow, suggest, approve, autonomous",
    ),
    (
        lambda d: _first(d)["segments"][0].update(key="Enterprise"),
        "automations[0].segments[0].key: must be lowercase letters, digits and hyphens",
    ),
    (
        lambda d: _first(d)["do_not_automate"][0].update(field="payload..body"),
        "automations[0].do_not_automate[0].field: "
        "must be a dotted path into the event, such as payload.body",
    ),
    (lambda d: d.update(automations={}), "automations: must be a list"),
]


@pytest.mark.parametrize(("change", "message"), CASES, ids=[c[1][:60] for c in CASES])
def test_invalid_setting_is_reported_with_its_path(people, change, message):
    document = example()
    change(document)

    assert errors_of(document) == [message]
    assert Automation.objects.count() == 0


def test_document_that_is_not_a_mapping_is_reported(people):
    assert errors_of(["automations"]) == ["(document): must be a mapping"]
    assert errors_of(None) == ["(document): must be a mapping"]
    assert errors_of({}) == ["automations: required"]


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog("automations:\n  - slug: a\n    name: [unclosed\n")

    assert caught.value.errors[0].startswith("line 4, column 1: ")


def test_a_repeated_key_is_an_error():
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog("automations:\n  - slug: a\n    slug: b\n")

    assert caught.value.errors == ['line 3: duplicate key "slug"']


def test_date_like_values_stay_strings(people):
    document = example()
    _first(document)["do_not_automate"][0] = parse_catalog(
        "{name: old tickets, field: payload.created, equals: 2024-01-31, effect: block}"
    )

    load_catalog(document, source="support.yaml")

    assert DoNotAutomateRule.objects.get().value == "2024-01-31"


def test_removing_an_intent_or_segment_from_the_file_deletes_it_with_history(people):
    document = example()
    intents = _first(document)["intents"]
    intents.append({**copy.deepcopy(intents[0]), "name": "close_ticket"})
    load_catalog(document, source="v1.yaml")
    assert Intent.objects.count() == 2

    report = load_catalog(example(), source="v2.yaml")  # one intent, and...
    document = example()
    _first(document)["segments"] = []
    load_catalog(document, source="v3.yaml")  # ...no segment

    assert report.updated == ["support-triage"]
    assert list(Intent.objects.values_list("name", flat=True)) == ["route_ticket"]
    assert SegmentPolicy.objects.count() == 0
    deleted_intent = Intent.history.get(history_type="-")
    assert (deleted_intent.name, deleted_intent.history_change_reason) == (
        "close_ticket",
        "loaded from v2.yaml",
    )
    deleted_segment = SegmentPolicy.history.get(history_type="-")
    assert (deleted_segment.key, deleted_segment.history_change_reason) == (
        "enterprise",
        "loaded from v3.yaml",
    )


def test_reordering_intents_moves_their_positions(people):
    document = example()
    intents = _first(document)["intents"]
    intents.append({**copy.deepcopy(intents[0]), "name": "close_ticket"})
    load_catalog(document, source="v1.yaml")
    intents.reverse()

    load_catalog(document, source="v2.yaml")

    names = Automation.objects.get().intents.values_list("name", flat=True)
    assert list(names) == ["close_ticket", "route_ticket"]


def test_prompt_version_moves_with_instructions_and_intents_only(people):
    load_catalog(example(), source="v1.yaml")
    document = example()
    _first(document)["mode"] = "suggest"
    load_catalog(document, source="v2.yaml")
    assert Automation.objects.get().prompt_version == 1

    _first(document)["decision"]["instructions"] = "Be brief."
    load_catalog(document, source="v3.yaml")
    assert Automation.objects.get().prompt_version == 2

    _first(document)["intents"][0]["description"] = "Pick a queue."
    load_catalog(document, source="v4.yaml")
    assert Automation.objects.get().prompt_version == 3

    load_catalog(document, source="v4.yaml")
    assert Automation.objects.get().prompt_version == 3


def test_changing_reviewers_updates_them_in_one_history_row(people):
    load_catalog(example(), source="v1.yaml")
    before = Automation.history.count()
    document = example()
    _first(document)["reviewers"] = ["rosa"]

    report = load_catalog(document, source="v2.yaml")

    assert report.updated == ["support-triage"]
    assert [u.username for u in Automation.objects.get().reviewers.all()] == ["rosa"]
    assert Automation.history.count() == before + 1
    latest = Automation.history.latest()
    assert [r.user.username for r in latest.reviewers.all()] == ["rosa"]
    assert latest.history_change_reason == "loaded from v2.yaml"


def test_an_automation_absent_from_the_file_is_left_alone(people):
    other = AutomationFactory(slug="kept", owner=people["olivia"])

    load_catalog(example(), source="support.yaml")

    assert Automation.objects.filter(pk=other.pk).exists()
    assert Automation.objects.count() == 2


def test_a_long_source_name_is_shortened_to_fit_the_history_column(people):
    source = "/very/long/" + "x" * 200 + ".yaml"

    load_catalog(example(), source=source)

    reason = Automation.history.get(history_type="+").history_change_reason
    assert len(reason) == 100
    assert reason.startswith("loaded from /very/long/xxx")


def test_the_whole_automation_switch_loads_and_dumps_as_enabled(people):
    document = example()
    document["automations"][0]["enabled"] = False

    load_catalog(document, source="support.yaml")

    assert Automation.objects.get(slug="support-triage").enabled is False
    [dumped] = dump_catalog()["automations"]
    assert dumped["enabled"] is False
