"""Move an automation or one segment to a mode (contracts section 6)."""

from django.core.management.base import BaseCommand

from catalog.governance.changes import GovernanceRefused, mode_set
from catalog.models import Mode

from ._governance import automation_named, governance_arguments, refused, user_named


class Command(BaseCommand):
    help = "Set the mode of an automation (or --segment); autonomous needs its evidence."

    def add_arguments(self, parser):
        governance_arguments(parser)
        parser.add_argument("mode", choices=Mode.values)
        parser.add_argument(
            "--override-evidence",
            action="store_true",
            help="An admin promotes without the evidence or checklist (recorded as such).",
        )

    def handle(self, *args, slug, mode, reason, segment, by, override_evidence, **options):
        automation = automation_named(slug, segment)
        try:
            change = mode_set(
                automation=automation,
                mode=mode,
                reason=reason,
                by=user_named(by),
                segment=segment,
                override_evidence=override_evidence,
            )
        except GovernanceRefused as refusal:
            refused(self, refusal)
        where = f"{slug}/{segment}" if segment else slug
        note = " (evidence overridden)" if change.override else ""
        self.stdout.write(f"{where}: mode {change.from_value} -> {change.to_value}{note}")
