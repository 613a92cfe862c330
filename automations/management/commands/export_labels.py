"""`manage.py export_labels --automation SLUG [--since YYYY-MM-DD] --format openai-chat|csv`.

Writes the automation's review labels as OpenAI fine-tuning chat JSONL (one
example per line; rejected and discarded labels are left out because there is
no correct answer to teach) or as CSV (every label). PII is redacted for
confidential and restricted automations. Standard output unless --output;
progress and the final count go to standard error.
"""

import os
import sys
import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from automations.services.labels import FORMATS, labels_export
from catalog.models import Automation

# A long export says how far it got (on stderr, so that stdout stays the export).
PROGRESS_EVERY_SECONDS = 1.0


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since must be a date YYYY-MM-DD, got {value!r}") from None


class Command(BaseCommand):
    help = "Export review labels of one automation as OpenAI chat JSONL or CSV."

    def add_arguments(self, parser):
        parser.add_argument("--automation", required=True, metavar="SLUG")
        parser.add_argument("--since", metavar="YYYY-MM-DD", help="labels created on or after")
        parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
        parser.add_argument("--output", metavar="FILE", help="write here instead of stdout")

    def handle(self, *args, automation, since, fmt, output, **options):
        since_date = _parse_date(since) if since else None
        found = Automation.objects.filter(slug=automation).first()
        if found is None:
            raise CommandError(f"unknown automation {automation!r}")
        lines = labels_export(automation=found, since=since_date, fmt=fmt)
        if output:
            try:
                with open(output, "w", encoding="utf-8", newline="") as stream:
                    count = self._write(lines, stream.write)
            except OSError as exc:
                raise CommandError(f"cannot write {output}: {exc.strerror}") from None
        else:
            try:
                count = self._write(lines, lambda line: self.stdout.write(line, ending=""))
            except BrokenPipeError:
                # The reader stopped early (`| head`): not an error; keep the
                # interpreter from complaining when it flushes stdout at exit.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return
        if fmt == "csv":
            count = max(0, count - 1)  # the header is not a label
        self.stderr.write(f"exported {count} labels of {found.slug} ({fmt})")

    def _write(self, lines, write) -> int:
        """Write every line; say how far it got on stderr, at most once a second."""
        count, shown = 0, time.monotonic()
        for line in lines:
            write(line)
            count += 1
            if time.monotonic() - shown >= PROGRESS_EVERY_SECONDS:
                shown = time.monotonic()
                self.stderr.write(f"exporting: {count:,} lines written so far")
        return count
