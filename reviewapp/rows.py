"""One-row INSERT and UPDATE statements built from a model's fields: the writes of a decision.

Through the ORM, building one of these statements costs the worker two to
three times what executing it does (bench/pipeline.py --queries): a decision
makes about fifteen of them. These helpers build the same SQL once per model
and column list and run it with the values the fields themselves prepare
(get_db_prep_save), so JSON, datetimes and decimals are stored exactly as the
ORM stores them. The SQL is the same on PostgreSQL and SQLite (3.35+, for
RETURNING): one path for both. Everything else writes through the ORM.
"""

from functools import cache

from django.db import models, transaction


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
