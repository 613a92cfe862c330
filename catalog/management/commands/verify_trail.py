"""Check the whole trail (contracts section 8): `trail ok: N entries`, or the first bad seq."""

import sys

from django.core.management.base import BaseCommand

from catalog.audit.trail import trail_verification_run


class Command(BaseCommand):
    help = "Verify the hash chain and the signed checkpoints of the trail; exit 1 if broken."

    def handle(self, *args, **options):
        def progress(checked: int) -> None:
            if checked and checked % 100_000 == 0:
                self.stderr.write(f"checked {checked:,} entries")

        _, verdict = trail_verification_run(progress=progress)
        self.stdout.write(verdict.line())
        self.stderr.write(verdict.checkpoints_line())
        if not verdict.ok:
            sys.exit(1)
