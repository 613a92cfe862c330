"""`manage.py seed_demo`: the demo users, catalog and events, and re-running it safely."""

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import RequestFactory

from automations.models import Event, Label, Run
from automations.states import RunState
from catalog.demo.events import demo_events
from catalog.models import Automation, DoNotAutomateRule, Intent, SegmentPolicy

DEMO_ROLES = {
    "olivia": "owner",
    "oscar": "owner",
    "ravi": "reviewer",
    "rosa": "reviewer",
    "carla": "compliance",
    "ada": "admin",
}
PASSWORD_ROW = re.compile(r"^\s+(\w+)\s+\|\s+(\w+)\s+\|\s+(\S+)$", re.MULTILINE)


def seed(events: int = 40) -> dict[str, str]:
    """Run seed_demo; returns the printed {username: password}."""
    out = io.StringIO()
    call_command("seed_demo", "--events", str(events), stdout=out)
    rows = PASSWORD_ROW.findall(out.getvalue())
    return {username: password for username, role, password in rows if role != "role"}


def log_in(username: str, password: str) -> User | None:
    """authenticate() as the login form calls it: with the request, which login throttling needs."""
    return authenticate(
        RequestFactory().post("/accounts/login/"), username=username, password=password
    )


def history_count() -> int:
    models = (Automation, Intent, SegmentPolicy, DoNotAutomateRule)
    return sum(model.history.count() for model in models)


@pytest.fixture
def no_webhook_secret(monkeypatch):
    # Without the demo secret, approved actions fail at once instead of calling 127.0.0.1:8000.
    monkeypatch.delenv("DEMO_WEBHOOK_SECRET", raising=False)


# Transactional: the seed decides its runs on commit, as a real `make demo` does.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_webhook_secret"),
]


def test_seed_creates_the_demo_catalog_with_owners_and_reviewers():
    seed(events=0)

    slugs = set(Automation.objects.values_list("slug", flat=True))
    assert {"kyc-document-triage", "support-triage", "refund-eligibility"} <= slugs
    kyc = Automation.objects.get(slug="kyc-document-triage")
    assert kyc.owner.username == "olivia"
    assert set(kyc.reviewers.values_list("username", flat=True)) == {"ravi", "rosa"}
    assert (kyc.mode, kyc.data_classification, kyc.risk_tier) == ("approve", "restricted", "high")
    support = Automation.objects.get(slug="support-triage")
    assert support.mode == "autonomous"
    segments = {policy.key: policy for policy in support.segments.all()}
    assert segments["enterprise"].mode == "approve"
    assert segments["trial"].enabled is False


def test_seed_creates_one_user_per_role_who_can_log_in_with_the_printed_password():
    passwords = seed(events=0)

    assert set(passwords) == set(DEMO_ROLES)
    for username, role in DEMO_ROLES.items():
        user = log_in(username, passwords[username])
        assert user is not None, username
        assert list(user.groups.values_list("name", flat=True)) == [role]
    ada = User.objects.get(username="ada")
    assert ada.is_staff and ada.is_superuser
    assert not User.objects.get(username="ravi").is_staff


def test_seed_ingests_the_events_and_decides_them():
    seed(events=40)

    assert Event.objects.count() == 40
    assert set(Event.objects.values_list("client", flat=True)) == {"demo-seed"}
    states = set(Run.objects.values_list("state", flat=True))
    assert RunState.RECEIVED not in states
    # A realistic mix: some wait for a person, some were stopped, shadow runs are recorded.
    assert RunState.AWAITING_REVIEW in states
    assert RunState.RECORDED in states
    assert Label.objects.exists()


def test_second_seed_stores_nothing_twice_and_only_changes_the_passwords():
    first = seed(events=40)
    counts = (Automation.objects.count(), Event.objects.count(), Run.objects.count())
    history, labels = history_count(), Label.objects.count()

    second = seed(events=40)

    assert (Automation.objects.count(), Event.objects.count(), Run.objects.count()) == counts
    assert history_count() == history
    assert Label.objects.count() == labels
    assert log_in("ravi", first["ravi"]) is None
    assert log_in("ravi", second["ravi"]) is not None


def test_more_events_later_extend_the_first_ones_without_conflicts():
    seed(events=20)
    seed(events=40)

    assert Event.objects.count() == 40
    assert demo_events(count=20) == demo_events(count=40)[:20]
