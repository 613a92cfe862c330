"""Run pages: one run as a trace (its states, model calls, guardrails, review and attempts
on one time axis) and a list of recent runs to find one by automation or trace id.

Whoever may see the automation sees its runs (admins, compliance, its owner,
its assigned reviewers); anyone else gets a 404, as if the run did not exist.
"""

import re

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from automations.metrics.tracecontext import trace_bind
from automations.selectors import RUN_LIST_LIMIT, run_for_page, runs_visible_to
from catalog.models import Role
from catalog.selectors import has_role, reviewable_automations

from .run_page import run_overdue, run_page


@login_required
@require_GET
def run_detail(request, pk: int):
    run = run_for_page(pk, request.user)
    trace_bind(trace_id=run.trace_id, run_id=run.pk)  # what this request logs joins the run's
    # The review task's page is for those who work the automation's queue.
    may_review = (
        hasattr(run, "review_task")
        and reviewable_automations(request.user).filter(pk=run.automation_id).exists()
    )
    context = run_page(
        run,
        now=timezone.now(),
        is_admin=has_role(request.user, Role.ADMIN),
        may_review=may_review,
    )
    return render(request, "runs/detail.html", context)


TRACE_ID = re.compile(r"[0-9a-f]{32}")
SLUG = re.compile(r"[-a-zA-Z0-9_]+")


@login_required
@require_GET
def run_list(request):
    automation = request.GET.get("automation", "").strip()
    trace_id = request.GET.get("trace_id", "").strip().lower()
    overdue = request.GET.get("overdue") == "1"
    errors = []
    if automation and not SLUG.fullmatch(automation):
        errors.append("automation: not an automation's slug")
    if trace_id and not TRACE_ID.fullmatch(trace_id):
        errors.append("Trace id: 32 hexadecimal digits, as webhooks and logs carry it")
    now = timezone.now()
    runs = []
    if not errors:
        runs = runs_visible_to(
            request.user, automation_slug=automation, trace_id=trace_id, overdue=overdue, now=now
        )
    context = {
        "rows": [(run, run_overdue(run, now=now)) for run in runs],
        "automation": "" if errors else automation,
        "trace_id": trace_id,
        "overdue": overdue,
        "errors": errors,
        "limit": RUN_LIST_LIMIT,
    }
    return render(request, "runs/list.html", context, status=400 if errors else 200)
