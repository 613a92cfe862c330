"""Print the signed record of one run (contracts section 8), a DSSE envelope."""

import json

from django.core.management.base import BaseCommand, CommandError

from automations.models import Run
from catalog.audit.attestation import run_attestation


class Command(BaseCommand):
    help = "Print a signed JSON record (DSSE envelope) of one run and its trail entries."

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int)

    def handle(self, *args, run_id, **options):
        try:
            envelope = run_attestation(run_id)
        except Run.DoesNotExist:
            raise CommandError(f"no run {run_id}") from None
        self.stdout.write(json.dumps(envelope, indent=2))
