"""Check a record export_attestation printed: exit 0 intact, 1 altered, 2 unverifiable."""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog.audit.attestation import attestation_verify

EXIT = {"intact": 0, "altered": 1, "unverifiable": 2}


class Command(BaseCommand):
    help = "Verify a run attestation (a file, or - for standard input)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The attestation, or - to read standard input.")

    def handle(self, *args, file, **options):
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        try:
            envelope = json.loads(text)
        except ValueError:
            self.stdout.write("attestation altered: not JSON")
            sys.exit(1)
        checked = attestation_verify(envelope if isinstance(envelope, dict) else {})
        self.stdout.write(f"attestation {checked.result}: {checked.detail}")
        sys.exit(EXIT[checked.result])
