"""The kill switches and modes, stated once (catalog.policy), read from memory and afresh."""

import pytest

from catalog.policy import Policy, policy_now, policy_of
from tests.factories import AutomationFactory, SegmentPolicyFactory


def policy(**overrides) -> Policy:
    values = {"segment": "smb", "automation_enabled": True, "automation_mode": "autonomous"}
    return Policy(**(values | overrides))


def test_segment_policy_mode_overrides_the_automation_mode():
    assert policy(segment_enabled=True, segment_mode="approve").mode == "approve"
    assert policy(automation_mode="approve", segment_enabled=True, segment_mode="shadow").mode == (
        "shadow"
    )


@pytest.mark.parametrize("segment_enabled", [None, True])
def test_without_a_segment_mode_the_automation_mode_applies(segment_enabled):
    assert policy(automation_mode="suggest", segment_enabled=segment_enabled).mode == "suggest"


@pytest.mark.parametrize(
    ("overrides", "acts", "switched_off", "why_not"),
    [
        ({}, True, "", ""),
        ({"automation_mode": "approve"}, True, "", ""),
        (
            {"automation_enabled": False},
            False,
            "the automation is switched off",
            "the automation switched off",
        ),
        (
            {"segment_enabled": False},
            False,
            "segment smb is switched off",
            "segment smb switched off",
        ),
        # The automation's switch wins over a segment that is on.
        (
            {"automation_enabled": False, "segment_enabled": True},
            False,
            "the automation is switched off",
            "the automation switched off",
        ),
        ({"automation_mode": "shadow"}, False, "", "the automation switched to shadow mode"),
        (
            {"segment_enabled": True, "segment_mode": "suggest"},
            False,
            "",
            "segment smb switched to suggest mode",
        ),
        (
            {"automation_mode": "shadow", "segment_enabled": True, "segment_mode": "autonomous"},
            True,
            "",
            "",
        ),
    ],
)
def test_a_run_acts_only_switched_on_in_an_acting_mode(overrides, acts, switched_off, why_not):
    stated = policy(**overrides)

    assert (stated.acts, stated.switched_off, stated.why_not()) == (acts, switched_off, why_not)


@pytest.mark.django_db
@pytest.mark.parametrize("segment", ["smb", "enterprise", ""])
def test_the_fresh_read_and_the_loaded_configuration_agree(segment):
    automation = AutomationFactory(mode="autonomous")
    SegmentPolicyFactory(automation=automation, key="smb", enabled=False, mode="")
    SegmentPolicyFactory(automation=automation, key="enterprise", enabled=True, mode="approve")

    assert policy_now(automation_id=automation.pk, segment=segment) == policy_of(
        automation, segment
    )


@pytest.mark.django_db
def test_the_fresh_read_sees_a_switch_flipped_after_the_automation_was_loaded():
    automation = AutomationFactory(mode="autonomous")
    loaded = policy_of(automation, "smb")
    SegmentPolicyFactory(automation=automation, key="smb", enabled=False)

    assert loaded.acts
    assert policy_now(automation_id=automation.pk, segment="smb").switched_off == (
        "segment smb is switched off"
    )
