"""Guardrail verdicts become one JSON list on their run; runs get a worker lease.

Existing verdict rows are copied onto their runs before their table goes, and
runs a worker must still move are due at once, so that the sweep picks them up.
"""

import django.utils.timezone
from django.db import migrations, models


def verdicts_copy(apps, schema_editor):
    Run = apps.get_model("automations", "Run")
    GuardrailVerdict = apps.get_model("automations", "GuardrailVerdict")
    verdicts = {}
    for verdict in GuardrailVerdict.objects.order_by("run_id", "position").iterator():
        verdicts.setdefault(verdict.run_id, []).append(
            {
                "check": verdict.check_name,
                "verdict": verdict.verdict,
                "reason": verdict.reason,
                "details": verdict.details,
            }
        )
    for run_id, rows in verdicts.items():
        Run.objects.filter(pk=run_id).update(verdicts=rows)
    in_flight = ["received", "deciding", "approved", "executing"]
    Run.objects.filter(state__in=in_flight).update(due_at=django.utils.timezone.now())


class Migration(migrations.Migration):

    dependencies = [
        ('automations', '0008_fk_indexes_covered_by_unique'),
        ('catalog', '0004_automation_enabled'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='held_by',
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name='run',
            name='due_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='run',
            name='verdicts',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(condition=models.Q(('state__in', ['received', 'deciding', 'approved', 'executing'])), fields=['due_at'], name='run_in_flight_due'),
        ),
        migrations.RunPython(verdicts_copy, migrations.RunPython.noop),
        migrations.DeleteModel(
            name='GuardrailVerdict',
        ),
    ]
