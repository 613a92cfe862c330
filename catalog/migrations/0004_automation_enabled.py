"""The whole-automation kill switch (`enabled`); the configuration-version triggers go.

The triggers (0003) kept a per-process cache of each automation's decision
configuration honest; a decision now reads that configuration afresh, and the
triggers made every SQLite table rebuild of catalog_automation fail (SQLite
checks the triggers of other tables that name it).
"""

from importlib import import_module

from django.db import migrations, models

config_version = import_module("catalog.migrations.0003_config_version")


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_config_version"),
    ]

    operations = [
        migrations.RunPython(
            _run(
                {
                    "postgresql": config_version.POSTGRESQL_BACKWARD,
                    "sqlite": config_version.SQLITE_BACKWARD,
                }
            ),
            _run(
                {
                    "postgresql": config_version.POSTGRESQL_FORWARD,
                    "sqlite": config_version.SQLITE_FORWARD,
                }
            ),
        ),
        migrations.RemoveField(model_name="automation", name="config_version"),
        migrations.RemoveField(model_name="historicalautomation", name="config_version"),
        migrations.AddField(
            model_name="automation",
            name="enabled",
            field=models.BooleanField(
                default=True, help_text="Off: the kill switch for the whole automation."
            ),
        ),
        migrations.AddField(
            model_name="historicalautomation",
            name="enabled",
            field=models.BooleanField(
                default=True, help_text="Off: the kill switch for the whole automation."
            ),
        ),
    ]
