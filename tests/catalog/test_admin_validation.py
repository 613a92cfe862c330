"""The admin validates as the loader does: every page, inline and revert (security item 3)."""

import json

import pytest
from django.urls import reverse

from catalog.loader import dump_catalog, load_catalog
from catalog.models import Automation, DoNotAutomateRule, Intent, SegmentPolicy
from tests.factories import BILLING_RULE, ROUTE_SCHEMA, UserFactory

HOOK = {"url": "https://hooks.example.test/route", "secret_env": "SUPPORT_WEBHOOK_SECRET"}
HISTORY_MODELS = (Automation, Intent, SegmentPolicy, DoNotAutomateRule)


def support_triage(slug="support-triage") -> dict:
    return {
        "slug": slug,
        "name": "Support triage",
        "owner": "olivia",
        "reviewers": ["ravi"],
        "purpose": "Route tickets and draft first replies.",
        "rollback_plan": "Set mode to suggest; agents route by hand.",
        "risk_tier": "medium",
        "data_classification": "internal",
        "mode": "approve",
        "decision": {"provider": "rules", "rules": [BILLING_RULE]},
        "intents": [
            {
                "name": "route_ticket",
                "arguments_schema": ROUTE_SCHEMA,
                "action": {"adapter": "webhook", **HOOK},
            },
            {"name": "draft_reply", "description": "Draft a first reply."},
        ],
        "segments": [{"key": "enterprise", "mode": "approve"}],
        "do_not_automate": [
            {
                "name": "legal threat",
                "field": "payload.body",
                "matches": "(?i)lawyer",
                "effect": "review",
            }
        ],
    }


@pytest.fixture
def automation(db, admin_user):
    UserFactory(username="olivia", roles=["owner"], password=None)
    UserFactory(username="ravi", roles=["reviewer"], password=None)
    load_catalog({"automations": [support_triage()]}, source="test.yaml")
    return Automation.objects.get(slug="support-triage")


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def stored() -> str:
    """Everything the database holds about the catalog, history included."""
    history = [model.history.count() for model in HISTORY_MODELS]
    return json.dumps([dump_catalog(), history], sort_keys=True, default=str)


def form_data(response) -> dict:
    """The POST body a browser sends for the admin form (and inlines) as rendered."""
    forms = [response.context["adminform"].form]
    for inline in response.context.get("inline_admin_formsets", []):
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms:
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            if value is True:
                data[field.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[field.html_name] = [str(v) for v in value]
            else:
                data[field.html_name] = value
    return data


def errors_on(response) -> dict[str, list[str]]:
    """Every error the page shows: by field name, `intents-0-<field>` for inlines."""
    assert response.status_code == 200, "the form was saved"
    form = response.context["adminform"].form
    errors = {name: list(messages) for name, messages in form.errors.items()}
    for inline in response.context.get("inline_admin_formsets", []):
        for inline_form in inline.formset.forms:
            for name, messages in inline_form.errors.items():
                errors[inline_form.add_prefix(name)] = list(messages)
    return errors


def change_url(obj) -> str:
    return reverse(f"admin:catalog_{obj._meta.model_name}_change", args=[obj.pk])


def post_change(client, obj, **changes):
    url = change_url(obj)
    data = form_data(client.get(url))
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value if isinstance(value, str) else json.dumps(value)
    return client.post(url, data)


# The automation page: its form and inlines validated together.


def test_bad_webhook_url_in_an_intent_inline_is_refused_next_to_it(as_admin, automation):
    before = stored()

    response = post_change(
        as_admin, automation, **{"intents-0-action_config": {**HOOK, "url": "hooks/route"}}
    )

    assert errors_on(response) == {"intents-0-action_config": ["action.url: not a URL"]}
    assert stored() == before


def test_invalid_regex_in_a_do_not_automate_inline_is_refused(as_admin, automation):
    before = stored()

    response = post_change(
        as_admin, automation, **{"do_not_automate-0-value": json.dumps("(lawyer")}
    )

    assert errors_on(response) == {
        "do_not_automate-0-value": [
            "not a valid regular expression: missing ), unterminated subpattern at position 0"
        ]
    }
    assert stored() == before


def test_catastrophic_backreference_pattern_is_refused(as_admin, automation):
    before = stored()

    response = post_change(
        as_admin, automation, **{"do_not_automate-0-value": json.dumps(r"^(a+)+\1$")}
    )

    assert errors_on(response) == {
        "do_not_automate-0-value": [
            "not supported by RE2, the linear-time engine patterns run on "
            r"(no backreferences or look-around): invalid escape sequence: \1"
        ]
    }
    assert stored() == before


def test_nested_quantifiers_are_accepted_because_re2_runs_them_in_linear_time(as_admin, automation):
    response = post_change(
        as_admin, automation, **{"do_not_automate-0-value": json.dumps("^(a+)+$")}
    )

    assert response.status_code == 302
    assert automation.do_not_automate.get().value == "^(a+)+$"


def test_api_key_variable_that_is_not_allowed_is_refused(as_admin, automation):
    before = stored()

    response = post_change(as_admin, automation, api_key_env="SECRET_KEY")

    [message] = errors_on(response)["api_key_env"]
    assert message.startswith("SECRET_KEY is Handrail's own configuration")
    assert stored() == before


def test_webhook_secret_variable_that_is_not_allowed_is_refused(as_admin, automation):
    before = stored()

    response = post_change(
        as_admin,
        automation,
        **{"intents-0-action_config": {**HOOK, "secret_env": "DATABASE_URL"}},
    )

    [message] = errors_on(response)["intents-0-action_config"]
    assert message.startswith("action.secret_env: DATABASE_URL is Handrail's own configuration")
    assert stored() == before


def test_rule_naming_a_missing_intent_is_refused(as_admin, automation):
    before = stored()

    response = post_change(as_admin, automation, rules=[{**BILLING_RULE, "intent": "close"}])

    assert errors_on(response) == {"rules": ['rules[0].intent: no intent named "close"']}
    assert stored() == before


def test_renaming_an_intent_the_rules_use_is_refused_across_form_and_inline(as_admin, automation):
    before = stored()

    response = post_change(as_admin, automation, **{"intents-0-name": "route"})

    assert errors_on(response) == {"rules": ['rules[0].intent: no intent named "route_ticket"']}
    assert stored() == before


def test_deleting_every_intent_is_refused(as_admin, automation):
    before = stored()

    response = post_change(
        as_admin, automation, **{"intents-0-DELETE": "on", "intents-1-DELETE": "on"}
    )

    assert errors_on(response)["__all__"] == ["intents: must not be empty"]
    assert stored() == before


def test_adding_an_automation_validates_it_whole(as_admin, automation):
    response = as_admin.get(reverse("admin:catalog_automation_add"))
    data = form_data(response)
    data.update(
        slug="refunds",
        name="Refunds",
        owner=str(automation.owner_id),
        purpose="Approve refunds.",
        rollback_plan="Refund by hand.",
        risk_tier="low",
        data_classification="internal",
        mode="shadow",
        provider="openai",
        rules="[]",
    )

    response = as_admin.post(reverse("admin:catalog_automation_add"), data)

    assert errors_on(response) == {
        "model": ["required when provider is openai"],
        "__all__": ["intents: must not be empty"],
    }
    assert not Automation.objects.filter(slug="refunds").exists()


def test_a_problem_stored_before_does_not_block_an_unrelated_change(as_admin, automation):
    # Stored before the check existed: the matcher fails safe on it at run time.
    DoNotAutomateRule.objects.update(value=r"(a)\1")

    response = post_change(as_admin, automation, min_confidence="0.9")

    assert response.status_code == 302
    automation.refresh_from_db()
    assert automation.min_confidence == 0.9


# The stand-alone intent, segment policy and do-not-automate rule pages.


def test_intent_page_refuses_a_bad_webhook_url(as_admin, automation):
    intent = automation.intents.get(name="route_ticket")
    before = stored()

    response = post_change(as_admin, intent, action_config={**HOOK, "url": "ftp://example.test/"})

    assert errors_on(response) == {"action_config": ["action.url: not a URL"]}
    assert stored() == before


def test_intent_page_refuses_a_rename_the_automations_rules_depend_on(as_admin, automation):
    intent = automation.intents.get(name="route_ticket")
    before = stored()

    response = post_change(as_admin, intent, name="route")

    assert errors_on(response) == {
        "__all__": ['support-triage: decision.rules[0].intent: no intent named "route_ticket"']
    }
    assert stored() == before


def test_intent_page_refuses_a_move_that_leaves_its_automation_invalid(as_admin, automation):
    load_catalog({"automations": [support_triage("support-copy")]}, source="test.yaml")
    other = Automation.objects.get(slug="support-copy")
    intent = automation.intents.get(name="route_ticket")
    before = stored()

    response = post_change(as_admin, intent, automation=str(other.pk), name="route_it")

    assert errors_on(response) == {
        "automation": [
            "support-triage would be left with decision.rules[0].intent: "
            'no intent named "route_ticket"'
        ]
    }
    assert stored() == before


def test_segment_policy_page_refuses_a_key_the_loader_refuses(as_admin, automation):
    segment = automation.segments.get()
    before = stored()

    response = post_change(as_admin, segment, key="e" * 65)

    assert errors_on(response) == {"key": ["must be at most 64 characters"]}
    assert stored() == before


def test_do_not_automate_rule_page_refuses_look_around(as_admin, automation):
    rule = automation.do_not_automate.get()
    before = stored()

    response = post_change(as_admin, rule, value=json.dumps("(?<!no )lawyer"))

    [message] = errors_on(response)["value"]
    assert message.startswith("not supported by RE2")
    assert stored() == before


def test_adding_a_do_not_automate_rule_with_a_bad_regex_is_refused(as_admin, automation):
    url = reverse("admin:catalog_donotautomaterule_add")
    data = form_data(as_admin.get(url))
    data.update(
        automation=str(automation.pk),
        name="threat",
        position="1",
        field="payload.body",
        operator="matches",
        value=json.dumps("[a-"),
        effect="block",
    )

    response = as_admin.post(url, data)

    assert errors_on(response) == {
        "value": ["not a valid regular expression: unterminated character set at position 0"]
    }
    assert automation.do_not_automate.count() == 1


# django-simple-history's revert form is the admin's form too.


def revert(client, obj, record):
    url = reverse(
        f"admin:catalog_{obj._meta.model_name}_simple_history", args=[obj.pk, record.history_id]
    )
    return client.post(url, form_data(client.get(url)))


def test_reverting_an_automation_to_an_invalid_state_is_refused(as_admin, automation):
    automation.api_key_env = "SECRET_KEY"
    automation.save()  # as a row stored before the allow-list: its history keeps it
    automation.api_key_env = ""
    automation.save()
    bad = automation.history.filter(api_key_env="SECRET_KEY").get()
    before = stored()

    response = revert(as_admin, automation, bad)

    [message] = errors_on(response)["api_key_env"]
    assert message.startswith("SECRET_KEY is Handrail's own configuration")
    assert stored() == before


def test_reverting_an_intent_to_an_invalid_state_is_refused(as_admin, automation):
    intent = automation.intents.get(name="route_ticket")
    intent.action_config = {**HOOK, "url": "hooks/route"}
    intent.save()
    intent.action_config = HOOK
    intent.save()
    bad = intent.history.filter(action_config__url="hooks/route").get()
    before = stored()

    response = revert(as_admin, intent, bad)

    assert errors_on(response) == {"action_config": ["action.url: not a URL"]}
    assert stored() == before


def test_reverting_to_a_valid_state_still_works(as_admin, automation):
    good = automation.history.latest()
    automation.min_confidence = 0.9
    automation.save()

    response = revert(as_admin, automation, good)

    assert response.status_code == 302
    automation.refresh_from_db()
    assert automation.min_confidence == 0.7


def test_intent_page_refuses_a_webhook_to_the_metadata_address(as_admin, automation):
    # The admin runs the loader's URL check, address policy included (SSRF, security item 4).
    intent = automation.intents.get(name="route_ticket")
    before = stored()
    metadata = {**HOOK, "url": "http://169.254.169.254/latest/meta-data/"}

    response = post_change(as_admin, intent, action_config=metadata)

    [message] = errors_on(response)["action_config"]
    assert message.startswith("action.url: targets a private address (169.254.169.254)")
    assert stored() == before
