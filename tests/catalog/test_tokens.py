"""API tokens: shown once, stored as a hash, revocable, limited to automations."""

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog.models import ApiToken
from catalog.tokens import (
    TokenGrant,
    token_allows,
    token_authenticate,
    token_authenticate_for,
    token_issue,
)
from tests.factories import AutomationFactory


def test_issued_secret_is_stored_only_as_its_hash(db):
    token, raw = token_issue(name="zendesk-bridge")

    token.refresh_from_db()
    assert raw.startswith("hr_") and len(raw) >= 40
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert token.prefix == raw[:10]
    stored = [str(value) for value in ApiToken.objects.values_list().get()]
    assert raw not in stored


def test_every_token_is_different(db):
    _, first = token_issue(name="a")
    _, second = token_issue(name="a")

    assert first != second


def test_authenticate_finds_the_token_by_its_secret(db):
    token, raw = token_issue(name="zendesk-bridge")

    assert token_authenticate(raw) == token


@pytest.mark.parametrize("raw", ["", "hr_wrong", "x" * 10_000])
def test_authenticate_refuses_unknown_secrets(db, raw):
    token_issue(name="zendesk-bridge")

    assert token_authenticate(raw) is None


def test_authenticate_refuses_a_revoked_token(db):
    token, raw = token_issue(name="old")
    token.revoked_at = timezone.now()
    token.save()

    assert token_authenticate(raw) is None


def test_last_used_is_noted_at_most_once_a_minute(db):
    token, raw = token_issue(name="zendesk-bridge")
    assert token.last_used_at is None

    token_authenticate(raw)
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None

    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)
    token_authenticate(raw)
    token.refresh_from_db()
    assert token.last_used_at == recent

    stale = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    token_authenticate(raw)
    token.refresh_from_db()
    assert token.last_used_at > stale + timedelta(minutes=1)


def test_token_without_automations_allows_every_automation(db):
    token, _ = token_issue(name="all")

    assert token_allows(token, AutomationFactory().pk)


def test_limited_token_allows_only_its_automations(db):
    triage, billing = AutomationFactory(slug="triage"), AutomationFactory(slug="billing")
    token, _ = token_issue(name="triage-only", automations=[triage])

    assert token_allows(token, triage.pk)
    assert not token_allows(token, billing.pk)


def run_issue(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_prints_a_working_token_once(db):
    out, err = run_issue("zendesk-bridge")

    raw = out.strip()
    assert out.count("\n") == 1 and raw.startswith("hr_")
    token = token_authenticate(raw)
    assert token.name == "zendesk-bridge"
    assert token.automations.count() == 0
    assert raw not in err
    assert "every automation" in err


def test_command_limits_the_token_to_the_given_automations(db):
    triage, billing = AutomationFactory(slug="triage"), AutomationFactory(slug="billing")
    AutomationFactory(slug="other")

    out, _ = run_issue("bridge", "--automation", "triage", "--automation", "billing")

    token = token_authenticate(out.strip())
    assert set(token.automations.all()) == {triage, billing}


def test_command_refuses_an_unknown_automation_and_creates_nothing(db):
    AutomationFactory(slug="triage")

    with pytest.raises(CommandError, match="unknown automation: nope") as raised:
        run_issue("bridge", "--automation", "triage", "--automation", "nope")

    assert raised.value.returncode == 1
    assert not ApiToken.objects.exists()


def test_command_refuses_an_empty_name(db):
    with pytest.raises(CommandError, match="NAME"):
        run_issue("  ")

    assert not ApiToken.objects.exists()


def test_token_authenticate_for_finds_the_automation_and_says_whether_the_token_may_use_it(db):
    triage, billing = AutomationFactory(slug="triage"), AutomationFactory(slug="billing")
    limited, limited_raw = token_issue(name="limited", automations=[triage])
    everything, everything_raw = token_issue(name="everything")

    assert token_authenticate_for(limited_raw, "triage") == TokenGrant(limited, triage.pk, True)
    assert token_authenticate_for(limited_raw, "billing") == TokenGrant(limited, billing.pk, False)
    assert token_authenticate_for(everything_raw, "billing") == TokenGrant(
        everything, billing.pk, True
    )
    assert token_authenticate_for(everything_raw, "nope") == TokenGrant(everything, None, False)
    assert token_authenticate_for(everything_raw + "x", "billing") is None


def test_token_authenticate_for_notes_the_use_and_refuses_a_revoked_token(db):
    AutomationFactory(slug="triage")
    token, raw = token_issue(name="bridge")

    grant = token_authenticate_for(raw, "triage")
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert grant.token.last_used_at == token.last_used_at

    token.revoked_at = timezone.now()
    token.save()
    assert token_authenticate_for(raw, "triage") is None
