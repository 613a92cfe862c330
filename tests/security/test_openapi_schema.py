"""The served OpenAPI schema of the event body says exactly what the parser accepts.

Schemathesis' positive_data_acceptance (ST202) and negative_data_rejection (ST201)
fail when the two disagree. The body is judged here by jsonschema_rs, the validator
schemathesis itself judges generated data with (ECMA-262 patterns).
"""

import json

import jsonschema_rs
import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automations.event_input import (
    BLANK_CHARACTERS,
    MAX_DEPTH,
    EventInputError,
    event_input_parse,
)

EVENTS_PATH = "/api/v1/automations/{slug}/events"


@pytest.fixture(scope="module")
def openapi(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        return Client().get("/api/v1/openapi.json").json()


@pytest.fixture(scope="module")
def body_schema(openapi) -> dict:
    operation = openapi["paths"][EVENTS_PATH]["post"]
    return operation["requestBody"]["content"]["application/json"]["schema"]


@pytest.fixture(scope="module")
def validator(openapi, body_schema):
    # The schema's $refs point into the OpenAPI document's components.
    document = {**body_schema, "components": openapi["components"]}
    return jsonschema_rs.Draft202012Validator(
        document, pattern_options=jsonschema_rs.FancyRegexOptions()
    )


def parser_accepts(body) -> bool:
    try:
        event_input_parse(json.dumps(body).encode())
    except EventInputError:
        return False
    return True


def nested(levels: int) -> dict:
    """A body `levels` deep (the body object is level 1, the payload level 2)."""
    inner: dict = {"leaf": "x"}
    for _ in range(levels - 2):
        inner = {"a": inner}
    return {"idempotency_key": "k", "payload": inner}


def test_blank_characters_are_the_ones_python_calls_whitespace():
    everything = map(chr, range(0x110000))

    assert set(BLANK_CHARACTERS) == {char for char in everything if char.isspace()}


def event(**fields) -> dict:
    return {"idempotency_key": "k", "payload": {}, **fields}


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        pytest.param(event(), True, id="minimal"),
        pytest.param(event(idempotency_key=" "), False, id="key-space"),
        pytest.param(event(idempotency_key="\t\r\n"), False, id="key-ascii-blank"),
        pytest.param(event(idempotency_key="\u3000\u2028\x85\x1c"), False, id="key-unicode-blank"),
        pytest.param(event(idempotency_key=" k "), True, id="key-padded"),
        pytest.param(event(idempotency_key="\ufeff"), True, id="key-bom-is-not-blank"),
        pytest.param(event(idempotency_key="k\x00"), False, id="key-nul"),
        pytest.param(event(idempotency_key="k" * 200), True, id="key-200"),
        pytest.param(event(idempotency_key="k" * 201), False, id="key-201"),
        pytest.param(event(payload={"a\x00": 1}), False, id="payload-nul-key"),
        pytest.param(event(payload={"l": [{"b": "x\x00"}]}), False, id="payload-deep-nul-value"),
        pytest.param(event(payload={"l": [{"b\x00": "x"}]}), False, id="payload-deep-nul-key"),
        pytest.param(event(payload={" ": ""}), True, id="payload-blank-key"),
        pytest.param(event(source="z\x00"), False, id="source-nul"),
        pytest.param(event(source=None), True, id="source-null"),
        pytest.param(event(segment="ab\n"), False, id="segment-newline"),
        pytest.param(event(segment=""), True, id="segment-empty"),
        pytest.param(event(x=1), False, id="unknown-field"),
    ],
)
def test_schema_and_parser_agree(validator, body, accepted):
    assert parser_accepts(body) is accepted
    assert validator.is_valid(body) is accepted


def test_schema_states_the_nesting_limit(body_schema):
    assert parser_accepts(nested(MAX_DEPTH))
    assert not parser_accepts(nested(MAX_DEPTH + 1))

    # A definition per level makes schema tools expand it beyond use: stated, not encoded.
    assert body_schema["x-max-depth"] == MAX_DEPTH
    assert f"at most {MAX_DEPTH} levels" in body_schema["properties"]["payload"]["description"]


# Letters of every kind the rules single out: NUL, each sort of whitespace, the segment
# alphabet and what is just outside it, a character outside the BMP.
ALPHABET = st.sampled_from(
    ["a", "z", "0", "9", "-", "_", "A", "é", "\x00", "\ufeff", "\U0001f600", *BLANK_CHARACTERS]
)
TEXT = st.text(ALPHABET, max_size=5)
LONG_TEXT = st.integers(95, 205).flatmap(lambda n: st.text(ALPHABET, min_size=n, max_size=n))
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)
BODIES = (
    st.fixed_dictionaries(
        {},
        optional={
            "idempotency_key": TEXT | LONG_TEXT | JSON,
            "segment": st.text(st.sampled_from("ab-9A\n\x00 "), max_size=4) | LONG_TEXT | JSON,
            "source": TEXT | LONG_TEXT | JSON,
            "payload": st.dictionaries(TEXT, JSON, max_size=3) | JSON,
            "priority": JSON,
        },
    )
    | JSON
)


@settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(body=BODIES)
def test_schema_accepts_exactly_what_the_parser_accepts(validator, body):
    assert validator.is_valid(body) is parser_accepts(body), repr(body)
