"""What set_mode and set_switch share: the automation, the person, and how a refusal ends."""

import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from catalog.governance.changes import GovernanceRefused
from catalog.models import Automation, SegmentPolicy


def governance_arguments(parser) -> None:
    parser.add_argument("slug", help="The automation.")
    parser.add_argument("--reason", required=True, help="Why; kept in the history and the trail.")
    parser.add_argument("--segment", default="", metavar="KEY", help="Only this segment.")
    parser.add_argument("--by", default=None, metavar="USERNAME", help="Who asks for it.")


def automation_named(slug: str, segment: str) -> Automation:
    automation = Automation.objects.filter(slug=slug).first()
    if automation is None:
        raise CommandError(f"no automation {slug}")
    if segment:
        try:
            SegmentPolicy._meta.get_field("key").run_validators(segment)
        except ValidationError as error:
            raise CommandError(f"--segment {segment!r}: {' '.join(error.messages)}") from None
    return automation


def user_named(username: str | None):
    if username is None:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f'no user named "{username}"')
    return user


def refused(command, refusal: GovernanceRefused) -> None:
    """One line per problem on standard error, exit status 1 (contracts section 6)."""
    for line in refusal.lines:
        command.stderr.write(line)
    sys.exit(1)
