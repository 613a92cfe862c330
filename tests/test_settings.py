"""The settings helpers fail loudly on a bad environment value instead of guessing."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from reviewapp.settings import envbool, envint


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "tru"])
def test_bad_boolean_value_raises(monkeypatch, value):
    monkeypatch.setenv("HANDRAIL_TEST_FLAG", value)

    with pytest.raises(ImproperlyConfigured, match="HANDRAIL_TEST_FLAG"):
        envbool("HANDRAIL_TEST_FLAG")


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("yes", True), ("OFF", False), ("0", False)]
)
def test_boolean_values_are_read(monkeypatch, value, expected):
    monkeypatch.setenv("HANDRAIL_TEST_FLAG", value)

    assert envbool("HANDRAIL_TEST_FLAG", default=not expected) is expected


def test_unset_or_empty_boolean_takes_the_default(monkeypatch):
    monkeypatch.setenv("HANDRAIL_TEST_FLAG", " ")

    assert envbool("HANDRAIL_TEST_FLAG", default=True) is True


@pytest.mark.parametrize("value", ["ten", "1.5", "0x10"])
def test_non_integer_value_raises(monkeypatch, value):
    monkeypatch.setenv("HANDRAIL_TEST_NUMBER", value)

    with pytest.raises(ImproperlyConfigured, match="must be an integer"):
        envint("HANDRAIL_TEST_NUMBER", 5)


def test_integer_below_minimum_raises(monkeypatch):
    monkeypatch.setenv("HANDRAIL_TEST_NUMBER", "0")

    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        envint("HANDRAIL_TEST_NUMBER", 5, minimum=1)


def test_integer_value_is_read(monkeypatch):
    monkeypatch.setenv("HANDRAIL_TEST_NUMBER", "42")

    assert envint("HANDRAIL_TEST_NUMBER", 5) == 42
