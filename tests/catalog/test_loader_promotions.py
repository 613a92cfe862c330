"""A catalog file promotes to autonomous only what set_mode would (contracts section 6)."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.loader import CatalogInvalid, dump_catalog, load_catalog
from catalog.models import Automation
from tests.catalog.console_support import (
    READY,
    automation_fixture,  # noqa: F401 (fixture "automation")
    make_ready,
    people_fixture,  # noqa: F401 (fixture "people")
    reviewed,
    stored,
    support_triage,
)


def document(**overrides) -> dict:
    return {"automations": [support_triage(**overrides)]}


def test_a_file_may_not_promote_without_the_evidence_and_changes_nothing(automation):
    before = stored()

    with pytest.raises(CatalogInvalid) as refused:
        load_catalog(document(mode="autonomous"), source="v2.yaml")

    lines = refused.value.errors
    assert lines[0] == (
        "automations[0].mode: promotion to autonomous refused: "
        "evidence: 0 reviewed cases in the last 14 days, 200 needed"
    )
    assert all(line.startswith("automations[0].mode: promotion to autonomous") for line in lines)
    assert any("readiness: an owner on call" in line for line in lines)
    assert stored() == before


def test_a_segment_promoted_in_the_file_is_checked_on_its_own_evidence(automation, people):
    make_ready(automation, people["olivia"])
    reviewed(automation, 200)  # none of them in the enterprise segment
    segments = [{"key": "enterprise", "mode": "autonomous"}, {"key": "trial"}]

    with pytest.raises(CatalogInvalid) as refused:
        load_catalog(document(segments=segments, **READY), source="v2.yaml")

    assert refused.value.errors == [
        "automations[0].segments[0].mode: promotion to autonomous refused: "
        "evidence: 0 reviewed cases in the last 14 days, 200 needed",
        "automations[0].segments[0].mode: promotion to autonomous refused: "
        "evidence: the override rate's upper bound is 100.0% (0 of 0), at most 5.0% needed",
    ]


def test_with_its_evidence_and_checklist_the_file_promotes(automation, people):
    make_ready(automation, people["olivia"])
    reviewed(automation, 200)

    load_catalog(document(mode="autonomous", **READY), source="v2.yaml")

    assert Automation.objects.get().mode == "autonomous"


def test_a_new_automation_cannot_start_autonomous(people):
    with pytest.raises(CatalogInvalid) as refused:
        load_catalog(document(mode="autonomous", **READY), source="new.yaml")

    [line] = refused.value.errors
    assert line.startswith("automations[0].mode: promotion to autonomous refused: a new automation")
    assert not Automation.objects.exists()


def test_an_already_autonomous_automation_loads_its_own_dump_again(automation):
    Automation.objects.filter(pk=automation.pk).update(mode="autonomous")

    report = load_catalog(dump_catalog(), source="dump.yaml")

    assert report.unchanged == ["support-triage"]


def load_command(document: dict, *args, stderr=None) -> str:
    out = io.StringIO()
    text = io.StringIO(json.dumps(document))
    call_command("load_automations", "-", *args, stdin=text, stdout=out, stderr=stderr)
    return out.getvalue()


def test_an_admin_overrides_on_the_command_line_and_the_history_says_so(automation, people):
    load_command(
        document(mode="autonomous"), "--reason", "pilot agreed", "--user", "ada",
        "--override-evidence",
    )  # fmt: skip

    automation = Automation.objects.get()
    history = automation.history.first()
    assert automation.mode == "autonomous"
    assert history.history_change_reason == "pilot agreed (evidence overridden)"
    assert history.history_user == people["ada"]


def test_an_owner_may_not_override_and_a_plain_load_is_refused(automation):
    err = io.StringIO()

    for args in (["--user", "olivia", "--override-evidence"], []):
        with pytest.raises(CommandError, match="nothing was changed"):
            load_command(document(mode="autonomous"), *args, stderr=err)

    assert "--override-evidence: only an admin may promote without the evidence" in err.getvalue()
    assert Automation.objects.get().mode == "approve"
