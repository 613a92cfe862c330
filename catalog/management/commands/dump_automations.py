"""`manage.py dump_automations`: print the catalog in the file format load_automations reads."""

from django.core.management.base import BaseCommand

from catalog.loader import dump_catalog, render_catalog


class Command(BaseCommand):
    help = "Print every automation as YAML (default) or JSON, in the load_automations format."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["yaml", "json"], default="yaml")

    def handle(self, *args, **options):
        self.stdout.write(render_catalog(dump_catalog(), fmt=options["format"]), ending="")
