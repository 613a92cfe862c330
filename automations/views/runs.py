"""The run page: one run as a trace (its states, model calls, guardrails, review and
attempts on one time axis), with where it stands if a worker must still move it.

Whoever may see the automation sees its runs (admins, compliance, its owner,
its assigned reviewers); anyone else gets a 404, as if the run did not exist.
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from automations.selectors import run_for_page
from catalog.models import Role
from catalog.selectors import has_role, reviewable_automations

from .run_page import run_page


@login_required
@require_GET
def run_detail(request, pk: int):
    run = run_for_page(pk, request.user)
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
