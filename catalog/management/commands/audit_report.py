"""Print an audit sample's report per stratum and overall (contracts section 7)."""

import json

from django.core.management.base import BaseCommand, CommandError

from catalog.audit.report import report_csv, report_json, sample_report
from catalog.models import AuditSample


class Command(BaseCommand):
    help = (
        "Per stratum: population, sampled, reviewed, issues, issue rate and its Wilson 95%"
        " interval; then the overall rate weighted by population."
    )

    def add_arguments(self, parser):
        parser.add_argument("sample_id", type=int)
        parser.add_argument("--format", required=True, choices=["csv", "json"])

    def handle(self, *args, sample_id, **options):
        sample = AuditSample.objects.filter(pk=sample_id).first()
        if sample is None:
            raise CommandError(f"no audit sample {sample_id}")
        report = sample_report(sample)
        if options["format"] == "json":
            self.stdout.write(json.dumps(report_json(report), indent=2))
        else:
            self.stdout.write(report_csv(report), ending="")
