"""Catalog pages: the list of automations a user may see, one automation in full, its labels.

Views check access, call a selector and render; the reads (and their fixed
query counts) live in catalog/selectors.py and catalog/history.py.
"""

import re
from datetime import date

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from automations.services.labels import labels_count, labels_export

from .governance.readiness import readiness_checklist
from .history import configuration_history
from .selectors import (
    api_key_state,
    automation_status,
    automations_in_full_visible_to,
    automations_visible_to,
    can_export_labels,
    can_manage,
    catalog_rows_for,
    intents_shown,
    user_roles,
)


# The front door asks for no `next`: after logging in, the landing picks the start page.
@login_required(redirect_field_name=None)
def home(request):
    rows = list(catalog_rows_for(request.user))
    for automation in rows:
        automation.status_badges = automation_status(automation)
    context = {"automations": rows, "has_role": bool(user_roles(request.user))}
    return render(request, "catalog/automation_list.html", context)


@login_required
def automation_detail(request, slug: str):
    automation = get_object_or_404(automations_in_full_visible_to(request.user), slug=slug)
    context = {
        "automation": automation,
        "intents": intents_shown(automation),
        "api_key_state": api_key_state(request.user, automation),
        "history": configuration_history(automation),
        "can_manage": can_manage(request.user, automation),
        "can_export_labels": can_export_labels(request.user, automation),
        "readiness": readiness_checklist(automation),
    }
    return render(request, "catalog/automation_detail.html", context)


# Label downloads: training data for the automation's model.

LABEL_FORMATS = {
    "openai-chat": ("application/jsonl; charset=utf-8", "jsonl"),
    "csv": ("text/csv; charset=utf-8", "csv"),
}
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
ROWS_HEADER = "X-Handrail-Rows"


def _since(value: str) -> date | None:
    """`?since=YYYY-MM-DD` as a date; ValueError for anything else."""
    if not value:
        return None
    if not ISO_DATE.fullmatch(value):
        raise ValueError(value)
    return date.fromisoformat(value)


@login_required
@require_GET
def automation_labels(request, slug: str, fmt: str):
    """Stream the automation's labels as OpenAI chat JSONL or CSV (`?since=YYYY-MM-DD`)."""
    automation = get_object_or_404(automations_visible_to(request.user), slug=slug)
    if not can_export_labels(request.user, automation):
        raise PermissionDenied("only the automation's owners, admins and compliance export labels")
    try:
        since = _since(request.GET.get("since", ""))
    except ValueError:
        return HttpResponseBadRequest(
            "since must be a date written YYYY-MM-DD, e.g. ?since=2025-01-31\n",
            content_type="text/plain; charset=utf-8",
        )
    content_type, extension = LABEL_FORMATS[fmt]
    lines = labels_export(automation=automation, since=since, fmt=fmt)
    response = StreamingHttpResponse(lines, content_type=content_type)
    # The page's progress bar counts the lines that arrive against this (static/js/downloads.js).
    response[ROWS_HEADER] = str(labels_count(automation=automation, since=since, fmt=fmt))
    suffix = f"-since-{since.isoformat()}" if since else ""
    filename = f"{automation.slug}-labels{suffix}.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
