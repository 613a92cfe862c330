"""The loader asks the adapter and provider registries: a new one needs no loader edit."""

from pathlib import Path

import pytest

from automations.adapters import ADAPTERS, ConfigField
from automations.providers import PROVIDERS
from catalog.loader import CatalogInvalid, load_catalog, parse_catalog
from catalog.models import Automation
from tests.factories import UserFactory

EXAMPLE = Path(__file__).parent / "fixtures" / "support_triage.yaml"
ACTION = "automations[0].intents[0].action"


class PagerAdapter:
    """A stand-in adapter with settings of its own; the loader never delivers anything."""

    name = "pager"
    config_fields = {
        "channel": ConfigField("text", required=True, max_length=20),
        "priority": ConfigField("integer", minimum=1, maximum=5),
        "escalate_after_seconds": ConfigField("number", minimum=0, above_minimum=True),
    }

    def timeout_seconds(self, config: dict) -> float:
        return 1.0

    def deliver(self, **kwargs):
        raise AssertionError("the loader must not deliver")

    def compensate(self, **kwargs):
        raise AssertionError("the loader must not compensate")


class EchoProvider:
    """A stand-in provider that, like openai, needs a model named."""

    name = "echo"
    remote = False
    bills = False
    attempts = 1
    needs_model = True

    def endpoint(self, automation) -> str:
        return ""

    def decide(self, **kwargs):
        raise AssertionError("the loader must not decide")


@pytest.fixture
def people(db):
    for name in ("olivia", "ravi", "rosa"):
        UserFactory(username=name, password=None)


@pytest.fixture
def pager(monkeypatch):
    monkeypatch.setitem(ADAPTERS, "pager", PagerAdapter())


@pytest.fixture
def echo(monkeypatch):
    monkeypatch.setitem(PROVIDERS, "echo", EchoProvider())


def document(*, action: dict | None = None, **decision) -> dict:
    """The contract's example, with another action and decision settings."""
    doc = parse_catalog(EXAMPLE.read_text())
    automation = doc["automations"][0]
    if action is not None:
        automation["intents"][0]["action"] = action
    automation["decision"].update(decision)
    return doc


def errors_of(doc) -> list[str]:
    with pytest.raises(CatalogInvalid) as caught:
        load_catalog(doc, source="test.yaml")
    return caught.value.errors


def test_a_registered_adapter_is_loaded_with_its_own_settings(people, pager):
    action = {"adapter": "pager", "channel": "ops", "priority": 2, "max_attempts": 3}

    load_catalog(document(action=action), source="pager.yaml")

    intent = Automation.objects.get(slug="support-triage").intents.get()
    assert intent.action_adapter == "pager"
    assert intent.action_config == {"channel": "ops", "priority": 2, "max_attempts": 3}


def test_a_registered_adapter_s_settings_are_checked_as_it_declares_them(people, pager):
    action = {
        "adapter": "pager",
        "priority": 9,
        "escalate_after_seconds": 0,
        "url": "http://127.0.0.1:9000/hooks/route",
    }

    assert sorted(errors_of(document(action=action))) == [
        f"{ACTION}.channel: required",
        f"{ACTION}.escalate_after_seconds: must be greater than 0",
        f"{ACTION}.priority: must be between 1 and 5",
        f"{ACTION}.url: unknown key",
    ]
    assert not Automation.objects.exists()


def test_an_adapter_nobody_registered_is_refused_with_the_registered_names(people, pager):
    action = {"adapter": "carrier-pigeon"}

    assert errors_of(document(action=action)) == [
        f"{ACTION}.adapter: must be one of webhook, pager"
    ]


def test_a_registered_provider_is_accepted_and_its_need_for_a_model_enforced(people, echo):
    assert errors_of(document(provider="echo", model="")) == [
        "automations[0].decision.model: required when provider is echo"
    ]

    load_catalog(document(provider="echo", model="echo-1"), source="echo.yaml")

    stored = Automation.objects.get(slug="support-triage")
    assert (stored.provider, stored.model) == ("echo", "echo-1")


def test_an_unregistered_provider_is_refused_with_the_registered_names(people, echo):
    assert errors_of(document(provider="oracle")) == [
        "automations[0].decision.provider: must be one of openai, rules, echo"
    ]


def test_an_adapter_setting_of_an_unknown_kind_fails_where_it_is_declared():
    with pytest.raises(ValueError, match="unknown kind of action setting 'colour'"):
        ConfigField("colour")
