"""The reviewer's edit form, generated from an intent's JSON Schema, as plain functions.

`argument_fields` turns a schema and values into widgets to render;
`arguments_from_form` turns a submitted form back into an arguments object.
Only the parsing a browser forces on us happens here (text to number, JSON
text to a value); whether the result is valid is the schema's question, and
`services.reviews.arguments_errors` answers it, keyed like the fields below.

A round trip must be exact: approving an untouched form must give back the
model's own arguments, or "approve as is" would be recorded as an edit. Hence
the rules for empty inputs and unchecked boxes in `_parse_one`.
"""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FIELD_PREFIX = "arg."
# Strings that may be longer than this (by maxLength, or by their value) get a textarea.
LONG_TEXT = 255

SELECT, CHECKBOX, NUMBER, TEXT, TEXTAREA, JSON_TEXT = (
    "select",
    "checkbox",
    "number",
    "text",
    "textarea",
    "json",
)


@dataclass
class ArgumentField:
    """One property of the arguments object, ready for the template."""

    name: str
    widget: str  # select | checkbox | number | text | textarea | json
    label: str
    required: bool
    description: str = ""
    value: str = ""  # what the widget shows
    checked: bool = False  # checkboxes
    options: list[tuple[str, str]] = field(default_factory=list)  # selects: (value, label)
    blank_option: bool = False  # selects: offer "no value"
    step: str = ""  # number inputs: "1" for integers, "any" otherwise
    minimum: Any = None
    maximum: Any = None
    max_length: int | None = None
    error: str = ""

    @property
    def html_name(self) -> str:
        return FIELD_PREFIX + self.name

    @property
    def html_id(self) -> str:
        return "arg-" + self.name

    @property
    def error_key(self) -> str:
        return "arguments." + self.name


def _primary_type(schema: Mapping) -> str | None:
    """The one JSON type a widget is chosen for; ["string", "null"] counts as "string"."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return kinds[0] if len(kinds) == 1 else None
    return kind


def _enum(schema: Mapping) -> list | None:
    if isinstance(schema.get("enum"), list):
        return schema["enum"]
    if "const" in schema:
        return [schema["const"]]
    return None


def _option_value(value) -> str:
    """A select option's value: strings as themselves, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _widget(schema: Mapping, current) -> str:
    if _enum(schema) is not None:
        return SELECT
    kind = _primary_type(schema)
    if kind == "boolean":
        return CHECKBOX
    if kind in ("integer", "number"):
        return NUMBER
    if kind == "string":
        max_length = schema.get("maxLength")
        long_by_schema = isinstance(max_length, int) and max_length > LONG_TEXT
        # A text input would drop the newlines of a multi-line value.
        long_value = isinstance(current, str) and ("\n" in current or len(current) > LONG_TEXT)
        return TEXTAREA if long_by_schema or long_value else TEXT
    return JSON_TEXT  # objects, arrays, unions: edited as JSON text


def _shown(widget: str, value) -> str:
    """A typed value as its widget shows it."""
    if value is None:
        return ""
    if widget == SELECT:
        return _option_value(value)
    if widget == JSON_TEXT:
        return json.dumps(value, indent=2, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def schema_properties(schema: Mapping) -> dict[str, Mapping]:
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    return properties if isinstance(properties, dict) else {}


def _ordered(properties: dict[str, Mapping], schema: Mapping) -> list[tuple[str, Mapping]]:
    """A stable field order: PostgreSQL's jsonb does not keep the schema's key order,
    but it keeps arrays, so the `required` list leads and the other fields follow by name."""
    listed = schema.get("required") if isinstance(schema, Mapping) else None
    first = [n for n in dict.fromkeys(listed or []) if isinstance(n, str) and n in properties]
    rest = sorted(n for n in properties if n not in first)
    return [(name, properties[name]) for name in first + rest]


def argument_fields(
    schema: Mapping,
    *,
    arguments: Mapping | None = None,
    submitted: Mapping | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[ArgumentField]:
    """The widgets for `schema`'s properties: required ones in `required` order, then the rest.

    Values come from `submitted` (the raw form, when re-showing it with
    errors) or else from `arguments` (typed). `errors` are keyed like
    "arguments.<name>"; an error deeper in a property shows at the property.
    """
    arguments = arguments or {}
    errors = errors or {}
    required = set(schema.get("required") or []) if isinstance(schema, Mapping) else set()
    fields = []
    for name, prop in _ordered(schema_properties(schema), schema):
        prop = prop if isinstance(prop, Mapping) else {}
        widget = _widget(prop, arguments.get(name))
        item = ArgumentField(
            name=name,
            widget=widget,
            label=str(prop.get("title") or name.replace("_", " ")),
            required=name in required,
            description=str(prop.get("description") or ""),
            max_length=prop.get("maxLength"),
            minimum=prop.get("minimum"),
            maximum=prop.get("maximum"),
        )
        if widget == SELECT:
            item.options = [(_option_value(v), _option_value(v)) for v in _enum(prop)]
        if widget == NUMBER:
            item.step = "1" if _primary_type(prop) == "integer" else "any"
        if submitted is not None:
            raw = submitted.get(item.html_name)
            item.value = "" if raw is None else str(raw)
            item.checked = raw is not None
        else:
            item.value = _shown(widget, arguments.get(name))
            item.checked = arguments.get(name) is True
        if widget == SELECT:
            item.blank_option = not item.required or item.value not in dict(item.options)
        item.error = _error_for(name, errors)
        fields.append(item)
    return fields


def _error_for(name: str, errors: Mapping[str, str]) -> str:
    key = "arguments." + name
    if key in errors:
        return errors[key]
    nested = [message for path, message in errors.items() if path.startswith(key + ".")]
    return nested[0] if nested else ""


def field_error_keys(schema: Mapping, errors: Mapping[str, str]) -> set[str]:
    """The error keys `argument_fields` shows at a field; the rest are the form's own."""
    names = schema_properties(schema)
    shown = set()
    for path in errors:
        parts = path.split(".")
        if len(parts) >= 2 and parts[0] == "arguments" and parts[1] in names:
            shown.add(path)
    return shown


def arguments_from_form(
    schema: Mapping, data: Mapping, *, initial: Mapping | None = None
) -> tuple[dict, dict[str, str]]:
    """The arguments a submitted form describes, and the fields that could not be read.

    `initial` is what the form was filled with (the model's arguments for this
    intent): keys the schema does not list are kept from it, and it decides
    what an empty input or an unchecked box means (see `_parse_one`).
    """
    initial = dict(initial or {})
    properties = schema_properties(schema)
    required = set(schema.get("required") or [])
    arguments = {key: value for key, value in initial.items() if key not in properties}
    errors: dict[str, str] = {}
    for name, prop in properties.items():
        prop = prop if isinstance(prop, Mapping) else {}
        html_name = FIELD_PREFIX + name
        raw = data.get(html_name)
        try:
            present, value = _parse_one(prop, name, raw, initial, name in required)
        except ValueError as exc:
            errors["arguments." + name] = str(exc)
            continue
        if present:
            arguments[name] = value
    return arguments, errors


def _parse_one(prop: Mapping, name: str, raw, initial: Mapping, required: bool):
    """(present, value) for one property; ValueError with a message when unreadable.

    An empty input means "no value": the key is left out (so a required one
    fails as "is required"), unless the form started with an empty value
    there, which is given back as it was. An unchecked box is false when the
    box is required or the model set it, and absent otherwise.
    """
    widget = _widget(prop, initial.get(name))
    if widget == CHECKBOX:
        if raw is not None:
            return True, True
        return (True, False) if required or name in initial else (False, None)
    # Browsers submit textarea line breaks as CRLF; the model's text has LF.
    text = "" if raw is None else str(raw).replace("\r\n", "\n")
    blank = text == "" if widget in (TEXT, TEXTAREA) else text.strip() == ""
    if blank:
        return _empty(name, initial)
    if widget == SELECT:
        by_option = {_option_value(v): v for v in _enum(prop)}
        return True, by_option.get(text, text)  # an unknown value fails the schema's enum
    if widget == NUMBER:
        return True, _number(text.strip(), integer=_primary_type(prop) == "integer")
    if widget == JSON_TEXT:
        try:
            return True, json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    return True, text


def _empty(name: str, initial: Mapping):
    if name in initial and initial[name] in ("", None):
        return True, initial[name]
    return False, None


def _number(text: str, *, integer: bool):
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ValueError("enter a whole number" if integer else "enter a number") from None
    if not math.isfinite(value):
        raise ValueError("enter a finite number")
    if integer:
        if not value.is_integer():
            raise ValueError("enter a whole number")
        return int(value)
    return value
