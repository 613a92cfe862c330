"""Who may work audit samples: compliance staff and admins (contracts section 2)."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied

from catalog.models import Role
from catalog.selectors import has_role


def may_audit(user: AbstractBaseUser) -> bool:
    """Compliance staff and admins draw and work audit samples; nobody else sees them."""
    return has_role(user, Role.COMPLIANCE, Role.ADMIN)


def audit_check(user: AbstractBaseUser, *, doing: str = "record audit verdicts") -> None:
    """PermissionDenied, naming the user, unless they may audit."""
    if not may_audit(user):
        name = user.get_username() if user.is_authenticated else "anonymous"
        raise PermissionDenied(f"{name} may not {doing}: only compliance staff and admins may")
