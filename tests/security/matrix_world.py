"""One catalog, one user per role, logged in: set up once per matrix module, rolled back after.

Two automations: `mine` (owned by the owner, worked by the reviewer) and
`theirs` (someone else's on both counts), each with one row of everything the
admin shows. Each test runs inside the module's transaction and rolls back its
own changes, so the matrix pays for this set-up once per module.
"""

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.db import transaction
from django.template import Template
from django.test import Client
from django.test import utils as test_utils
from django.test.utils import override_settings
from django.utils import timezone

from automations.models import (
    Action,
    ActionAttempt,
    Label,
    ModelCall,
    RunTransition,
)
from automations.services.reviews import review_claim_next
from catalog.models import ApiToken, AuditSample, AuditSampleItem, Automation
from tests.factories import (
    PROPOSED,
    AutomationFactory,
    DoNotAutomateRuleFactory,
    EventFactory,
    IntentFactory,
    ReviewTaskFactory,
    RunFactory,
    SegmentPolicyFactory,
    UserFactory,
)

# Every role the matrices drive; reviewer and owner meet `mine` and `theirs`.
ROLES = ["anonymous", "staff", "reviewer", "owner", "compliance", "admin"]
# Who holds each role in the world (all staff: the admin is what is being tested).
ROLE_USERS = {
    "staff": ("stan", []),
    "reviewer": ("ravi", ["reviewer"]),
    "owner": ("olivia", ["owner"]),
    "compliance": ("carla", ["compliance"]),
    "admin": ("ada", ["admin"]),
}
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The secret of the world's API token, which is limited to `theirs`.
TOKEN_SECRET = "hr_matrix_secret"


@dataclass
class World:
    users: dict = field(default_factory=dict)  # role -> User (None for anonymous)
    clients: dict = field(default_factory=dict)  # role -> logged-in Client
    automations: dict = field(default_factory=dict)  # "mine" / "theirs" -> Automation
    spares: dict = field(default_factory=dict)  # bare automations nothing protects from deletion
    open_tasks: dict = field(default_factory=dict)  # a review task waiting in each queue
    token: ApiToken | None = None
    target_user: object = None  # a user who holds no role, for the user admin
    target_group: Group | None = None  # a group that is not a role, for the group admin


def _verdict(run) -> None:
    """One guardrail verdict of the run, where verdicts are rows of their own."""
    try:
        model = apps.get_model("automations", "GuardrailVerdict")
    except LookupError:
        return  # the run keeps its verdicts itself
    model.objects.create(run=run, position=0, check_name="kill_switch", verdict="pass")


def _trail(automation, reviewer, admin_user) -> None:
    """A decided run with its transitions, model call, verdict, label, action and audit item."""
    task = ReviewTaskFactory(run__event__automation=automation, state="done", outcome="accepted")
    run = task.run
    RunTransition.objects.create(run=run, from_state="deciding", to_state="awaiting_review")
    ModelCall.objects.create(run=run, automation=automation, provider="rules")
    _verdict(run)
    Label.objects.create(
        review_task=task, run=run, automation=automation, outcome="accepted", reviewer=reviewer
    )
    action = Action.objects.create(
        run=run, automation=automation, adapter="webhook", idempotency_key=f"run-{run.pk}-route"
    )
    ActionAttempt.objects.create(
        action=action, number=1, started_at=timezone.now(), status_code=200
    )
    now = timezone.now()
    sample = AuditSample.objects.create(
        name=f"sample of {automation.slug}",
        automation=automation,
        seed=f"seed-{automation.slug}",
        since=now - timedelta(days=1),
        until=now,
        created_by=admin_user,
    )
    stratum = sample.strata.create(position=0, key={"outcome": "approved"}, population=1)
    AuditSampleItem.objects.create(
        sample=sample, stratum=stratum, run=run, position=0, outcome="approved"
    )


def _automation(slug, owner, reviewer, admin_user) -> Automation:
    automation = AutomationFactory(slug=slug, owner=owner, reviewers=[reviewer])
    # A receiver no address or secret-name rule refuses: the matrix is about roles.
    config = {"url": "https://hooks.example.com/route", "secret_env": "SUPPORT_WEBHOOK_SECRET"}
    IntentFactory(automation=automation, action_config=config)
    SegmentPolicyFactory(automation=automation)
    DoNotAutomateRuleFactory(automation=automation)
    _trail(automation, reviewer, admin_user)
    return automation


def _open_task(automation):
    event = EventFactory(automation=automation)
    return ReviewTaskFactory(
        run=RunFactory(event=event, state="awaiting_review", proposed_intent=PROPOSED)
    )


def _login_records() -> None:
    """One record of each kind django-axes keeps, when it is installed."""
    if not apps.is_installed("axes"):
        return
    seen = {
        "user_agent": "matrix",
        "ip_address": "192.0.2.1",
        "username": "tina",
        "http_accept": "*/*",
        "path_info": "/accounts/login/",
    }
    apps.get_model("axes", "AccessAttempt").objects.create(
        **seen, get_data="", post_data="", failures_since_start=3
    )
    apps.get_model("axes", "AccessLog").objects.create(**seen)
    apps.get_model("axes", "AccessFailureLog").objects.create(**seen, locked_out=False)


def world_build() -> World:
    world = World(users={"anonymous": None}, clients={"anonymous": Client()})
    for role, (username, roles) in ROLE_USERS.items():
        world.users[role] = UserFactory(username=username, roles=roles, is_staff=True)
    oscar = UserFactory(username="oscar", roles=["owner"], is_staff=True)
    rosa = UserFactory(username="rosa", roles=["reviewer"], is_staff=True)
    admin_user = world.users["admin"]
    world.automations = {
        "mine": _automation("mine", world.users["owner"], world.users["reviewer"], admin_user),
        "theirs": _automation("theirs", oscar, rosa, admin_user),
    }
    world.spares = {
        "mine": AutomationFactory(slug="spare-mine", owner=world.users["owner"]),
        "theirs": AutomationFactory(slug="spare-theirs", owner=oscar),
    }
    world.open_tasks = {variant: _open_task(a) for variant, a in world.automations.items()}
    # The reviewer holds the task of their own queue, so that deciding it is possible.
    claimed = review_claim_next(user=world.users["reviewer"], automation=world.automations["mine"])
    assert claimed.pk == world.open_tasks["mine"].pk
    world.open_tasks["mine"] = claimed
    world.token = ApiToken.objects.create(
        name="zendesk",
        token_hash=hashlib.sha256(TOKEN_SECRET.encode()).hexdigest(),
        prefix=TOKEN_SECRET[:10],
    )
    world.token.automations.add(world.automations["theirs"])
    world.target_user = UserFactory(username="tina")
    world.target_group = Group.objects.create(name="auditors")
    _login_records()
    for role, user in world.users.items():
        if user is not None:
            world.clients[role] = Client()
            world.clients[role].force_login(user)
    return world


@contextmanager
def templates_uninstrumented():
    """Render templates as in production, without the test runner's instrumentation.

    Django's test set-up sends a signal and copies the context on every
    template render so that `response.context` can be read; an admin page
    renders about a thousand templates (every widget), which doubles its
    cost. The matrices read status codes and HTML only. Without the saved
    original (another Django), pages are rendered instrumented, only slower.
    """
    saved = getattr(test_utils._TestState, "saved_data", None)
    original = getattr(saved, "template_render", None)
    if original is None:
        yield
        return
    instrumented, Template._render = Template._render, original
    try:
        yield
    finally:
        Template._render = instrumented


@pytest.fixture(scope="module", name="world")
def world_fixture(django_db_setup, django_db_blocker):
    """The world, inside a transaction the module's tests nest in and that is rolled back."""
    fast = override_settings(PASSWORD_HASHERS=FAST_HASHER)
    with django_db_blocker.unblock(), fast, templates_uninstrumented(), transaction.atomic():
        yield world_build()
        transaction.set_rollback(True)
