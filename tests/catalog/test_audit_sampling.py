"""Audit samples (contracts section 7): outcomes, strata, allocation, reproducible draws."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from catalog.audit.arguments import SampleInvalid, sample_arguments
from catalog.audit.outcomes import finished_runs
from catalog.audit.sampling import allocate, draw_hash, sample_draw, sample_rederive
from catalog.models import AuditSample, AuditSampleItem
from tests.catalog.audit_support import INSIDE, WINDOW, day, runs_of
from tests.factories import AutomationFactory, UserFactory

pytestmark = pytest.mark.django_db


def draw(*args: str) -> dict:
    """Run audit_sample with --json and return what it printed."""
    out = io.StringIO()
    call_command(
        "audit_sample", "--since", WINDOW["since"], "--until", WINDOW["until"], *args, "--json",
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    return json.loads(out.getvalue())


def run_ids(result: dict) -> list[str]:
    return [item["run_id"] for item in result["items"]]


@pytest.fixture
def support():
    automation = AutomationFactory(slug="support-triage")
    runs_of(automation, "autonomous", 60, segment="enterprise", at=INSIDE)
    runs_of(automation, "autonomous", 20, segment="trial", at=INSIDE)
    runs_of(automation, "approved", 30, segment="enterprise", at=INSIDE)
    runs_of(automation, "edited", 6, segment="enterprise", at=INSIDE)
    runs_of(automation, "rejected", 3, segment="trial", at=INSIDE)
    runs_of(automation, "blocked", 1, segment="", at=INSIDE)
    return automation


# Outcomes.


def test_each_finished_run_gets_the_outcome_section_7_names_and_the_rest_none():
    automation = AutomationFactory()
    made = {
        outcome: runs_of(automation, outcome, 1)[0].pk
        for outcome in (
            "autonomous",
            "approved",
            "edited",
            "rejected",
            "blocked",
            "shadow",
            "suggest_used",
            "awaiting",
            "in_flight",
        )
    }

    outcomes = dict(finished_runs().values_list("pk", "outcome"))

    assert {outcome: outcomes.get(pk) for outcome, pk in made.items()} == {
        "autonomous": "autonomous",
        "approved": "approved",
        "edited": "edited",
        "rejected": "rejected",
        "blocked": "blocked",
        "shadow": None,
        "suggest_used": None,
        "awaiting": None,
        "in_flight": None,
    }


# Allocation.


def test_every_stratum_gets_the_minimum_and_the_rest_goes_by_population():
    # Minimums 5, 5, 5 and all 2 of the tiny stratum; the other 13 split 100:50:10 as
    # 8.125, 4.0625, 0.8125: floors 8, 4, 0 and the last one to the largest remainder.
    assert allocate(populations=[100, 50, 10, 2], total=30, minimum=5) == [13, 9, 6, 2]


def test_a_stratum_too_small_for_its_share_is_taken_whole_and_the_others_share_the_rest():
    assert allocate(populations=[100, 6], total=50, minimum=5) == [44, 6]


def test_minimums_win_over_a_smaller_size():
    assert allocate(populations=[40, 30, 20, 3], total=8, minimum=5) == [5, 5, 5, 3]


def test_a_size_past_the_population_takes_everything():
    assert allocate(populations=[7, 3], total=10, minimum=5) == [7, 3]


def test_allocation_always_adds_up_to_the_size_and_never_past_a_stratum():
    populations = [97, 13, 5, 1, 250, 40]
    for total in range(sum(min(5, p) for p in populations), sum(populations) + 1, 7):
        allocation = allocate(populations=populations, total=total, minimum=5)
        assert sum(allocation) == total
        assert all(min(5, p) <= a <= p for a, p in zip(allocation, populations, strict=True))


# Draws.


def test_the_json_has_the_contracts_shape_with_outcome_by_segment_strata(support):
    result = draw("--name", "November", "--size", "40", "--seed", "42")

    assert set(result) == {"sample_id", "seed", "strata", "items"}
    assert result["seed"] == 42
    assert [(s["stratum"], s["population"], s["sampled"]) for s in result["strata"]] == [
        ({"outcome": "autonomous", "segment": "enterprise"}, 60, 13),
        ({"outcome": "autonomous", "segment": "trial"}, 20, 8),
        ({"outcome": "approved", "segment": "enterprise"}, 30, 9),
        ({"outcome": "edited", "segment": "enterprise"}, 6, 6),
        ({"outcome": "rejected", "segment": "trial"}, 3, 3),
        ({"outcome": "blocked", "segment": ""}, 1, 1),
    ]
    # The minimums (5+5+5+5+3+1 = 24), then 16 in proportion 60:20:30:6 (the strata with
    # runs left): 8.28, 2.76, 4.14, 0.83, so 8, 2, 4, 0 and one more each to the two
    # largest remainders (0.83 and 0.76).
    assert len(result["items"]) == 40
    sample = AuditSample.objects.get(pk=result["sample_id"])
    for item in result["items"]:
        stored = AuditSampleItem.objects.get(pk=item["item_id"])
        assert (str(stored.run_id), stored.sample, stored.stratum.key) == (
            item["run_id"],
            sample,
            item["stratum"],
        )
        assert set(item) == {"item_id", "run_id", "stratum"}


def test_the_same_arguments_and_seed_draw_the_same_items(support):
    first = draw("--name", "a", "--size", "30", "--seed", "7")
    again = draw("--name", "a", "--size", "30", "--seed", "7")
    other = draw("--name", "a", "--size", "30", "--seed", "8")

    assert run_ids(first) == run_ids(again)
    assert first["sample_id"] != again["sample_id"]
    assert run_ids(other) != run_ids(first)
    assert [s["sampled"] for s in other["strata"]] == [s["sampled"] for s in first["strata"]]


def test_each_stratum_draws_its_runs_with_the_lowest_hash_of_seed_and_run_id(support):
    result = draw("--name", "a", "--size", "30", "--seed", "s-1")

    pool = finished_runs().filter(automation=support, outcome="autonomous", segment="enterprise")
    expected = sorted(pool.values_list("pk", flat=True), key=lambda pk: draw_hash("s-1", pk))
    stratum = {"outcome": "autonomous", "segment": "enterprise"}
    drawn = [int(i["run_id"]) for i in result["items"] if i["stratum"] == stratum]
    assert drawn == expected[: len(drawn)]
    assert draw_hash("s-1", 5) == __import__("hashlib").sha256(b"s-1:5").digest()


def test_a_sample_can_be_derived_again_from_what_it_kept(support):
    user = UserFactory(username="carla", roles=["compliance"])
    arguments = sample_arguments(name="q", size="25", stratify="outcome", **WINDOW)

    sample = sample_draw(arguments=arguments, by=user)

    items = list(sample.items.order_by("position").values_list("run_id", flat=True))
    assert sample_rederive(sample=sample) == items
    assert sample.arguments["seed"] == sample.seed and sample.created_by == user
    assert [s.key for s in sample.strata.order_by("position")] == [
        {"outcome": outcome}
        for outcome in ("autonomous", "approved", "edited", "rejected", "blocked")
    ]


def test_without_a_seed_one_is_chosen_and_printed(support):
    out = io.StringIO()
    call_command("audit_sample", "--name", "n", "--rate", "0.1", *_window(), stdout=out)

    sample = AuditSample.objects.get()
    assert sample.seed and f"seed {sample.seed}" in out.getvalue()
    assert f"--seed {sample.seed} draws it again" in out.getvalue()


def test_a_rate_asks_for_that_share_of_the_population_rounded_up(support):
    result = draw("--name", "n", "--rate", "0.301", "--min-per-stratum", "0", "--seed", "1")

    assert len(result["items"]) == 37  # ceil(0.301 * 120 = 36.12)


def test_only_runs_created_inside_the_half_open_window_are_drawn():
    automation = AutomationFactory()
    inside = runs_of(automation, "approved", 2, at=day(1))
    runs_of(automation, "approved", 2, at=day(8))  # `until` itself is outside
    runs_of(automation, "approved", 2, at=day(1) - timedelta(seconds=1))

    result = draw("--name", "n", "--size", "10")

    assert sorted(run_ids(result)) == sorted(str(r.pk) for r in inside)


def test_several_automations_are_strata_of_their_own_and_filters_narrow_the_population():
    support, refunds = AutomationFactory(slug="support"), AutomationFactory(slug="refunds")
    runs_of(support, "approved", 4, segment="enterprise", at=INSIDE)
    runs_of(support, "approved", 4, segment="trial", at=INSIDE)
    runs_of(refunds, "approved", 3, segment="enterprise", at=INSIDE)
    runs_of(refunds, "blocked", 3, segment="enterprise", at=INSIDE)

    both = draw("--name", "n", "--size", "5", "--segment", "enterprise", "--outcome", "approved")
    one = draw("--name", "n", "--size", "5", "--automation", "refunds")

    assert [(s["stratum"], s["population"]) for s in both["strata"]] == [
        ({"automation": "refunds", "outcome": "approved", "segment": "enterprise"}, 3),
        ({"automation": "support", "outcome": "approved", "segment": "enterprise"}, 4),
    ]
    assert [s["stratum"] for s in one["strata"]] == [
        {"outcome": "approved", "segment": "enterprise"},
        {"outcome": "blocked", "segment": "enterprise"},
    ]


def _window() -> list[str]:
    return ["--since", WINDOW["since"], "--until", WINDOW["until"]]


def test_bad_arguments_name_every_problem_and_draw_nothing(support):
    with pytest.raises(CommandError) as caught:
        call_command(
            "audit_sample", "--name", " ", "--since", "2026-13-01", "--until", "yesterday",
            "--size", "5", "--rate", "0.1", "--automation", "nope", "--outcome", "maybe",
            "--stratify", "outcome,colour", "--min-per-stratum", "-1",
        )  # fmt: skip

    message = str(caught.value)
    for expected in (
        "--name: is required",
        "--since: not a date",
        "--until: not a date",
        "--size/--rate: give either a size or a rate",
        "--automation: no automation nope",
        "--outcome: unknown outcome maybe",
        "--stratify: unknown dimension colour",
        "--min-per-stratum: must be 0 or more",
    ):
        assert expected in message
    assert not AuditSample.objects.exists()


def test_an_empty_window_or_a_reviewer_drawing_is_refused(support):
    with pytest.raises(CommandError, match="no finished run matches"):
        call_command("audit_sample", "--name", "n", "--size", "5", "--since", "2020-01-01",
                     "--until", "2020-02-01")  # fmt: skip
    UserFactory(username="ravi", roles=["reviewer"])
    with pytest.raises(CommandError, match="ravi may not draw audit samples"):
        call_command("audit_sample", "--name", "n", "--size", "5", *_window(), "--by", "ravi")
    assert not AuditSample.objects.exists()


def test_until_must_come_after_since():
    with pytest.raises(SampleInvalid) as caught:
        sample_arguments(name="n", size="3", since="2026-11-05", until="2026-11-05")
    assert caught.value.errors == {"until": "must be after since"}


def test_nul_characters_are_refused_not_sent_to_the_database(support):
    with pytest.raises(SampleInvalid) as caught:
        sample_arguments(name="a\x00b", size="3", segments=["x\x00"], **WINDOW)
    assert caught.value.errors == {
        "name": "must not contain NUL characters",
        "segment": "must not contain NUL characters",
    }
