"""`manage.py metrics_report --automation SLUG --window (24h|7d|30d) [--json]` (contracts §9).

Brings the rollups up to date first (the same incremental job the beat runs),
then prints the figures the automation's dashboard shows, over the window and
per segment: as JSON with `--json`, else as text.
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from automations.metrics.figures import automation_report, figures_json
from automations.metrics.rollup import rollup_as_of, rollup_run
from automations.metrics.windows import WINDOWS
from catalog.models import Automation


def _latency(figures: dict) -> str:
    return " / ".join(f"{figures[q]:,.0f}" for q in ("p50", "p95", "p99")) + " ms"


class Command(BaseCommand):
    help = "Print an automation's figures over the last 24 hours, 7 days or 30 days."

    def add_arguments(self, parser):
        parser.add_argument("--automation", required=True, metavar="SLUG")
        parser.add_argument("--window", required=True, choices=list(WINDOWS))
        parser.add_argument("--json", action="store_true", help="print JSON (contracts §9)")
        parser.add_argument(
            "--no-refresh", action="store_true", help="read the rollups as they are"
        )

    def handle(self, *args, automation, window, **options):
        found = Automation.objects.filter(slug=automation).first()
        if found is None:
            raise CommandError(f"unknown automation {automation!r}")
        if not options["no_refresh"]:
            rollup_run()
        now = timezone.now()
        report = automation_report(found, window=window, now=now)
        as_of = rollup_as_of()
        body = {
            "automation": found.slug,
            "window": window,
            "since": report.span.since.isoformat(),
            "until": now.isoformat(),
            "as_of": as_of.isoformat() if as_of else None,
            **figures_json(report.overall),
            "segments": {segment: figures_json(f) for segment, f in report.groups.items()},
        }
        if options["json"]:
            self.stdout.write(json.dumps(body, indent=2))
            return
        self.stdout.write(f"{found.slug}, last {window} (since {body['since']})")
        self._text(body)
        for segment, figures in body["segments"].items():
            self.stdout.write(f"\nsegment {segment or '(none)'}")
            self._text(figures)

    def _text(self, figures: dict) -> None:
        outcomes = ", ".join(f"{name} {n}" for name, n in figures["outcomes"].items())
        lines = [
            f"runs {figures['runs']}, decisions {figures['decisions']}: {outcomes}",
            f"decision latency p50/p95/p99 {_latency(figures['decision_latency_ms'])}",
            f"end-to-end latency p50/p95/p99 {_latency(figures['end_to_end_latency_ms'])}",
            f"override rate {figures['override_rate']:.1%} of {figures['reviewed']} reviewed,"
            f" needed a person {figures['needed_person_rate']:.1%},"
            f" model errors {figures['model_error_rate']:.1%}",
            f"tokens {figures['tokens']:,}, cost ${figures['cost_usd']:,.4f},"
            f" per 1,000 decisions ${figures['cost_per_1000_decisions_usd']:,.4f},"
            f" time saved {figures['time_saved_hours']:,.1f} h",
        ]
        for line in lines:
            self.stdout.write(f"  {line}")
