"""catalog/validation.py: the loader's problems, placed at the model fields forms show them on."""

import pytest

from catalog.loader import load_catalog
from catalog.models import Automation, Intent
from catalog.validation import draft_problems, draft_stored, problem_locate
from tests.catalog.test_admin_validation import support_triage
from tests.factories import UserFactory


@pytest.mark.parametrize(
    ("path", "where", "text"),
    [
        ("slug", (None, None, "slug"), "bad"),
        ("reviewers[1]", (None, None, "reviewers"), "reviewers[1]: bad"),
        ("decision.model", (None, None, "model"), "bad"),
        ("decision.rules[0].when.matches", (None, None, "rules"), "rules[0].when.matches: bad"),
        ("intents", (None, None, None), "bad"),
        ("intents[1].name", ("intents", 1, "name"), "bad"),
        ("intents[1].action.adapter", ("intents", 1, "action_adapter"), "action.adapter: bad"),
        ("intents[1].action.url", ("intents", 1, "action_config"), "action.url: bad"),
        ("intents[0].arguments_schema.type", ("intents", 0, "arguments_schema"), None),
        ("segments[2].key", ("segments", 2, "key"), "bad"),
        ("do_not_automate[0].matches", ("do_not_automate", 0, "value"), "bad"),
        ("do_not_automate[0]", ("do_not_automate", 0, "operator"), "bad"),
    ],
)
def test_each_loader_path_lands_on_its_model_field(path, where, text):
    problem = problem_locate(path, "bad")

    assert (problem.part, problem.index, problem.field) == where
    assert problem.path == path
    if text is not None:
        assert problem.text == text


@pytest.fixture
def automation(db):
    UserFactory(username="olivia", password=None)
    UserFactory(username="ravi", password=None)
    load_catalog({"automations": [support_triage()]}, source="test.yaml")
    return Automation.objects.get()


def test_a_change_answers_for_its_own_problems_not_for_those_stored_before(automation):
    bad = {"url": "hooks", "secret_env": "SUPPORT_WEBHOOK_SECRET"}
    Intent.objects.filter(name="draft_reply").update(action_adapter="webhook", action_config=bad)
    before = draft_stored(Automation.objects.get())
    after = draft_stored(Automation.objects.get())
    _, draft = after.children["intents"]
    after.children["intents"] = [draft]  # deleting route_ticket moves draft_reply up the list

    problems = draft_problems(after, before=before)

    assert [(p.path, p.message) for p in problems] == [
        ("decision.rules[0].intent", 'no intent named "route_ticket"')
    ]
    assert [p.path for p in draft_problems(after)] == [
        "intents[0].action.url",
        "decision.rules[0].intent",
    ]
