"""One-row SELECT, INSERT and UPDATE statements built from a model's fields: a decision's.

Through the ORM, building one of these statements costs the worker two to
three times what executing it does (bench/pipeline.py --queries): a decision
makes about twenty of them. These helpers build the same SQL once per model
and column list and run it with the values the fields themselves prepare
(get_db_prep_save), so JSON, datetimes and decimals are stored exactly as the
ORM stores them, and read back through the fields' own converters. The SQL
is the same on PostgreSQL and SQLite (3.35+, for RETURNING): one path for
both. Everything else reads and writes through the ORM.
"""

from dataclasses import dataclass
from functools import cache

from django.db import connections, models, transaction


def row_get(model, *, where: dict, related: str | None = None, lock: bool = False):
    """The one row whose fields equal `where`, as an instance, or None.

    `related` names a foreign key whose row is read in the same statement (an
    inner join, as select_related does for a required key) and cached on the
    instance. `where` must name a unique row. `lock` locks that row (not the
    related one) until the transaction ends, as select_for_update(of=("self",))
    does; SQLite has no row locks, and its IMMEDIATE transactions serialise writers.
    """
    connection = transaction.get_connection()
    meta = model._meta
    where_fields = [meta.get_field(name) for name in where]
    params = [
        field.get_db_prep_value(value, connection)
        for field, value in zip(where_fields, where.values(), strict=True)
    ]
    columns = tuple(field.column for field in where_fields)
    sql = _select_sql(model, columns, related, lock, connection.alias)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    part = _part(model, connection.alias)
    instance = part.instance(row[: len(part.fields)], connection)
    if related:
        key = meta.get_field(related)
        other = _part(key.related_model, connection.alias)
        key.set_cached_value(instance, other.instance(row[len(part.fields) :], connection))
    return instance


def row_fetch(model, sql: str, params) -> models.Model | None:
    """Run `sql`, which selects or returns `model_columns(model)`, and make its row an instance."""
    connection = transaction.get_connection()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else _part(model, connection.alias).instance(row, connection)


def model_columns(model, table: str | None = None) -> str:
    """The model's columns in the order row_fetch reads them, qualified by `table` if given."""
    prefix = f'"{table}".' if table else ""
    return ", ".join(f'{prefix}"{field.column}"' for field in model._meta.concrete_fields)


@dataclass(frozen=True)
class _Part:
    """A model's columns as read back, with the converters each value goes through."""

    model: type
    fields: list
    cols: list
    converters: list[list]

    def instance(self, values, connection) -> models.Model:
        converted = []
        for col, converters, value in zip(self.cols, self.converters, values, strict=True):
            for converter in converters:
                value = converter(value, col, connection)
            converted.append(value)
        attnames = [field.attname for field in self.fields]
        return self.model.from_db(connection.alias, attnames, converted)


@cache
def _part(model, alias: str) -> _Part:
    connection = connections[alias]
    fields = list(model._meta.concrete_fields)
    cols = [field.get_col(model._meta.db_table) for field in fields]
    converters = [
        connection.ops.get_db_converters(col) + col.get_db_converters(connection) for col in cols
    ]
    return _Part(model, fields, cols, converters)


@cache
def _select_sql(model, where: tuple[str, ...], related: str | None, lock: bool, alias: str):
    connection = connections[alias]
    table = model._meta.db_table
    names, joins = model_columns(model, table), ""
    if related:
        key = model._meta.get_field(related)
        other = key.related_model._meta.db_table
        names += ", " + model_columns(key.related_model, other)
        target = key.target_field.column
        joins = f' JOIN "{other}" ON "{other}"."{target}" = "{table}"."{key.column}"'
    conditions = " AND ".join(f'"{table}"."{column}" = %s' for column in where)
    sql = f'SELECT {names} FROM "{table}"{joins} WHERE {conditions}'  # noqa: S608 (model names)
    if lock and connection.features.has_select_for_update_of:
        sql += f' FOR UPDATE OF "{table}"'
    elif lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    return sql


def row_insert(instance: models.Model) -> models.Model:
    """INSERT `instance` (its auto_now_add fields set as save() sets them); its pk is set."""
    meta = instance._meta
    # Generated columns (Run.confidence) are the database's to fill.
    fields = [f for f in meta.concrete_fields if not f.primary_key and not f.generated]
    connection = transaction.get_connection()
    params = [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(meta.model, tuple(field.column for field in fields)), params)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


@cache
def _insert_sql(model, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{column}"' for column in columns)
    marks = ", ".join(["%s"] * len(columns))
    pk = model._meta.pk.column
    return f'INSERT INTO "{model._meta.db_table}" ({names}) VALUES ({marks}) RETURNING "{pk}"'  # noqa: S608 (model names)


def rows_update(model, *, where: dict, values: dict) -> int:
    """UPDATE the rows whose fields equal `where` to `values`; how many moved.

    Keys are field names, or attnames (`claimed_by_id`) to give a foreign key's value.
    """
    connection = transaction.get_connection()
    meta = model._meta
    set_fields = [meta.get_field(name) for name in values]
    where_fields = [meta.get_field(name) for name in where]
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(set_fields, values.values(), strict=True)
    ]
    params += [
        field.get_db_prep_value(value, connection)
        for field, value in zip(where_fields, where.values(), strict=True)
    ]
    sql = _update_sql(
        model,
        tuple(field.column for field in set_fields),
        tuple(field.column for field in where_fields),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


@cache
def _update_sql(model, columns: tuple[str, ...], where: tuple[str, ...]) -> str:
    assignments = ", ".join(f'"{column}" = %s' for column in columns)
    conditions = " AND ".join(f'"{column}" = %s' for column in where)
    return f'UPDATE "{model._meta.db_table}" SET {assignments} WHERE {conditions}'  # noqa: S608 (model names)
