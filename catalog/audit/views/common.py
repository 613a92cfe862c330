"""What every compliance page shares: who gets in, and the 303 after a POST."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect

from catalog.audit.access import may_audit


class HttpResponseSeeOther(HttpResponseRedirect):
    status_code = 303


def compliance_required(view):
    """Log in first; then only compliance staff and admins get past (403 for everyone else)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not may_audit(request.user):
            raise PermissionDenied("audit pages are for compliance staff and admins")
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def partial(request) -> bool:
    """An htmx swap wants the panel alone; a history restore wants the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request
