"""Record a compliance verdict on one sampled run (contracts section 7)."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from catalog.audit.verdicts import AuditInvalid, audit_verdict_record
from catalog.models import AuditSampleItem, AuditVerdict


class Command(BaseCommand):
    help = "Record compliant or issue on an audit sample item; compliance staff and admins only."

    def add_arguments(self, parser):
        parser.add_argument("item_id", type=int)
        parser.add_argument("verdict", choices=AuditVerdict.values)
        parser.add_argument("--category", default="", help="what kind of issue (issues only)")
        parser.add_argument("--note", default="")
        parser.add_argument("--by", required=True, metavar="USERNAME")

    def handle(self, *args, item_id, verdict, category, note, by, **options):
        user = get_user_model().objects.filter(username=by).first()
        if user is None:
            raise CommandError(f"--by: no user {by}")
        try:
            item = audit_verdict_record(
                item_id=item_id, verdict=verdict, category=category, note=note, by=user
            )
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        except AuditSampleItem.DoesNotExist:
            raise CommandError(f"no audit sample item {item_id}") from None
        except AuditInvalid as exc:
            raise CommandError(
                "\n".join(f"--{field}: {message}" for field, message in exc.errors.items())
            ) from None
        what = f"{item.verdict} ({item.category})" if item.category else item.verdict
        self.stdout.write(f"item {item.pk} (run {item.run_id}): {what}, recorded by {by}")
