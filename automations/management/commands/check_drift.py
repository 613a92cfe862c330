"""`manage.py check_drift [--json]` (contracts §9): run the drift and alert job once.

Brings the rollups up to date, checks every automation (automations/metrics/
drift.py) and prints each alert that holds, one per line: with --json as
{"automation", "segment", "kind", "value", "baseline", "threshold"} (one JSON
object per line, "new" telling whether this run raised it), else as text.
Alerts are stored and shown on the dashboards; new ones go to notify_url.
"""

import json

from django.core.management.base import BaseCommand

from automations.metrics.drift import drift_check
from automations.metrics.rollup import rollup_run


class Command(BaseCommand):
    help = "Check drift, latency and spend for every automation; print the alerts that hold."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one JSON object per alert")

    def handle(self, *args, **options):
        rollup_run()
        result = drift_check()
        raised = {(a.automation_id, a.segment, a.kind) for a in result.raised}
        for finding in result.findings:
            line = {**finding.as_json(), "new": finding.key in raised}
            if options["json"]:
                self.stdout.write(json.dumps(line))
                continue
            where = finding.automation.slug + (
                f"/{finding.segment}" if finding.segment is not None else ""
            )
            baseline = "" if finding.baseline is None else f", baseline {finding.baseline:.4g}"
            self.stdout.write(
                f"{finding.kind} on {where}: {finding.value:.4g}"
                f" (threshold {finding.threshold:.4g}{baseline}){' new' if line['new'] else ''}"
            )
        if not options["json"] and not result.findings:
            self.stdout.write("no alerts")
