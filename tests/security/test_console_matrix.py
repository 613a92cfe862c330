"""Every console URL, driven by every role (contracts §2), and the API's token boundary.

The URLs come from the resolver: a new console URL fails
test_every_console_url_is_in_the_matrix until its expectations are written
here. Owners and reviewers meet their own automation (`mine`: they own it,
they are assigned to its queue) and someone else's (`theirs`). A refused POST
must leave the review tables as they were.
"""

import copy
import io
import re

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from automations.metrics.models import RollupRebuild
from automations.models import Action, Event, Label, ReviewTask, Run, RunTransition
from catalog.models import (
    AuditSample,
    AuditSampleItem,
    Automation,
    GovernanceChange,
    SegmentPolicy,
    TrailEntry,
    TrailVerification,
)
from tests.security.matrix_world import ROLES, TOKEN_SECRET, world_fixture  # noqa: F401

LOGIN = "login"  # a redirect to the login page
MINE_ONLY = {"mine": 200, "theirs": 404}

# What each role gets: a status, "login", or per variant for reviewers and owners.
CONSOLE = {
    "home": {
        "method": "GET",
        "anonymous": LOGIN,
        "staff": 200,
        "reviewer": 200,
        "owner": 200,
        "compliance": 200,
        "admin": 200,
    },
    "automation_detail": {
        "method": "GET",
        "anonymous": LOGIN,
        "staff": 404,
        "reviewer": MINE_ONLY,
        "owner": MINE_ONLY,
        "compliance": 200,
        "admin": 200,
    },
    "automation_labels_jsonl": {
        "method": "GET",
        "anonymous": LOGIN,
        "staff": 404,
        "reviewer": {"mine": 403, "theirs": 404},  # sees the automation, may not export
        "owner": MINE_ONLY,
        "compliance": 200,
        "admin": 200,
    },
    "review:home": {
        "method": "GET",
        "anonymous": LOGIN,
        "staff": 403,
        "reviewer": 200,
        "owner": 403,
        "compliance": 403,
        "admin": 200,
    },
    "review:next": {
        "method": "POST",
        "anonymous": LOGIN,
        "staff": 403,
        "reviewer": {"mine": 303, "theirs": 404},
        "owner": 403,
        "compliance": 403,
        "admin": 404,  # admins work only the queues they are assigned to
    },
    "review:task": {
        "method": "GET",
        "anonymous": LOGIN,
        "staff": 403,
        "reviewer": {"mine": 200, "theirs": 403},
        "owner": 403,
        "compliance": 403,
        "admin": 403,
    },
    "review:decide": {
        "method": "POST",
        "anonymous": LOGIN,
        "staff": 403,
        "reviewer": {"mine": 303, "theirs": 403},
        "owner": 403,
        "compliance": 403,
        "admin": 403,
    },
    "run_detail": {
        "method": "GET",
        "anonymous": LOGIN,
        "staff": 404,
        "reviewer": MINE_ONLY,
        "owner": MINE_ONLY,
        "compliance": 200,
        "admin": 200,
    },
    "run_list": {
        "method": "GET",
        "anonymous": LOGIN,
        "staff": 200,  # the runs of no automation: an empty list
        "reviewer": 200,
        "owner": 200,
        "compliance": 200,
        "admin": 200,
    },
}
CONSOLE["automation_labels_csv"] = CONSOLE["automation_labels_jsonl"]
# The owner console (contracts §2): owners their own automations, admins all; reviewers who
# see the automation and compliance (who changes nothing) get 403, the rest 404.
MANAGERS_ONLY = {
    "anonymous": LOGIN,
    "staff": 404,
    "reviewer": {"mine": 403, "theirs": 404},
    "compliance": 403,
}
OWNER_PAGES = {
    "automation_settings",
    "automation_segments",
    "automation_segment",
    "automation_modes",
    "automation_switches",
}
for _name in OWNER_PAGES:
    CONSOLE[_name] = {"method": "GET", **MANAGERS_ONLY, "owner": MINE_ONLY, "admin": 200}
# A POST without a reason: refused as a form error (422) to those who may, changing nothing.
CONSOLE["automation_segment_remove"] = {
    "method": "POST",
    **MANAGERS_ONLY,
    "owner": {"mine": 422, "theirs": 404},
    "admin": 422,
}
# The history reads like the automation's page.
CONSOLE["automation_history"] = {**CONSOLE["automation_detail"]}
# The owner pages take POSTs too: the same people, the same refusals, nothing changed.
CONSOLE_POSTS = {
    name: {"method": "POST", **CONSOLE["automation_segment_remove"]} for name in OWNER_PAGES
}
# The what-if preview and the transaction diagram read what the automation page shows.
CONSOLE["automation_whatif"] = CONSOLE["automation_detail"]
CONSOLE["automation_diagram"] = CONSOLE["automation_detail"]
# Dashboards: as the automation pages (the overview adds up what the user may see); only
# admins rebuild the rollups and follow the rebuild.
CONSOLE["metrics:overview"] = {**CONSOLE["home"]}
CONSOLE["metrics:automation"] = {**CONSOLE["automation_detail"]}
CONSOLE["metrics:rebuild"] = {
    "method": "POST",
    "anonymous": LOGIN,
    "staff": 403,
    "reviewer": 403,
    "owner": 403,
    "compliance": 403,
    "admin": 302,  # back to the overview, the rebuild under way
}
CONSOLE["metrics:rebuild_progress"] = {
    "method": "GET",
    "anonymous": LOGIN,
    "staff": 403,
    "reviewer": 403,
    "owner": 403,
    "compliance": 403,
    "admin": 200,
}
# Compliance pages (contracts §2: compliance reads everything and records audit verdicts):
# compliance staff and admins only. The POST-only ones answer GET with 405 to them.
AUDIT_READ = {"samples", "sample_new", "sample", "report", "report_csv", "report_json"}
AUDIT_READ |= {"chart", "item", "trail", "trail_verification"}
AUDIT_POST = {"item_blind", "item_reveal", "item_verdict", "trail_verify"}
for _name in AUDIT_READ | AUDIT_POST:
    _allowed = 405 if _name in AUDIT_POST else 200
    CONSOLE[f"audit:{_name}"] = {
        "method": "GET",
        "anonymous": LOGIN,
        "staff": 403,
        "reviewer": 403,
        "owner": 403,
        "compliance": _allowed,
        "admin": _allowed,
    }
# URLs outside the role rules, and why.
NOT_ROLE_SCOPED = {
    "login": "authentication",
    "logout": "authentication",
    "password_change": "a user's own password",
    "password_change_done": "a user's own password",
    "password_reset": "authentication",
    "password_reset_done": "authentication",
    "password_reset_confirm": "authentication",
    "password_reset_complete": "authentication",
    "landing": "only redirects a user who just logged in to their first page (tested apart)",
    "demo_hooks": "the demo's own webhook receiver, off unless HANDRAIL_DEMO_RECEIVER",
    "demo_hook_receive": "the demo's own webhook receiver, off unless HANDRAIL_DEMO_RECEIVER",
    "metrics": "a bearer token, not a session (tests/automations/test_metrics_endpoint.py)",
}
# The API answers to tokens only (below); the schema and docs are public.
API = {"api:event-ingest", "api:run-detail", "api:openapi-json", "api:openapi-view", "api:api-root"}
REVIEW_TABLES = [ReviewTask, Run, RunTransition, Label, Action, Event]
# What a refused console POST must leave as it was, the configuration history included.
CONFIG_TABLES = [Automation, SegmentPolicy, GovernanceChange, TrailEntry]
CONFIG_TABLES += [Automation.history.model, SegmentPolicy.history.model]


def console_url_names(patterns=None, namespace="") -> set[str]:
    """Every named URL outside the admin, namespaced as reverse() wants it."""
    names = set()
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            if getattr(pattern, "app_name", None) == "admin":
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= console_url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}{pattern.name}")
    return names


def variants(name: str, role: str) -> list[str | None]:
    if name in ("home", "review:home", "run_list") or name.startswith("audit:"):
        return [None]
    if name in ("metrics:overview", "metrics:rebuild", "metrics:rebuild_progress"):
        return [None]
    return ["mine", "theirs"] if role in ("owner", "reviewer") else ["theirs"]


def url_of(world, name: str, variant: str | None) -> str:
    if name.startswith("audit:"):
        return reverse(name, args=audit_args(name))
    if name == "metrics:rebuild_progress":
        return reverse(name, args=[RollupRebuild.objects.get_or_create(total=1, done=1)[0].pk])
    if variant is None:
        return reverse(name)
    if name in ("review:task", "review:decide"):
        return reverse(name, args=[world.open_tasks[variant].pk])
    if name == "run_detail":
        return reverse(name, args=[world.open_tasks[variant].run_id])
    if name in ("automation_segment", "automation_segment_remove"):
        policy = world.automations[variant].segments.get()
        return reverse(name, args=[world.automations[variant].slug, policy.key])
    return reverse(name, args=[world.automations[variant].slug])


def audit_args(name: str) -> list[int]:
    short = name.removeprefix("audit:")
    if short in ("sample", "report", "report_csv", "report_json", "chart"):
        return [AuditSample.objects.order_by("pk").first().pk]
    if short.startswith("item"):
        return [AuditSampleItem.objects.order_by("pk").first().pk]
    if short == "trail_verification":
        return [TrailVerification.objects.get_or_create(ok=True, summary="matrix")[0].pk]
    return []


def expected(table: dict, name: str, role: str, variant: str | None):
    wanted = table[name][role]
    return wanted[variant] if isinstance(wanted, dict) else wanted


def got(response):
    if response.status_code == 302 and response["Location"].startswith(reverse("login")):
        return LOGIN
    return response.status_code


def snapshot() -> dict:
    tables = REVIEW_TABLES + CONFIG_TABLES
    return {m.__name__: list(m.objects.order_by("pk").values()) for m in tables}


def drive(world, name: str, role: str, variant, table: dict = CONSOLE) -> str | None:
    client = world.clients[role]
    url = url_of(world, name, variant)
    wanted = expected(table, name, role, variant)
    if table[name]["method"] == "GET":
        status = got(client.get(url))
        return (
            None if status == wanted else f"{role}/{variant}: GET {url} {status}, wanted {wanted}"
        )
    data = {"action": "reject", "reject_reason": "duplicate", "note": "from the matrix"}
    cookies = copy.deepcopy(client.cookies)
    with transaction.atomic():
        before = snapshot()
        response = client.post(url, data)
        status = got(response)
        problem = None
        if status != wanted:
            problem = f"{role}/{variant}: POST {url} {status}, wanted {wanted}"
        elif wanted == 303 and name == "review:decide":
            task = ReviewTask.objects.get(pk=world.open_tasks[variant].pk)
            if (task.state, task.outcome) != ("done", "rejected"):
                problem = f"{role}/{variant}: POST {url} answered 303 but decided nothing"
        elif wanted == 303:
            # The reviewer already holds this queue's task: Next shows it again.
            if response["Location"] != reverse("review:task", args=[world.open_tasks[variant].pk]):
                problem = f"{role}/{variant}: POST {url} went to {response['Location']}"
        elif snapshot() != before:
            problem = (
                f"{role}/{variant}: POST {url} was refused ({status}) but changed the database"
            )
        transaction.set_rollback(True)
    client.cookies = cookies
    return problem


def test_every_console_url_is_in_the_matrix():
    known = set(CONSOLE) | set(NOT_ROLE_SCOPED) | API

    assert console_url_names() - known == set()


@pytest.mark.parametrize("name", sorted(CONSOLE))
def test_console_url_for_every_role(world, db, name):
    problems = [
        problem
        for role in ROLES
        for variant in variants(name, role)
        if (problem := drive(world, name, role, variant))
    ]

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(CONSOLE_POSTS))
def test_console_post_for_every_role(world, db, name):
    problems = [
        problem
        for role in ROLES
        for variant in variants(name, role)
        if (problem := drive(world, name, role, variant, table=CONSOLE_POSTS))
    ]

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_catalog_home_lists_only_the_automations_a_role_may_see(world, db, role):
    response = world.clients[role].get(reverse("home"))

    if role == "anonymous":
        assert got(response) == LOGIN
        return
    listed = set(re.findall(r'<div class="slug">([^<]+)</div>', response.content.decode()))
    everything = {"mine", "theirs", "spare-mine", "spare-theirs"}
    wanted = {
        "staff": set(),
        "reviewer": {"mine"},
        "owner": {"mine", "spare-mine"},
        "compliance": everything,
        "admin": everything,
    }[role]
    assert listed == wanted


@pytest.mark.parametrize("role", ROLES)
def test_a_console_session_is_no_api_credential(world, db, role):
    client = world.clients[role]
    run = world.open_tasks["theirs"].run
    events = Event.objects.count()

    read = client.get(reverse("api:run-detail", args=[run.pk]))
    posted = client.post(
        reverse("api:event-ingest", args=["theirs"]),
        {"idempotency_key": "from-a-session", "payload": {}},
        content_type="application/json",
    )

    assert (read.status_code, read.json()["error"]) == (401, "unauthorized")
    assert (posted.status_code, posted.json()["error"]) == (401, "unauthorized")
    assert Event.objects.count() == events


def test_a_token_reaches_only_the_automations_it_is_limited_to(world, db, client):
    auth = {"Authorization": f"Bearer {TOKEN_SECRET}"}
    mine, theirs = world.open_tasks["mine"].run, world.open_tasks["theirs"].run
    events = Event.objects.count()

    posted = client.post(
        reverse("api:event-ingest", args=["mine"]),
        {"idempotency_key": "token-boundary", "payload": {}},
        content_type="application/json",
        headers=auth,
    )
    hidden = client.get(reverse("api:run-detail", args=[mine.pk]), headers=auth)
    shown = client.get(reverse("api:run-detail", args=[theirs.pk]), headers=auth)

    assert (posted.status_code, posted.json()["error"]) == (403, "forbidden")
    assert Event.objects.count() == events
    assert hidden.status_code == 404
    assert shown.status_code == 200


# The governance commands (contracts §6) answer to the same roles as the pages: --by names who
# asks; without it the command line acts as the operator who runs it.
COMMAND_ALLOWED = {
    "staff": set(),
    "reviewer": set(),
    "owner": {"mine"},
    "compliance": set(),
    "admin": {"mine", "theirs"},
}
COMMANDS = {
    "set_mode": ["shadow", "--reason", "from the matrix"],
    "set_switch": ["--off", "--reason", "from the matrix"],
}


def run_command(name: str, slug: str, *args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, slug, *COMMANDS[name], *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("role", sorted(COMMAND_ALLOWED))
def test_governance_commands_for_every_role(world, db, command, role):
    user = world.users[role]
    for variant, automation in world.automations.items():
        allowed = variant in COMMAND_ALLOWED[role]
        with transaction.atomic():
            before = snapshot()
            code, output = run_command(command, automation.slug, "--by", user.username)
            changed = snapshot() != before
            transaction.set_rollback(True)
        assert (code == 0, changed) == (allowed, allowed), (variant, code, output)
        if not allowed:
            assert output.strip() == f"{user.username} may not change {automation.slug}"
