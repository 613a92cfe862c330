"""Dashboards: one per automation and one across every automation a user may see, and the
rebuild of the rollups (admins) with its progress.

Whoever may see an automation sees its dashboard (catalog.selectors, as the
automation's page); anyone else gets a 404. The figures part of the page
refreshes itself with htmx every minute; the page works without JavaScript.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from catalog.models import Role
from catalog.selectors import automations_visible_to, has_role

from .dashboards import dashboard
from .models import RollupRebuild
from .rebuilds import rebuild_start
from .windows import DEFAULT_WINDOW, WINDOWS

TEMPLATE = "metrics/dashboard.html"


def _page(request, automations, *, one: bool):
    window = request.GET.get("window", "") or DEFAULT_WINDOW
    errors = []
    if window not in WINDOWS:
        errors.append(f"window: one of {', '.join(WINDOWS)}, not {window[:20]!r}")
        window = DEFAULT_WINDOW
    context = {
        "board": dashboard(automations, window=window, now=timezone.now(), one=one),
        "errors": errors,
        "is_admin": has_role(request.user, Role.ADMIN),
    }
    partial = request.htmx and not request.htmx.history_restore_request
    template = f"{TEMPLATE}#figures" if partial else TEMPLATE
    return render(request, template, context, status=400 if errors else 200)


@login_required
@require_GET
def overview(request):
    return _page(request, list(automations_visible_to(request.user).order_by("slug")), one=False)


@login_required
@require_GET
def automation(request, slug: str):
    found = get_object_or_404(automations_visible_to(request.user), slug=slug)
    return _page(request, [found], one=True)


def _admin_only(request) -> None:
    if not has_role(request.user, Role.ADMIN):
        raise PermissionDenied("only admins rebuild the rollups")


@login_required
@require_POST
def rebuild(request):
    _admin_only(request)
    record = rebuild_start(by=request.user)
    if request.htmx:
        return render(
            request, "metrics/partials/_rebuild.html", {"rebuild": record, "is_admin": True}
        )
    return redirect("metrics:overview")


@login_required
@require_GET
def rebuild_progress(request, pk: int):
    """One rebuild's progress or result: the fragment the page polls while it runs."""
    _admin_only(request)
    record = get_object_or_404(RollupRebuild.objects.select_related("by"), pk=pk)
    return render(request, "metrics/partials/_rebuild.html", {"rebuild": record, "is_admin": True})
