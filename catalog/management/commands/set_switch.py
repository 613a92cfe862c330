"""Switch an automation or one segment off or on (contracts section 6)."""

from django.core.management.base import BaseCommand

from catalog.governance.changes import GovernanceRefused, switch_set

from ._governance import automation_named, governance_arguments, refused, user_named


class Command(BaseCommand):
    help = "Turn an automation (or --segment) off or on; off holds for every action not sent."

    def add_arguments(self, parser):
        governance_arguments(parser)
        state = parser.add_mutually_exclusive_group(required=True)
        state.add_argument("--off", action="store_true", help="Switch it off.")
        state.add_argument("--on", action="store_true", help="Switch it on.")

    def handle(self, *args, slug, reason, segment, by, off, on, **options):
        automation = automation_named(slug, segment)
        try:
            change = switch_set(
                automation=automation, on=on, reason=reason, by=user_named(by), segment=segment
            )
        except GovernanceRefused as refusal:
            refused(self, refusal)
        where = f"{slug}/{segment}" if segment else slug
        self.stdout.write(f"{where}: switched {change.to_value} (was {change.from_value})")
