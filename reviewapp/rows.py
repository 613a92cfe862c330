"""Hand-written SQL on the hot paths, with the models' own columns and value conversions.

Compiling an ORM statement costs 0.3 to 1 ms of Python, more than the
database takes to run it; on the few paths every event takes (the API's
token check, the decision, the first attempt) that was a third of the CPU.
These helpers let such a path keep one SQL string per process and still get
model instances exactly as the ORM would build them (Django's own per-field
converters, so JSON, decimals and SQLite datetimes come back right), or
insert rows valued exactly as Model.save would write them. The SQL itself is
plain and portable (PostgreSQL and SQLite).
"""

from collections.abc import Iterable, Sequence
from functools import cache

from django.db import connections
from django.db.models import Model


def select_list(model: type[Model], alias: str) -> str:
    """`alias."column", ...` for every concrete field, in the order from_row expects."""
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def from_row(model: type[Model], values: Sequence, *, using: str = "default") -> Model:
    """The instance the ORM would build from a row of select_list(model) values."""
    connection = connections[using]
    values = list(values)
    for position, expression, converters in _converters(model, using):
        value = values[position]
        for converter in converters:
            value = converter(value, expression, connection)
        values[position] = value
    return model.from_db(using, None, values)


@cache
def _converters(model: type[Model], using: str) -> tuple:
    # The backend's and the field's converters, as SQLCompiler.get_converters finds them.
    connection = connections[using]
    found = []
    for position, field in enumerate(model._meta.concrete_fields):
        expression = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(expression)
        converters += expression.get_db_converters(connection)
        if converters:
            found.append((position, expression, tuple(converters)))
    return tuple(found)


def insert_rows(objs: Iterable[Model], *, using: str = "default") -> None:
    """INSERT new rows of one model in one statement, valued as save() would; sets their pks.

    Like bulk_create without the statement compiler: no signals, no save(),
    so only for models nothing hooks into (no history, no save override).
    """
    objs = list(objs)
    if not objs:
        return
    connection = connections[using]
    sql, params = insert_statement(objs, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted(objs, [row[0] for row in cursor.fetchall()], using=using)


def insert_statement(
    objs: Sequence[Model], connection, *, after: str | None = None
) -> tuple[str, list]:
    """The INSERT … RETURNING pk of new rows of one model, and its values as save() writes them.

    Valuing the rows fills their automatic fields (auto_now_add), as save() would.
    The pks come back in the order of `objs`. On PostgreSQL, several rows are
    bound as one array per column (the params are then those arrays). `after`
    names a WITH clause of one row at most, of the statement this one joins:
    the rows are written only if it has one.
    """
    model = type(objs[0])
    fields = _insert_fields(model)
    rows = [saved_values(obj, fields, connection) for obj in objs]
    if connection.vendor == "postgresql" and len(rows) > 1:
        # One array per column, as Django's bulk_create does on PostgreSQL: the
        # text and its parameter count stay the same whatever the number of
        # rows, so psycopg keeps its parsing (it re-parses a statement of more
        # than 50 parameters on every call) and PostgreSQL its prepared plan.
        columns = [list(column) for column in zip(*rows, strict=True)]
        return _insert_unnest_sql(model, connection.alias, after), columns
    return _insert_sql(model, len(rows), after), [value for row in rows for value in row]


def inserted(objs: Sequence[Model], ids: Sequence, *, using: str = "default") -> None:
    """Mark `objs` saved with the primary keys their INSERT returned."""
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = using


def together(statements: Sequence[tuple[str, list]]) -> tuple[str, list]:
    """One PostgreSQL statement running all of `statements`: one round trip instead of several.

    All but the last must modify data; they run as WITH clauses of the last,
    whose RETURNING is the result. PostgreSQL runs every data-modifying WITH
    clause once, referenced or not, in the same snapshot: none of them sees
    what another writes, so they must not depend on each other.
    """
    *first, (last_sql, last_params) = statements
    if not first:
        return last_sql, last_params
    clauses = ", ".join(f"w{number} AS ({sql})" for number, (sql, _) in enumerate(first))
    params = [value for _, values in first for value in values]
    return f"WITH {clauses} {last_sql}", [*params, *last_params]


def insert_values(obj: Model, connection, *, skip: tuple[str, ...] = ()) -> tuple[list[str], list]:
    """The quoted columns and bound values of a new row, as Model.save would write them.

    `skip` names fields left out, for a statement that takes them from elsewhere
    (a key returned by an INSERT before it in the same statement).
    """
    fields = [
        field
        for field in obj._meta.concrete_fields
        if not field.primary_key and field.name not in skip
    ]
    return [f'"{field.column}"' for field in fields], saved_values(obj, fields, connection)


def named(statement: tuple[str, Sequence], prefix: str) -> tuple[str, dict]:
    """A statement with %s placeholders as one with %(name)s ones: `prefix`0, `prefix`1, ….

    psycopg takes one style per statement; this lets a statement built with %s
    join clauses written with names. Only for SQL built here, with no % of its own.
    """
    sql, values = statement
    pieces = sql.split("%s")
    if len(pieces) != len(values) + 1:
        raise ValueError(f"{len(pieces) - 1} placeholders for {len(values)} values")
    text = pieces[0] + "".join(
        f"%({prefix}{number})s{piece}" for number, piece in enumerate(pieces[1:])
    )
    return text, {f"{prefix}{number}": value for number, value in enumerate(values)}


def saved_values(obj: Model, fields: Sequence, connection) -> list:
    """The bound values of a new row's `fields`, as Model.save would write them."""
    return [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]


@cache
def _insert_fields(model: type[Model]) -> tuple:
    return tuple(field for field in model._meta.concrete_fields if not field.primary_key)


@cache
def _insert_sql(model: type[Model], rows: int, after: str | None = None) -> str:
    placeholders = ", ".join(["%s"] * len(_insert_fields(model)))
    if after is None:
        return _insert_into(model, "VALUES " + ", ".join([f"({placeholders})"] * rows))
    if rows != 1:
        raise ValueError("rows written after a clause go in as arrays (PostgreSQL) or one by one")
    return _insert_into(model, f"SELECT {placeholders} FROM {after}")  # noqa: S608


@cache
def _insert_unnest_sql(model: type[Model], using: str, after: str | None = None) -> str:
    # The base type (varchar, not varchar(50)), as Django casts it: nothing is truncated.
    arrays = ", ".join(
        f"%s::{field.db_type(connections[using]).split('(')[0]}[]"
        for field in _insert_fields(model)
    )
    if after is None:
        return _insert_into(model, f"SELECT * FROM unnest({arrays})")  # noqa: S608 (bound values)
    return _insert_into(model, f"SELECT u.* FROM {after}, unnest({arrays}) AS u")  # noqa: S608


def _insert_into(model: type[Model], rows_source: str) -> str:
    """INSERT of `model`'s non-pk columns from `rows_source`, RETURNING the new pks."""
    columns = ", ".join(f'"{field.column}"' for field in _insert_fields(model))
    return (
        f'INSERT INTO "{model._meta.db_table}" ({columns}) '  # noqa: S608 (model names, bound values)
        f'{rows_source} RETURNING "{model._meta.pk.column}"'
    )
