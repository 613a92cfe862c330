"""Parse and validate one event body (API request or JSONL line). Pure: no database here.

The checks guarantee that whatever passes can be stored in PostgreSQL jsonb and
hashed: no NUL characters, no unpaired surrogates, no infinite numbers, and at
most MAX_DEPTH levels of nesting (the body object itself is level 1).
event_body_json_schema() states the same rules as JSON Schema, for the OpenAPI schema.
"""

import json
import math
import re
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 32
MAX_KEY_LENGTH = 200
MAX_SEGMENT_LENGTH = 100
MAX_SOURCE_LENGTH = 100
SEGMENT_RE = re.compile(r"[a-z0-9-]*")
# Whitespace as str.isspace() has it: an idempotency key made of these alone is blank.
BLANK_CHARACTERS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
FIELDS = ("idempotency_key", "segment", "source", "payload")

INVALID_JSON = "invalid_json"
VALIDATION_ERROR = "validation_error"


@dataclass(frozen=True)
class InputError:
    code: str  # INVALID_JSON (HTTP 400) or VALIDATION_ERROR (HTTP 422)
    message: str
    field: str | None = None


class EventInputError(Exception):
    """The body was refused; `errors` lists every problem found, the first one is the headline."""

    def __init__(self, errors: list[InputError]):
        super().__init__(errors[0].message)
        self.errors = errors

    @property
    def first(self) -> InputError:
        return self.errors[0]


@dataclass(frozen=True)
class EventInput:
    idempotency_key: str
    payload: dict
    segment: str = ""
    source: str = ""


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def event_body_parse(raw: bytes) -> Any:
    """Decode strict UTF-8 JSON; raise EventInputError (invalid_json, or too deep) otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventInputError(
            [InputError(INVALID_JSON, f"the body is not valid UTF-8 (byte {exc.start})")]
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        # The parser gives up long before memory does; the nesting limit says why.
        raise EventInputError(
            [InputError(VALIDATION_ERROR, f"the body is nested deeper than {MAX_DEPTH} levels")]
        ) from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers over 4300 digits
        raise EventInputError([InputError(INVALID_JSON, f"the body is not JSON: {exc}")]) from None


def event_body_validate(body: Any) -> EventInput:
    """Check the fields of a parsed body; return the clean values or raise EventInputError."""
    if not isinstance(body, dict):
        raise EventInputError([InputError(VALIDATION_ERROR, "the body must be a JSON object")])
    errors = [
        InputError(VALIDATION_ERROR, "unknown field", _path("", key))
        for key in body
        if key not in FIELDS
    ]
    key = body.get("idempotency_key")
    if "idempotency_key" not in body:
        errors.append(_field_error("idempotency_key", "this field is required"))
    elif not isinstance(key, str):
        errors.append(_field_error("idempotency_key", "must be a string"))
    elif not key.strip(BLANK_CHARACTERS):
        errors.append(_field_error("idempotency_key", "must not be empty"))
    elif len(key) > MAX_KEY_LENGTH:
        errors.append(_field_error("idempotency_key", f"at most {MAX_KEY_LENGTH} characters"))
    segment = body.get("segment")
    if segment is not None:
        if not isinstance(segment, str):
            errors.append(_field_error("segment", "must be a string"))
        elif len(segment) > MAX_SEGMENT_LENGTH:
            errors.append(_field_error("segment", f"at most {MAX_SEGMENT_LENGTH} characters"))
        elif not SEGMENT_RE.fullmatch(segment):
            errors.append(_field_error("segment", "use lowercase letters, digits and hyphens"))
    source = body.get("source")
    if source is not None:
        if not isinstance(source, str):
            errors.append(_field_error("source", "must be a string"))
        elif len(source) > MAX_SOURCE_LENGTH:
            errors.append(_field_error("source", f"at most {MAX_SOURCE_LENGTH} characters"))
    if "payload" not in body:
        errors.append(_field_error("payload", "this field is required"))
    elif not isinstance(body["payload"], dict):
        errors.append(_field_error("payload", "must be a JSON object"))
    errors.extend(_storable_errors(body, "", 1))
    if errors:
        raise EventInputError(errors)
    return EventInput(
        idempotency_key=key, payload=body["payload"], segment=segment or "", source=source or ""
    )


def event_input_parse(raw: bytes) -> EventInput:
    """Parse and validate one raw body: the entry point for the API and the ingest command."""
    return event_body_validate(event_body_parse(raw))


def _field_error(field: str | None, message: str) -> InputError:
    return InputError(VALIDATION_ERROR, message, field)


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    # A path must itself be printable and storable: escape NUL and unpaired surrogates.
    key = key.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
    return f"{parent}.{key}" if parent else key


def _string_problem(value: str) -> str | None:
    if "\x00" in value:
        return "must not contain NUL characters (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain unpaired surrogates (\\ud800-\\udfff)"
    return None


def _storable_errors(value: Any, path: str, depth: int) -> list[InputError]:
    """Problems that PostgreSQL jsonb or hashing would hit, found depth first with their paths."""
    if isinstance(value, str):
        problem = _string_problem(value)
        return [_field_error(path or None, problem)] if problem else []
    if isinstance(value, float) and not math.isfinite(value):
        return [_field_error(path or None, "number out of range")]
    if not isinstance(value, dict | list):
        return []
    if depth > MAX_DEPTH:
        return [_field_error(path or None, f"nested deeper than {MAX_DEPTH} levels")]
    errors = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        child = _path(path, key)
        if isinstance(key, str) and (problem := _string_problem(key)):
            errors.append(_field_error(child, f"key {problem}"))
        errors.extend(_storable_errors(item, child, depth + 1))
    return errors


# JSON Schema of the body, for the OpenAPI schema. Patterns are ECMA-262, as JSON Schema
# reads them: `$` is the end of the string (Python's `re` would let a final newline pass).
NO_NUL_PATTERN = "^[^\\u0000]*$"
_BLANK_CLASS = "".join(f"\\u{ord(char):04x}" for char in BLANK_CHARACTERS)
KEY_PATTERN = f"^[^\\u0000]*[^\\u0000{_BLANK_CLASS}][^\\u0000]*$"
SEGMENT_PATTERN = "^[a-z0-9-]*$"
EVENT_VALUE = "EventValue"
STRINGS_NOTE = (
    "Strings here and in `payload`, and the keys of its objects, must not contain NUL "
    "(\\u0000, which PostgreSQL cannot store) or unpaired surrogates (\\ud800-\\udfff)."
)
DEPTH_NOTE = (
    f"Objects and arrays may nest at most {MAX_DEPTH} levels deep, counting the body "
    "itself (the payload is level 2); deeper is a 422 naming the first too-deep one."
)


def event_body_json_schema(*, refs: str) -> tuple[dict, dict[str, dict]]:
    """The body's JSON Schema and the definitions it names under `refs`, as the parser checks it.

    All but the nesting limit is in the schema's keywords; that one is in the
    descriptions and `x-max-depth`, because a definition per level makes schema
    tools (schemathesis among them) expand thousands of combinations.
    """
    no_nul = {"type": "string", "pattern": NO_NUL_PATTERN}
    body = {
        "type": "object",
        "required": ["idempotency_key", "payload"],
        "additionalProperties": False,
        "description": f"{STRINGS_NOTE} Numbers written with a fraction or an exponent must "
        "fit a double (1e400 is refused); integers may have up to 4300 digits. " + DEPTH_NOTE,
        "x-max-depth": MAX_DEPTH,
        "properties": {
            "idempotency_key": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_KEY_LENGTH,
                "pattern": KEY_PATTERN,
                "description": "Unique per automation; a replay returns the first run. "
                "Not only whitespace.",
            },
            "segment": {
                "type": ["string", "null"],
                "maxLength": MAX_SEGMENT_LENGTH,
                "pattern": SEGMENT_PATTERN,
                "description": "Segment key for per-segment policy.",
            },
            "source": {
                "type": ["string", "null"],
                "maxLength": MAX_SOURCE_LENGTH,
                "pattern": NO_NUL_PATTERN,
                "description": "The system the event comes from.",
            },
            "payload": {
                **_object_schema(refs=refs),
                "description": f"Any JSON object. {DEPTH_NOTE}",
            },
        },
        "example": {
            "idempotency_key": "ticket-4711",
            "segment": "enterprise",
            "source": "zendesk",
            "payload": {"subject": "Invoice", "body": "Where is my invoice?"},
        },
    }
    value = {
        "anyOf": [
            no_nul,
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": {"$ref": refs + EVENT_VALUE}},
            _object_schema(refs=refs),
        ],
        "description": f"Any JSON value whose strings and keys have no NUL. {DEPTH_NOTE}",
    }
    return body, {EVENT_VALUE: value}


def _object_schema(*, refs: str) -> dict:
    return {
        "type": "object",
        "propertyNames": {"pattern": NO_NUL_PATTERN},
        "additionalProperties": {"$ref": refs + EVENT_VALUE},
    }
