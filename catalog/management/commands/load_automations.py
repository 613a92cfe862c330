"""`manage.py load_automations FILE`: create or update automations from a catalog file."""

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from catalog.loader import CatalogInvalid, load_catalog, parse_catalog


class Command(BaseCommand):
    help = (
        "Create or update automations from a YAML or JSON file ('-' reads standard input). "
        "An invalid file changes nothing."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="YAML or JSON file, or - for stdin")
        parser.add_argument("--reason", help='change reason (default: "loaded from FILE")')
        parser.add_argument("--user", metavar="USERNAME", help="who the history records")
        parser.add_argument(
            "--override-evidence",
            action="store_true",
            help="An admin (--user) promotes to autonomous without the evidence or checklist.",
        )

    def handle(self, *args, **options):
        path = options["file"]
        text = read_text(path, options.get("stdin") or sys.stdin)
        user = user_named(options["user"]) if options["user"] else None
        try:
            report = load_catalog(
                parse_catalog(text),
                source=path,
                reason=options["reason"],
                user=user,
                override_evidence=options["override_evidence"],
            )
        except CatalogInvalid as invalid:
            for message in invalid.errors:
                self.stderr.write(message)
            count = len(invalid.errors)
            noun = "problem" if count == 1 else "problems"
            raise CommandError(f"{path}: {count} {noun}; nothing was changed") from None
        self.stdout.write(report.summary())


def read_text(path: str, stdin) -> str:
    if path == "-":
        return stdin.read()
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"cannot read {path}: not UTF-8 text") from None


def user_named(username: str):
    user_model = get_user_model()
    try:
        return user_model.objects.get(**{user_model.USERNAME_FIELD: username})
    except user_model.DoesNotExist:
        raise CommandError(f'no user named "{username}"') from None
