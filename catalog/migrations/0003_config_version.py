"""Automation.config_version, bumped by triggers on every write to the configuration a decision reads.

Triggers rather than signals, so that nothing escapes them: queryset
updates, the admin, load_automations and raw SQL all bump the version. Both
PostgreSQL and SQLite get them.
"""

from django.db import migrations, models

# The tables whose rows carry automation_id and are read by every decision.
CHILD_TABLES = ("catalog_intent", "catalog_donotautomaterule", "catalog_segmentpolicy")

POSTGRESQL_FORWARD = [
    """
    CREATE FUNCTION catalog_config_bump_self() RETURNS trigger AS $$
    BEGIN
        NEW.config_version := OLD.config_version + 1;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER catalog_automation_config_bump BEFORE UPDATE ON catalog_automation
    FOR EACH ROW EXECUTE FUNCTION catalog_config_bump_self()
    """,
    """
    CREATE FUNCTION catalog_config_bump_parent() RETURNS trigger AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            UPDATE catalog_automation SET config_version = config_version + 1
            WHERE id = OLD.automation_id;
        END IF;
        IF TG_OP = 'INSERT' OR NEW.automation_id IS DISTINCT FROM OLD.automation_id THEN
            UPDATE catalog_automation SET config_version = config_version + 1
            WHERE id = NEW.automation_id;
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
] + [
    f"""
    CREATE TRIGGER {table}_config_bump AFTER INSERT OR UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION catalog_config_bump_parent()
    """
    for table in CHILD_TABLES
]
POSTGRESQL_BACKWARD = [f"DROP TRIGGER {table}_config_bump ON {table}" for table in CHILD_TABLES] + [
    "DROP TRIGGER catalog_automation_config_bump ON catalog_automation",
    "DROP FUNCTION catalog_config_bump_parent()",
    "DROP FUNCTION catalog_config_bump_self()",
]

# SQLite has no BEFORE-trigger assignment: the automation's own update bumps it in
# an AFTER trigger. Model.save() writes back the version it read, which may be
# behind (<=); the child triggers' own bump is ahead and is left alone.
SQLITE_FORWARD = [
    """
    CREATE TRIGGER catalog_automation_config_bump AFTER UPDATE ON catalog_automation
    FOR EACH ROW WHEN NEW.config_version <= OLD.config_version
    BEGIN
        UPDATE catalog_automation SET config_version = OLD.config_version + 1 WHERE id = NEW.id;
    END
    """,
]
for _table in CHILD_TABLES:
    SQLITE_FORWARD += [
        f"""
        CREATE TRIGGER {_table}_config_bump_insert AFTER INSERT ON {_table} BEGIN
            UPDATE catalog_automation SET config_version = config_version + 1
            WHERE id = NEW.automation_id;
        END
        """,
        f"""
        CREATE TRIGGER {_table}_config_bump_update AFTER UPDATE ON {_table} BEGIN
            UPDATE catalog_automation SET config_version = config_version + 1
            WHERE id IN (OLD.automation_id, NEW.automation_id);
        END
        """,
        f"""
        CREATE TRIGGER {_table}_config_bump_delete AFTER DELETE ON {_table} BEGIN
            UPDATE catalog_automation SET config_version = config_version + 1
            WHERE id = OLD.automation_id;
        END
        """,
    ]
SQLITE_BACKWARD = ["DROP TRIGGER catalog_automation_config_bump"] + [
    f"DROP TRIGGER {table}_config_bump_{op}"
    for table in CHILD_TABLES
    for op in ("insert", "update", "delete")
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="automation",
            name="config_version",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="historicalautomation",
            name="config_version",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(
            _run({"postgresql": POSTGRESQL_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRESQL_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
