"""The load_automations and dump_automations commands (contracts section 1)."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import connections

from catalog.loader import dump_catalog, parse_catalog
from catalog.models import Automation, DoNotAutomateRule, Intent, SegmentPolicy
from tests.factories import UserFactory

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE = FIXTURES / "support_triage.yaml"
HISTORY_MODELS = (Automation, Intent, SegmentPolicy, DoNotAutomateRule)
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def people(db):
    # No password: hashing one costs more than the test itself.
    return {name: UserFactory(username=name, password=None) for name in ("olivia", "ravi", "rosa")}


def history_rows() -> int:
    return sum(model.history.count() for model in HISTORY_MODELS)


def run(*args, stdin=None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    options = {"stdin": stdin} if stdin is not None else {}
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_load_prints_a_summary_and_a_second_load_changes_nothing(people):
    out, _ = run("load_automations", str(EXAMPLE))
    assert out.strip() == "1 automation: 1 created, 0 updated, 0 unchanged"
    rows = history_rows()

    out, _ = run("load_automations", str(EXAMPLE))

    assert out.strip() == "1 automation: 0 created, 0 updated, 1 unchanged"
    assert history_rows() == rows


def test_summary_counts_created_and_updated(people, tmp_path):
    run("load_automations", str(EXAMPLE))
    document = parse_catalog(EXAMPLE.read_text())
    document["automations"][0]["mode"] = "suggest"
    second = {**document["automations"][0], "slug": "sales-triage"}
    document["automations"].append(second)
    path = tmp_path / "two.json"
    path.write_text(json.dumps(document))

    out, _ = run("load_automations", str(path))

    assert out.strip() == "2 automations: 1 created, 1 updated, 0 unchanged"


def test_history_says_loaded_from_the_file_as_given(people):
    run("load_automations", str(EXAMPLE))

    reasons = {row.history_change_reason for row in Automation.history.all()}
    assert reasons == {f"loaded from {EXAMPLE}"}


def test_reason_and_user_options_are_recorded(people):
    run("load_automations", str(EXAMPLE), "--reason", "Quarterly review", "--user", "rosa")

    for model in HISTORY_MODELS:
        row = model.history.first()
        assert row.history_change_reason == "Quarterly review"
        assert row.history_user == people["rosa"]


def test_dash_reads_standard_input(people):
    out, _ = run("load_automations", "-", stdin=io.StringIO(EXAMPLE.read_text()))

    assert out.strip() == "1 automation: 1 created, 0 updated, 0 unchanged"
    assert Automation.objects.get().slug == "support-triage"
    assert Automation.history.first().history_change_reason == "loaded from -"


def test_json_file_loads(people):
    out, _ = run("load_automations", str(FIXTURES / "rules_and_json.json"))

    assert out.strip() == "1 automation: 1 created, 0 updated, 0 unchanged"
    assert Automation.objects.get().slug == "refund-router"


def test_invalid_file_prints_every_problem_exits_1_and_changes_nothing(people, capsys, monkeypatch):
    # run_from_argv closes connections when done, which would end the test's transaction.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    path = FIXTURES / "invalid_several.yaml"
    utility = ManagementUtility(["manage.py", "load_automations", str(path)])

    with pytest.raises(SystemExit) as exited:
        utility.execute()

    assert exited.value.code == 1
    err = capsys.readouterr().err
    for line in (
        "automations[1].colour: unknown key",
        "automations[1].risk_tier: must be one of low, medium, high",
        "automations[1].intents[0].action.url: not a URL",
        "automations[1].do_not_automate[0].matches: not a valid regular expression",
        'automations[1].owner: no user named "nobody"',
        "automations[1].decision.model: required when provider is openai",
    ):
        assert line in err
    # The valid automation before the broken one is not written either.
    assert Automation.objects.count() == 0
    assert history_rows() == 0


def test_invalid_file_raises_command_error_listing_problems_on_stderr(people):
    err = io.StringIO()
    with pytest.raises(CommandError, match="8 problems; nothing was changed"):
        call_command("load_automations", str(FIXTURES / "invalid_several.yaml"), stderr=err)

    assert len(err.getvalue().strip().splitlines()) == 8


def test_syntax_error_exits_with_status_1_from_the_shell(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("automations:\n  - slug: [unclosed\n")

    result = subprocess.run(
        [sys.executable, "manage.py", "load_automations", str(path)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "line 3, column 1:" in result.stderr


def test_unreadable_file_and_unknown_user_fail(people, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run("load_automations", str(tmp_path / "missing.yaml"))
    with pytest.raises(CommandError, match='no user named "ghost"'):
        run("load_automations", str(EXAMPLE), "--user", "ghost")
    assert Automation.objects.count() == 0


def test_dump_prints_yaml_by_default_and_json_on_request(people):
    run("load_automations", str(EXAMPLE))

    yaml_out, _ = run("dump_automations")
    json_out, _ = run("dump_automations", "--format", "json")

    assert yaml_out.startswith("automations:\n  - slug: support-triage\n")
    assert parse_catalog(yaml_out) == dump_catalog()
    assert json.loads(json_out) == dump_catalog()


def test_dump_then_load_through_the_commands_changes_nothing(people, tmp_path):
    run("load_automations", str(EXAMPLE))
    run("load_automations", str(FIXTURES / "rules_and_json.json"))
    rows = history_rows()
    dumped = tmp_path / "catalog.yaml"
    dumped.write_text(run("dump_automations")[0])

    out, _ = run("load_automations", str(dumped))

    assert out.strip() == "2 automations: 0 created, 0 updated, 2 unchanged"
    assert history_rows() == rows
