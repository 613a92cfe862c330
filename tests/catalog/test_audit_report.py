"""Audit reports: Wilson intervals and the weighted overall rate against hand-computed values."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from catalog.audit.arguments import sample_arguments
from catalog.audit.sampling import sample_draw
from catalog.audit.verdicts import audit_verdict_record
from catalog.stats import wilson_interval
from tests.catalog.audit_support import INSIDE, WINDOW, runs_of
from tests.factories import AutomationFactory

# Wilson 95% intervals (z = 1.96) worked by hand from
# (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n):
#   0/10: centre 0.19208, spread 0.19208, denominator 1.38416 -> (0, 0.277540)
#   1/10: centre 0.29208, spread 0.267337 -> (0.017876, 0.404156)
#   5/10: centre 0.69208, spread 0.364602 -> (0.236590, 0.763411)
#  10/10: -> (0.722460, 1)
HAND = {
    (0, 10): (0.0, 0.277540),
    (1, 10): (0.017876, 0.404156),
    (5, 10): (0.236590, 0.763411),
    (10, 10): (0.722460, 1.0),
    (0, 0): (0.0, 1.0),
}


@pytest.mark.parametrize(("successes", "n"), list(HAND))
def test_wilson_interval_matches_the_hand_computed_bounds(successes, n):
    low, high = wilson_interval(successes, n)
    assert (low, high) == pytest.approx(HAND[(successes, n)], abs=5e-6)


def test_wilson_interval_refuses_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


@pytest.fixture
def reviewed_sample(db, compliance):
    """Strata of 60 autonomous, 30 approved and 10 blocked runs, 10 items each:
    autonomous 10 reviewed with 1 issue, approved 10 with 5, blocked none reviewed."""
    automation = AutomationFactory()
    runs_of(automation, "autonomous", 60, at=INSIDE)
    runs_of(automation, "approved", 30, at=INSIDE)
    runs_of(automation, "blocked", 10, at=INSIDE)
    arguments = sample_arguments(
        name="November", size="25", min_per_stratum="10", stratify="outcome", seed="3", **WINDOW
    )
    sample = sample_draw(arguments=arguments, by=compliance)
    issues = {"autonomous": 1, "approved": 5}
    for outcome, wanted in issues.items():
        for n, item in enumerate(sample.items.filter(outcome=outcome).order_by("position")):
            audit_verdict_record(
                item_id=item.pk,
                verdict="issue" if n < wanted else "compliant",
                category="policy" if n < wanted else "",
                by=compliance,
            )
    return sample


def report(sample, fmt: str) -> str:
    out = io.StringIO()
    call_command("audit_report", str(sample.pk), "--format", fmt, stdout=out)
    return out.getvalue()


def test_the_json_report_has_each_stratum_and_the_population_weighted_overall(reviewed_sample):
    data = json.loads(report(reviewed_sample, "json"))

    assert (data["sample_id"], data["name"], data["seed"]) == (reviewed_sample.pk, "November", 3)
    rows = {row["stratum"]["outcome"]: row for row in data["strata"]}
    assert list(rows) == ["autonomous", "approved", "blocked"]
    assert {k: rows["autonomous"][k] for k in ("population", "sampled", "reviewed", "issues")} == {
        "population": 60,
        "sampled": 10,
        "reviewed": 10,
        "issues": 1,
    }
    assert rows["autonomous"]["issue_rate"] == pytest.approx(0.1)
    assert (rows["autonomous"]["wilson_low"], rows["autonomous"]["wilson_high"]) == pytest.approx(
        HAND[(1, 10)], abs=5e-6
    )
    assert rows["approved"]["issue_rate"] == pytest.approx(0.5)
    assert (rows["approved"]["wilson_low"], rows["approved"]["wilson_high"]) == pytest.approx(
        HAND[(5, 10)], abs=5e-6
    )
    assert (rows["blocked"]["reviewed"], rows["blocked"]["issue_rate"]) == (0, None)
    assert (rows["blocked"]["wilson_low"], rows["blocked"]["wilson_high"]) == (0.0, 1.0)
    overall = data["overall"]
    assert {k: overall[k] for k in ("population", "sampled", "reviewed", "issues")} == {
        "population": 100,
        "sampled": 30,
        "reviewed": 20,
        "issues": 6,
    }
    # (60 * 0.1 + 30 * 0.5) / 90 over the reviewed strata; the bounds weight every
    # stratum's Wilson bounds by population, the unreviewed one as [0, 1]:
    # (60 * 0.017876 + 30 * 0.236590 + 10 * 0) / 100 and (60 * 0.404156 + 30 * 0.763411 + 10) / 100.
    assert overall["issue_rate"] == pytest.approx(21 / 90)
    assert overall["wilson_low"] == pytest.approx(0.081702, abs=1e-6)
    assert overall["wilson_high"] == pytest.approx(0.571517, abs=1e-6)


def test_the_csv_report_has_a_header_a_row_per_stratum_and_the_overall_row(reviewed_sample):
    rows = list(csv.reader(io.StringIO(report(reviewed_sample, "csv"))))

    assert rows[0] == [
        "stratum",
        "outcome",
        "population",
        "sampled",
        "reviewed",
        "issues",
        "issue_rate",
        "wilson_low",
        "wilson_high",
    ]
    assert [row[:6] for row in rows[1:]] == [
        ["outcome=autonomous", "autonomous", "60", "10", "10", "1"],
        ["outcome=approved", "approved", "30", "10", "10", "5"],
        ["outcome=blocked", "blocked", "10", "10", "0", "0"],
        ["overall", "", "100", "30", "20", "6"],
    ]
    assert rows[1][6:] == ["0.100000", "0.017876", "0.404156"]
    assert rows[3][6:] == ["", "0.000000", "1.000000"]
    assert [float(value) for value in rows[4][6:]] == pytest.approx(
        [21 / 90, 0.081702, 0.571517], abs=1e-6
    )


def test_an_unknown_sample_is_a_clear_error(db):
    with pytest.raises(CommandError, match="no audit sample 12345"):
        report(type("S", (), {"pk": 12345}), "csv")
