"""The reviewer console: queues, claim the next task, review it, decide, release.

Every page works without JavaScript (forms POST and redirect with 303); with
htmx the decide and next forms swap `#review-panel` in place and push the new
task's URL. Views check the role, read the form and call one service.
"""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url

from automations.selectors import review_queues_for, review_task_detail
from automations.services.reviews import (
    AlreadyDecided,
    LeaseExpired,
    ReviewInvalid,
    RunNotAwaitingReview,
    review_claim_next,
    review_decide_and_claim_next,
    review_release,
)
from catalog.models import Role
from catalog.selectors import has_role, reviewable_automations

from .panels import (
    decision_status,
    edit_form,
    panel_mode,
    queue_rows,
    submitted_arguments,
    task_panel,
)

TASK_TEMPLATE = "review/task.html"
# The no-JavaScript flow carries "what just happened" across its 303 in the session.
STATUS_KEY = "review_status"
REFUSALS = (LeaseExpired, AlreadyDecided, RunNotAwaitingReview)


class HttpResponseSeeOther(HttpResponseRedirect):
    status_code = 303


def reviewer_required(view):
    """Log in first; then only reviewers and admins get past (403 for everyone else)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not has_role(request.user, Role.REVIEWER, Role.ADMIN):
            raise PermissionDenied("the review console is for reviewers")
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def _partial(request) -> bool:
    """An htmx swap wants the panel alone; a history restore wants the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


@reviewer_required
@require_GET
def home(request):
    queues = review_queues_for(request.user)
    context = {
        "queues": queue_rows(queues),
        "decided_today": sum(queue.decided_today for queue in queues),
        "status": request.session.pop(STATUS_KEY, ""),
    }
    return render(request, "review/home.html", context)


@reviewer_required
@require_POST
def next_task(request, slug: str):
    automation = get_object_or_404(reviewable_automations(request.user), slug=slug)
    task = review_claim_next(user=request.user, automation=automation)
    if task is not None:
        return _show_task(request, task.pk)
    empty = f"No pending tasks in {automation.name}."
    if _partial(request):
        return _queues_panel(request, status=empty, empty_queue=automation.name)
    messages.info(request, empty)
    return HttpResponseSeeOther(reverse("review:home"))


@reviewer_required
@require_GET
def task_page(request, pk: int):
    task = review_task_detail(pk, request.user)
    now = timezone.now()
    if _partial(request) and request.htmx.target == "argument-fields":
        form = edit_form(task, intent_name=request.GET.get("intent", ""))
        context = {"task": task, "form": form}
        return render(request, f"{TASK_TEMPLATE}#argument-fields", context)
    form = None
    if "intent" in request.GET:
        form = edit_form(task, intent_name=request.GET["intent"])
    status = request.session.pop(STATUS_KEY, "")
    context = task_panel(task, user=request.user, now=now, form=form, status=status)
    return render(request, _task_template(request), context)


@reviewer_required
@require_POST
def decide(request, pk: int):
    task = review_task_detail(pk, request.user)
    data = request.POST
    action = data.get("action", "")
    intent_name = data.get("intent") or None
    if "show_fields" in data and not action:
        # The no-JavaScript way to switch the form to another intent.
        form = edit_form(task, intent_name=intent_name or "")
        form.reject_reason, form.note = data.get("reject_reason", ""), data.get("note", "")
        return _render_task(request, task, form=form)
    if action == "release":
        try:
            review_release(task=task, user=request.user)
        except LeaseExpired as exc:
            return _refused(request, pk, str(exc))
        return _after(request, task, status=f"Released task {pk}; it is back in the queue.")
    arguments = None
    if action in ("approve", "use"):
        arguments, errors = submitted_arguments(task, intent_name or task_intent(task), data)
        if errors and panel_mode(task, request.user, timezone.now()) != "live":
            # Field errors on a form the reviewer may no longer submit would only mislead.
            return _refused(request, pk, "you do not hold a live lease on this task")
        if errors:
            return _invalid(request, task, errors)
    try:
        decided, following = review_decide_and_claim_next(
            task_id=pk,
            user=request.user,
            action=action,
            arguments=arguments,
            intent=intent_name,
            reject_reason=data.get("reject_reason", ""),
            note=data.get("note", ""),
        )
    except ReviewInvalid as exc:
        return _invalid(request, task, exc.errors)
    except REFUSALS as exc:
        return _refused(request, pk, str(exc))
    return _after(request, task, status=decision_status(decided), decided=True, following=following)


def task_intent(task) -> str:
    return (task.run.proposed_intent or {}).get("intent") or ""


def _task_template(request) -> str:
    return f"{TASK_TEMPLATE}#panel" if _partial(request) else TASK_TEMPLATE


def _render_task(request, task, *, status_code=200, **panel):
    context = task_panel(task, user=request.user, now=timezone.now(), **panel)
    return render(request, _task_template(request), context, status=status_code)


def _show_task(request, pk: int, *, status: str = ""):
    """The task's panel in place (htmx, with its URL pushed), else a 303 to its page."""
    url = reverse("review:task", args=[pk])
    if not _partial(request):
        if status:
            request.session[STATUS_KEY] = status
        return HttpResponseSeeOther(url)
    task = review_task_detail(pk, request.user)
    return push_url(_render_task(request, task, status=status), url)


def _queues_panel(request, *, status: str, empty_queue: str = ""):
    """The panel between tasks: what happened, and the queues with their Next buttons."""
    context = {
        "queues": queue_rows(review_queues_for(request.user)),
        "status": status,
        "empty_queue": empty_queue,
    }
    response = render(request, f"{TASK_TEMPLATE}#queues-panel", context)
    return push_url(response, reverse("review:home"))


def _after(request, task, *, status: str, decided: bool = False, following=None):
    """After a decision (or release): the next task of the queue, or the queues.

    `following` is the task a decision claimed along with it (None when the
    queue is empty); a release claims none, as the oldest task may be the one
    just put back.
    """
    if following is not None:
        return _show_task(request, following.pk, status=status)
    empty = f"No pending tasks in {task.automation.name}." if decided else ""
    if _partial(request):
        return _queues_panel(
            request,
            status=f"{status} {empty}".strip(),
            empty_queue=task.automation.name if decided else "",
        )
    request.session[STATUS_KEY] = status
    if empty:
        messages.info(request, empty)
    return HttpResponseSeeOther(reverse("review:home"))


def _invalid(request, task, errors: dict[str, str]):
    """Show the form again with the reviewer's input and the errors at their fields (422)."""
    data = request.POST
    form = edit_form(
        task,
        intent_name=data.get("intent") or task_intent(task),
        submitted=data,
        errors=errors,
    )
    return _render_task(request, task, form=form, status_code=422)


def _refused(request, pk: int, reason: str):
    """Nothing was decided (lease lost, decided already, run moved on): say so plainly."""
    message = f"Nothing was changed: {reason}."
    if not _partial(request):
        messages.error(request, message)
        return HttpResponseSeeOther(reverse("review:task", args=[pk]))
    task = review_task_detail(pk, request.user)
    return _render_task(request, task, refusal=message, status_code=409)
