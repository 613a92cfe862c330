"""A do-not-automate condition as SQL over events, meaning what automations/matching.py means.

The what-if preview asks the database which events a proposed rule would
have matched. `condition_matches` walks a dotted path and compares in
Python; here the same comparisons are SQL that PostgreSQL and SQLite answer
alike:

- `segment`, `source`, `idempotency_key` are the event's own columns;
  `payload.a.b` is the JSON value at that path, taken only when it is a JSON
  string (a number, list or object never equals, contains or matches a text).
- `equals` compares text; `contains` is a case-sensitive substring (STRPOS,
  INSTR: SQL's LIKE ignores case on SQLite) or, for a JSON list, a member
  equal to the text; `matches` is a regular expression search, on
  PostgreSQL's engine (`~`) or Python's (SQLite's REGEXP, as Django provides
  it). Owners write RE2 patterns; literal text, alternation, classes,
  quantifiers, anchors and a leading `(?i)` mean the same on all three, and
  `\\b` / `\\B` (word boundaries) are written `\\y` / `\\Y` for PostgreSQL.
  `pattern_unreadable` says, before the query, whether the database can
  run a pattern at all.

Paths with a list index (`payload.items.0`) are refused: the two databases
would read them differently.
"""

import json
import re

from django.db import DataError, connection, transaction
from django.db.models import BooleanField, F, Func, Q, QuerySet, TextField, Value
from django.db.models.functions import StrIndex
from django.db.models.lookups import GreaterThan

from automations.models import Event

EVENT_COLUMNS = ("segment", "source", "idempotency_key")
OPERATORS = ("matches", "equals", "contains")


class FieldRefused(ValueError):
    """A field path the preview cannot evaluate; the message says why."""


def field_parts(field: str) -> tuple[str, list[str]]:
    """(column, JSON path) for a dotted field; FieldRefused for one the preview cannot read."""
    parts = field.split(".")
    if len(parts) == 1 and parts[0] in EVENT_COLUMNS:
        return parts[0], []
    if parts[0] != "payload" or len(parts) < 2:
        raise FieldRefused(
            "must be segment, source, idempotency_key or a path into the payload (payload.body)"
        )
    path = parts[1:]
    if any(not part for part in path):
        raise FieldRefused("has an empty part between two dots")
    if any(part.isdigit() for part in path):
        raise FieldRefused("a list index (a part made of digits) cannot be previewed")
    return "payload", path


class JsonText(Func):
    """The value at `path` of a JSON column as text: a string's text; on PostgreSQL, any value's.

    Pair it with JsonIsString. Apart, each is cheap; PostgreSQL then runs the
    comparison first (the planner thinks it cheaper) and looks at the type of
    the few values it accepts, instead of building every value twice.
    """

    output_field = TextField()

    def __init__(self, column: str, path: list[str]):
        super().__init__(F(column))
        self.path = path

    def as_postgresql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        return f"({column} #>> %s::text[])", [*params, self.path]

    def as_sqlite(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        path = sqlite_path(self.path)
        sql = f"CASE WHEN json_type({column}, %s) = 'text' THEN json_extract({column}, %s) END"
        return sql, [*params, path, *params, path]


class JsonIsString(Func):
    """True when the value at `path` of a JSON column is a string."""

    output_field = BooleanField()

    def __init__(self, column: str, path: list[str]):
        super().__init__(F(column))
        self.path = path

    def as_postgresql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        return f"(jsonb_typeof({column} #> %s::text[]) = 'string')", [*params, self.path]

    def as_sqlite(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        return f"(json_type({column}, %s) = 'text')", [*params, sqlite_path(self.path)]


class JsonListHas(Func):
    """True when the value at `path` of a JSON column is a list with a member equal to `text`."""

    output_field = BooleanField()

    def __init__(self, column: str, path: list[str], text: str):
        super().__init__(F(column))
        self.path, self.text = path, text

    def as_postgresql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        # Containment of a one-text list: true for a list holding that text, false for any
        # other value (an object, a string, a list holding it only deeper down). The text
        # form is cheap to take and rules out most values before a jsonb value is built.
        sql = (
            f"(left({column} #>> %s::text[], 1) = '['"
            f" AND ({column} #> %s::text[]) @> jsonb_build_array(%s::text))"
        )
        return sql, [*params, self.path, *params, self.path, self.text]

    def as_sqlite(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        path = sqlite_path(self.path)
        # The column comes from the compiler; every value is a parameter.
        sql = (
            f"(json_type({column}, %s) = 'array' AND EXISTS (SELECT 1 FROM json_each({column}, %s)"  # noqa: S608
            " AS member WHERE member.type = 'text' AND member.value = %s))"
        )
        return sql, [*params, path, *params, path, self.text]


def sqlite_path(path: list[str]) -> str:
    """SQLite's JSON path for these object keys: $."a"."b" (quoted, so no key is read as syntax)."""
    return "$" + "".join(f".{json.dumps(part)}" for part in path)


def postgresql_pattern(pattern: str) -> str:
    """An RE2 pattern for PostgreSQL's engine: word boundaries \\b, \\B become \\y, \\Y."""
    out, chars, class_at = [], iter(pattern), None
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            if class_at is None:
                escaped = {"b": "y", "B": "Y"}.get(escaped, escaped)
            out.append(char + escaped)
            continue
        if class_at is None and char == "[":
            class_at = len(out)
        elif char == "]" and class_at is not None and "".join(out[class_at:]) not in ("[", "[^"):
            class_at = None  # a ] right after [ or [^ is a member, not the end
        out.append(char)
    return "".join(out)


def pattern_unreadable(pattern: str) -> str | None:
    """Why the database's regular expression engine cannot run `pattern`; None when it can."""
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT '' ~ %s", [postgresql_pattern(pattern)])
        except DataError as error:
            return str(error.__cause__ or error).splitlines()[0]
        return None
    try:
        re.compile(pattern)  # what SQLite's REGEXP runs (django/db/backends/sqlite3)
    except re.error as error:
        return str(error)
    return None


def events_matching(
    *, events: QuerySet[Event], field: str, operator: str, value: str
) -> QuerySet[Event]:
    """`events` narrowed to those the condition (field, operator, text value) matches."""
    column, path = field_parts(field)
    if operator not in OPERATORS:
        raise ValueError(f"unknown operator {operator!r}; expected one of {OPERATORS}")
    if not path:
        events = events.annotate(condition_text=F(column))
        return events.filter(_compared(operator, value))
    events = events.annotate(
        condition_text=JsonText(column, path), condition_is_text=JsonIsString(column, path)
    )
    text_matches = _compared(operator, value) & Q(condition_is_text=True)
    if operator != "contains":
        return events.filter(text_matches)
    events = events.annotate(condition_in_list=JsonListHas(column, path, value))
    return events.filter(text_matches | Q(condition_in_list=True))


def _compared(operator: str, value: str) -> Q:
    """The comparison of `condition_text` with the value, for one operator."""
    if operator == "equals":
        return Q(condition_text=value)
    if operator == "matches":
        pattern = postgresql_pattern(value) if connection.vendor == "postgresql" else value
        return Q(condition_text__regex=pattern)
    # A case-sensitive substring: SQL's LIKE ignores case on SQLite.
    return Q(GreaterThan(StrIndex("condition_text", Value(value)), 0))
