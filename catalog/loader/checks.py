"""Small checkers: each cleans one value of a catalog file or records why it is wrong.

A checker is `check(value, path, problems) -> cleaned value or INVALID`. It
never raises on bad input, so one pass reports every problem in the file.
"""

import copy
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from automations import outbound

from .errors import Problems, item_path, key_path

INVALID: Any = type("Invalid", (), {"__repr__": lambda self: "INVALID"})()
Check = Callable[[Any, str, Problems], Any]

MAX_POSITIVE_INT = 2_147_483_647  # PositiveIntegerField on PostgreSQL


@dataclass(frozen=True)
class Field:
    """One key of a mapping: how to check it, whether it must be there, its default."""

    check: Check
    required: bool = False
    default: Any = None


def fields_check(value, path: str, problems: Problems, fields: dict[str, Field]):
    """A mapping with only the given keys; null counts as absent and gets the default."""
    if not isinstance(value, dict):
        problems.add(path or "(document)", "must be a mapping")
        return INVALID
    for key in value:
        if key not in fields:
            problems.add(key_path(path, key), "unknown key")
    cleaned = {}
    for key, field in fields.items():
        raw = value.get(key)
        if raw is None:
            if field.required:
                problems.add(key_path(path, key), "required")
            cleaned[key] = INVALID if field.required else _fresh(field.default)
        else:
            cleaned[key] = field.check(raw, key_path(path, key), problems)
    return cleaned


def _fresh(default):
    # Defaults are shared between documents; hand out copies of mutable ones.
    return copy.deepcopy(default)


def passthrough(value, path, problems):
    return value


def text(
    *, max_length: int | None = None, blank: bool = False, pattern=None, hint: str = ""
) -> Check:
    """A string, non-empty unless `blank`, at most `max_length`, matching `pattern`."""

    def check(value, path, problems):
        if not isinstance(value, str):
            problems.add(path, "must be a string")
            return INVALID
        if not value and not blank:
            problems.add(path, "must not be empty")
            return INVALID
        if max_length is not None and len(value) > max_length:
            problems.add(path, f"must be at most {max_length} characters")
            return INVALID
        if pattern is not None and value and not re.fullmatch(pattern, value):
            problems.add(path, hint)
            return INVALID
        return value

    return check


def choice(options: Iterable[str]) -> Check:
    options = tuple(options)

    def check(value, path, problems):
        if not isinstance(value, str) or value not in options:
            problems.add(path, f"must be one of {', '.join(options)}")
            return INVALID
        return value

    return check


def boolean(value, path, problems):
    if not isinstance(value, bool):
        problems.add(path, "must be true or false")
        return INVALID
    return value


def number(*, minimum: float, maximum: float | None = None, above_minimum: bool = False) -> Check:
    """A finite int or float (never a boolean) within the bounds."""

    def check(value, path, problems):
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.add(path, "must be a number")
            return INVALID
        if not math.isfinite(value):
            problems.add(path, "must be a finite number")
            return INVALID
        if above_minimum and value <= minimum:
            problems.add(path, f"must be greater than {minimum:g}")
            return INVALID
        if value < minimum or (maximum is not None and value > maximum):
            problems.add(path, _range_text(minimum, maximum))
            return INVALID
        return value

    return check


def integer(*, minimum: int, maximum: int = MAX_POSITIVE_INT) -> Check:
    def check(value, path, problems):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.add(path, "must be an integer")
            return INVALID
        if not minimum <= value <= maximum:
            problems.add(path, _range_text(minimum, maximum))
            return INVALID
        return value

    return check


def _range_text(minimum, maximum) -> str:
    if maximum is None:
        return f"must be at least {minimum:g}"
    return f"must be between {minimum:g} and {maximum:g}"


def url(*, max_length: int = 2000) -> Check:
    """An absolute http or https URL whose host, as written, the outbound address policy allows."""

    def check(value, path, problems):
        if not is_url(value) or len(value) > max_length:
            problems.add(path, "not a URL")
            return INVALID
        target = outbound.host_target(urlsplit(value).hostname)
        if target is not None:
            problems.add(path, f"targets a private address ({target}); {outbound.LIST_HINT}")
            return INVALID
        return value

    return check


def is_url(value) -> bool:
    if not isinstance(value, str) or not value or re.search(r"[\s\x00-\x1f\x7f]", value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


env_name = text(
    max_length=100,
    pattern=r"[A-Z_][A-Z0-9_]*",
    hint="must be an environment variable name (A-Z, 0-9 and _, not starting with a digit)",
)


def list_of(item_check: Check, *, non_empty: bool = False) -> Check:
    def check(value, path, problems):
        if not isinstance(value, list):
            problems.add(path, "must be a list")
            return INVALID
        if non_empty and not value:
            problems.add(path, "must not be empty")
            return INVALID
        return [item_check(item, item_path(path, i), problems) for i, item in enumerate(value)]

    return check


def json_data(value, path, problems):
    """Anything JSON can hold: the value goes into a JSON column as it is."""
    problem = json_problem(value)
    if problem:
        problems.add(path, problem)
        return INVALID
    return value


def json_mapping(value, path, problems):
    if not isinstance(value, dict):
        problems.add(path, "must be a mapping")
        return INVALID
    return json_data(value, path, problems)


def json_problem(value) -> str | None:
    """Why `value` is not plain JSON data, or None when it is."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "must not hold NaN or infinity"
    if isinstance(value, list):
        return next(filter(None, map(json_problem, value)), None)
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            return "mapping keys must be strings"
        return next(filter(None, map(json_problem, value.values())), None)
    return f"must be JSON data, not {type(value).__name__}"


def unique(items: list, key: str, path: str, problems: Problems, label: str) -> None:
    """Report every item whose `key` repeats an earlier one."""
    seen = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(key), str):
            continue
        if item[key] in seen:
            problems.add(key_path(item_path(path, index), key), f'duplicate {label} "{item[key]}"')
        seen.add(item[key])
