"""Every admin URL, driven by every role: who may read, add, change and delete (contracts §2).

The cases come from the admin site's registry: a new model admin, view or
action fails test_every_admin_url_is_in_the_matrix until its expectations are
written here. Owners and reviewers meet rows of their own automation (`mine`)
and of someone else's (`theirs`). A refused POST must leave the database as
it was; an allowed one must have done what it was sent to do.
"""

import contextlib
import copy
import re
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import reverse
from simple_history.exceptions import NotHistoricalModelError
from simple_history.utils import get_history_model_for_model

from catalog.models import ApiToken, Automation
from tests.security.html_form import form_data
from tests.security.matrix_world import ROLES, world_fixture  # noqa: F401 (fixture "world")

User = get_user_model()
REGISTRY = admin.site._registry

# Who may do what, per model: roles, or "owner:mine" for an owner on their own automation.
READERS = {"admin", "compliance"}
CONFIGURATION = {
    "view": READERS | {"owner:mine"},
    "add": {"admin", "owner:mine"},
    "change": {"admin", "owner:mine"},
    "delete": {"admin", "owner:mine"},
}
EVIDENCE = {"view": READERS, "add": set(), "change": set(), "delete": set()}
PEOPLE = {"view": READERS, "add": {"admin"}, "change": {"admin"}, "delete": {"admin"}}
LOGIN_RECORDS = {"view": READERS, "add": set(), "change": set(), "delete": {"admin"}}
EXPECTED = {
    "catalog.automation": {**CONFIGURATION, "delete": {"admin"}},
    "catalog.intent": CONFIGURATION,
    "catalog.segmentpolicy": CONFIGURATION,
    "catalog.donotautomaterule": CONFIGURATION,
    "catalog.apitoken": {"view": READERS, "add": set(), "change": {"admin"}, "delete": {"admin"}},
    # Read only: verdicts are recorded on the audit pages, through the service and the trail.
    "catalog.auditsample": EVIDENCE,
    "catalog.auditsampleitem": EVIDENCE,
    "automations.event": EVIDENCE,
    "automations.run": EVIDENCE,
    "automations.runtransition": EVIDENCE,
    "automations.modelcall": EVIDENCE,
    "automations.guardrailverdict": EVIDENCE,
    "automations.reviewtask": EVIDENCE,
    "automations.label": EVIDENCE,
    "automations.action": EVIDENCE,
    "auth.user": PEOPLE,
    "auth.group": PEOPLE,
    # django-axes, when installed (log-in throttling).
    "axes.accessattempt": LOGIN_RECORDS,
    "axes.accesslog": LOGIN_RECORDS,
    "axes.accessfailurelog": LOGIN_RECORDS,
}
REGISTERED = {m._meta.label_lower for m in REGISTRY}

# The admin views of a model, by URL name suffix: (method, what it needs, its case names).
VIEWS = {
    "changelist": [("changelist", "GET", "view")],
    "add": [("add", "GET", "add"), ("add_post", "POST", "add")],
    "change": [("change", "GET", "view"), ("change_post", "POST", "change")],
    "delete": [("delete", "GET", "delete"), ("delete_post", "POST", "delete")],
    "history": [("history", "GET", "view")],
    "simple_history": [("revert", "GET", "view"), ("revert_post", "POST", "change")],
    "password_change": [("password", "GET", "change"), ("password_post", "POST", "change")],
}
LIST_VIEWS = {"changelist", "add"}
# Site-wide admin URLs: not about one model's rows.
SITE_URLS = {
    "index": "every staff user gets in; the page lists only what each may see (below)",
    "app_list": "lists the app's models a user may see; 404 when none (below)",
    "login": "authentication, not roles",
    "logout": "authentication, not roles",
    "password_change": "a user's own password",
    "password_change_done": "a user's own password",
    "jsi18n": "static translations",
    "autocomplete": "no admin declares autocomplete_fields; it answers from has_view_permission",
    "view_on_site": "no administered model has get_absolute_url",
}

# Path from a model to the automation its rows belong to, where it is not found by a field
# named automation, run or sample; None: rows of no automation.
AUTOMATION_PATHS = {Automation: "pk", ApiToken: None, User: None, Group: None}
FIELD_PATHS = {"automation": "automation", "run": "run__automation", "sample": "sample__automation"}
KNOWN_ACTIONS = {"delete_selected", "revoke"}  # each has its effect check in effect_done

CHANGED = "changed by the matrix"
# The field each change (and revert) POST alters, and the value it sends.
TAMPER = {
    "catalog.automation": ("purpose", CHANGED),
    "catalog.intent": ("description", CHANGED),
    "catalog.segmentpolicy": ("key", "matrix-changed"),
    "catalog.donotautomaterule": ("name", CHANGED),
    "catalog.apitoken": ("name", CHANGED),
    "auth.user": ("first_name", "Changed"),
    "auth.group": ("name", CHANGED),
}
PASSWORD = "a-new-Passphrase-42"


def _add_values(label: str, world, variant: str) -> dict:
    """What an add form is filled in with, attaching the row to the variant's automation."""
    automation = world.automations[variant or "mine"]
    schema = '{"type": "object", "properties": {"team": {"type": "string"}}}'
    config = '{"url": "https://hooks.example.com/route", "secret_env": "SUPPORT_WEBHOOK_SECRET"}'
    return {
        "catalog.automation": {
            "slug": "matrix-new",
            "name": "Matrix new",
            "owner": str(automation.owner_id),
            "purpose": "A new one.",
            "rollback_plan": "Switch it off.",
            "risk_tier": "low",
            "data_classification": "internal",
            "mode": "shadow",
            # One intent, inline: validation may ask an automation for one.
            "intents-TOTAL_FORMS": "1",
            "intents-0-name": "route_ticket",
            "intents-0-position": "0",
            "intents-0-risk": "low",
            "intents-0-arguments_schema": schema,
            "intents-0-action_adapter": "webhook",
            "intents-0-action_config": config,
        },
        "catalog.intent": {
            "automation": str(automation.pk),
            "name": "matrix_new",
            "position": "5",
            "risk": "low",
            "arguments_schema": schema,
            "action_adapter": "webhook",
            "action_config": config,
        },
        "catalog.segmentpolicy": {
            "automation": str(automation.pk),
            "key": "matrix-new",
            "position": "5",
            "enabled": "on",
            "mode": "",
        },
        "catalog.donotautomaterule": {
            "automation": str(automation.pk),
            "name": "matrix new",
            "position": "5",
            "field": "payload.body",
            "operator": "contains",
            "value": '"refund"',
            "effect": "review",
        },
        "auth.user": {
            "username": "matrix-new",
            "usable_password": "true",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
        "auth.group": {"name": "matrix-new"},
    }.get(label, {})


@dataclass(frozen=True)
class Case:
    model: type
    view: str  # a name from VIEWS, or "action:<name>"
    method: str
    kind: str  # view | add | change | delete
    url_name: str

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    def __str__(self) -> str:
        return f"{self.label}-{self.view}"


def _url_suffixes(model) -> list[str]:
    opts = model._meta
    prefix = f"{opts.app_label}_{opts.model_name}_"
    names = [p.name for p in REGISTRY[model].get_urls() if p.name]
    return [name.removeprefix(prefix) for name in names]


def _actions(model) -> list[tuple[str, set]]:
    return [
        (name, set(getattr(func, "allowed_permissions", ())))
        for func, name, _ in REGISTRY[model]._get_base_actions()
    ]


def cases() -> list[Case]:
    found = []
    for model in REGISTRY:
        if model._meta.label_lower not in EXPECTED:
            continue  # test_every_admin_url_is_in_the_matrix names it
        opts = model._meta
        for suffix in _url_suffixes(model):
            for view, method, kind in VIEWS.get(suffix, []):
                url_name = f"admin:{opts.app_label}_{opts.model_name}_{suffix}"
                found.append(Case(model, view, method, kind, url_name))
        for name, permissions in _actions(model):
            kind = "delete" if "delete" in permissions else "change"
            changelist = f"admin:{opts.app_label}_{opts.model_name}_changelist"
            found.append(Case(model, f"action:{name}", "POST", kind, changelist))
    return found


def allows(who: set, role: str, variant: str | None) -> bool:
    return role in who or (f"{role}:mine" in who and variant in ("mine", None))


def _path(model) -> str | None:
    if model in AUTOMATION_PATHS:
        return AUTOMATION_PATHS[model]
    fields = {f.name for f in model._meta.fields}
    return next((path for name, path in FIELD_PATHS.items() if name in fields), None)


def variants(case: Case, role: str) -> list[str | None]:
    """Owners and reviewers meet their own automation's rows and someone else's."""
    if case.view in LIST_VIEWS or _path(case.model) is None:
        return [None]
    if case.view == "add_post" and not EXPECTED[case.label]["add"]:
        return [None]  # nobody adds these: nothing to attach to
    return ["mine", "theirs"] if role in ("owner", "reviewer") else ["theirs"]


def target(world, case: Case, variant: str | None):
    """The row a case acts on."""
    model = case.model
    if case.view in LIST_VIEWS or case.view == "add_post":
        return None
    if model is ApiToken:
        return world.token
    if model is User:
        return world.target_user
    if model is Group:
        return world.target_group
    if _path(model) is None:
        return model.objects.order_by("pk").first()
    if model is Automation:
        deleting = case.kind == "delete"
        # Runs protect an automation from deletion; the spares have none.
        return (world.spares if deleting else world.automations)[variant]
    path = _path(model)
    row = model.objects.filter(**{path: world.automations[variant]}).order_by("pk").first()
    assert row is not None, f"the world has no {case.label} of {variant}"
    return row


def url_of(case: Case, row) -> str:
    if row is None or case.view.startswith("action:"):
        return reverse(case.url_name)
    if case.view in ("revert", "revert_post"):
        return reverse(case.url_name, args=[row.pk, row.history.latest().history_id])
    return reverse(case.url_name, args=[row.pk])


_FORMS: dict = {}


def _admin_form(world, url: str, form_id: str) -> dict:
    """The form an admin's browser gets at url (read once per module)."""
    key = (id(world), url)
    if key not in _FORMS:
        page = world.clients["admin"].get(url)
        _FORMS[key] = form_data(page.content.decode(), form_id) if page.status_code == 200 else {}
    return {name: list(values) for name, values in _FORMS[key].items()}


def post_data(world, case: Case, row, variant) -> dict:
    model_form = f"{case.model._meta.model_name}_form"
    if case.view == "change_post":
        data = _admin_form(world, url_of(case, row), model_form)
    elif case.view == "revert_post":
        data = _admin_form(world, url_of(case, row), None)
    elif case.view == "add_post":
        data = _admin_form(world, reverse(case.url_name), model_form)
        data.update({k: [v] for k, v in _add_values(case.label, world, variant).items()})
        return data
    elif case.view == "delete_post":
        return {"post": "yes"}
    elif case.view == "password_post":
        return {"usable_password": "true", "password1": PASSWORD, "password2": PASSWORD}
    else:  # an action, confirmed
        name = case.view.removeprefix("action:")
        return {"action": name, "_selected_action": [str(row.pk)], "index": "0", "post": "yes"}
    if case.label in TAMPER:
        field, value = TAMPER[case.label]
        data[field] = [value]
    return data


def _tables(model) -> list:
    """The tables a POST on this model's admin could write: rows, inlines, history, m2m."""
    models = [model] + [inline.model for inline in REGISTRY[model].inlines]
    tables = []
    for m in models:
        tables.append(m)
        with contextlib.suppress(NotHistoricalModelError):
            tables.append(get_history_model_for_model(m))
        tables += [f.remote_field.through for f in m._meta.many_to_many]
    return tables


def snapshot(model) -> dict:
    return {t._meta.label: list(t._default_manager.order_by("pk").values()) for t in _tables(model)}


def effect_done(case: Case, row, before_count: int) -> bool:
    """Whether an allowed POST did what it was sent to do."""
    model = case.model
    if case.view == "add_post":
        return model.objects.count() == before_count + 1
    if case.kind == "delete":
        return not model.objects.filter(pk=row.pk).exists()
    if case.view == "action:revoke":
        return model.objects.get(pk=row.pk).revoked_at is not None
    if case.view == "password_post":
        return model.objects.get(pk=row.pk).check_password(PASSWORD)
    field, value = TAMPER[case.label]
    if field.startswith("items-"):
        return row.items.get().note == value
    return getattr(model.objects.get(pk=row.pk), field) == value


def outcome(response, method: str) -> str:
    status = response.status_code
    if status == 302:
        location = response["Location"]
        if location.startswith(reverse("admin:login")):
            return "login"
        if location == reverse("admin:index"):
            return "missing"  # Django's "doesn't exist, perhaps it was deleted?"
        return "ok"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "missing"
    if status == 200:
        if method == "POST" and b'class="errornote"' in response.content:
            return "invalid"  # the form again, with what is wrong
        return "ok"
    return f"status {status}"


def expected_outcomes(case: Case, role: str, variant) -> set[str]:
    """What a role's request may end in: ok when allowed, else one of the refusals."""
    who = EXPECTED[case.label]
    if role == "anonymous":
        return {"login"}
    if allows(who[case.kind], role, variant):
        return {"ok"}
    if case.view.startswith("action:"):
        # An action a user may not run is not offered: the changelist says none was chosen.
        return {"ok", "forbidden"} if allows(who["view"], role, None) else {"forbidden"}
    if not allows(who["view"], role, None):
        return {"forbidden"}
    refusals = {"forbidden", "missing"}
    return refusals | {"invalid"} if case.kind == "add" else refusals


def drive(world, case: Case, role: str, variant) -> str | None:
    """One request; a description of what went wrong, or None."""
    client = world.clients[role]
    row = target(world, case, variant)
    url = url_of(case, row)
    wanted = expected_outcomes(case, role, variant)
    allowed = wanted == {"ok"}
    if case.method == "GET":
        got = outcome(client.get(url), "GET")
        return None if got in wanted else f"{role}/{variant}: GET {url} {got}, wanted {wanted}"
    data = post_data(world, case, row, variant)
    # The POST is rolled back below; so is any session it made (a password change cycles it).
    cookies = copy.deepcopy(client.cookies)
    with transaction.atomic():
        before = snapshot(case.model)
        count = case.model.objects.count()
        got = outcome(client.post(url, data), "POST")
        if (
            got == "missing"
            and case.view == "delete_post"
            and not type(row).objects.filter(pk=row.pk).exists()
        ):
            got = "ok"  # deleted; who may not change the model is sent to the index after
        if got not in wanted:
            problem = f"{role}/{variant}: POST {url} {got}, wanted {wanted}"
        elif allowed and not effect_done(case, row, count):
            problem = f"{role}/{variant}: POST {url} was allowed but changed nothing"
        elif not allowed and snapshot(case.model) != before:
            problem = f"{role}/{variant}: POST {url} was refused ({got}) but changed the database"
        else:
            problem = None
        transaction.set_rollback(True)
    client.cookies = cookies
    return problem


def _cases_by_model() -> dict[str, list[Case]]:
    grouped: dict[str, list[Case]] = {}
    for case in cases():
        grouped.setdefault(case.label, []).append(case)
    return grouped


# One test per model (its URLs, every role): the per-test set-up costs more than a request.
@pytest.mark.parametrize(("label", "model_cases"), list(_cases_by_model().items()))
def test_admin_urls_of_a_model_for_every_role(world, db, label, model_cases):
    problems = [
        f"{case.view} {problem}"
        for case in model_cases
        for role in ROLES
        for variant in variants(case, role)
        if (problem := drive(world, case, role, variant))
    ]

    assert not problems, "\n".join(problems)


def test_every_admin_url_is_in_the_matrix():
    missing = [m._meta.label_lower for m in REGISTRY if m._meta.label_lower not in EXPECTED]
    unknown_views = [
        f"{m._meta.label_lower}: {suffix}"
        for m in REGISTRY
        for suffix in _url_suffixes(m)
        if suffix not in VIEWS
    ]
    unknown_actions = [
        f"{m._meta.label_lower}: {name}"
        for m in REGISTRY
        for name, permissions in _actions(m)
        if name not in KNOWN_ACTIONS or not permissions & {"change", "delete"}
    ]
    site_names = {getattr(p, "name", None) for p in admin.site.get_urls()} - {None}
    model_names = {
        f"{m._meta.app_label}_{m._meta.model_name}_{s}" for m in REGISTRY for s in _url_suffixes(m)
    }
    unknown_site = sorted(site_names - model_names - set(SITE_URLS))

    assert not missing, f"admin models without expectations in EXPECTED: {missing}"
    assert not unknown_views, f"admin views the matrix does not drive (VIEWS): {unknown_views}"
    assert not unknown_actions, f"actions without an effect check (effect_done): {unknown_actions}"
    assert not unknown_site, f"site-wide admin URLs not in SITE_URLS: {unknown_site}"


@pytest.mark.parametrize("role", ROLES)
def test_admin_index_lists_only_what_each_role_may_see(world, db, role):
    response = world.clients[role].get(reverse("admin:index"))

    if role == "anonymous":
        assert outcome(response, "GET") == "login"
        return
    assert response.status_code == 200
    listed = set(re.findall(r'<tr class="model-(\w+)', response.content.decode()))
    visible = {
        label.split(".")[1]
        for label, who in EXPECTED.items()
        if label in REGISTERED and allows(who["view"], role, None)
    }
    assert listed == visible


@pytest.mark.parametrize("role", ROLES)
def test_app_pages_open_only_to_who_sees_a_model_in_them(world, db, role):
    for app_label in sorted({label.split(".")[0] for label in REGISTERED}):
        response = world.clients[role].get(reverse("admin:app_list", args=[app_label]))
        sees_one = any(
            allows(who["view"], role, None)
            for label, who in EXPECTED.items()
            if label in REGISTERED and label.startswith(f"{app_label}.")
        )
        wanted = "login" if role == "anonymous" else ("ok" if sees_one else "missing")
        assert outcome(response, "GET") == wanted, (app_label, response.status_code)
