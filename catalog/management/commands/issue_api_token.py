"""Issue an ingestion API token and print its secret once (contracts section 3)."""

from django.core.management.base import BaseCommand, CommandError

from catalog.models import ApiToken, Automation
from catalog.tokens import token_issue


class Command(BaseCommand):
    help = "Create an API token, optionally limited to automations, and print it once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who or what uses the token, e.g. zendesk-bridge.")
        parser.add_argument(
            "--automation",
            action="append",
            default=[],
            metavar="SLUG",
            help="Limit the token to this automation (repeatable). None: every automation.",
        )

    def handle(self, *args, name, automation, **options):
        name = name.strip()
        max_length = ApiToken._meta.get_field("name").max_length
        if not name or len(name) > max_length:
            raise CommandError(f"NAME must be 1 to {max_length} characters")
        slugs = list(dict.fromkeys(automation))
        found = {a.slug: a for a in Automation.objects.filter(slug__in=slugs)}
        missing = [slug for slug in slugs if slug not in found]
        if missing:
            raise CommandError(f"unknown automation: {', '.join(missing)}")
        token, raw = token_issue(name=name, automations=found.values())
        scope = ", ".join(slugs) if slugs else "every automation"
        # The secret alone on stdout, so `TOKEN=$(manage.py issue_api_token x)` works.
        self.stderr.write(f"Token {token.prefix}… for {name} ({scope}); it is shown only once.")
        self.stdout.write(raw)
