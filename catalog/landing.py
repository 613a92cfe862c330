"""Where a person lands after logging in without a `next` page (LOGIN_REDIRECT_URL)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_GET

from .selectors import works_from_the_queues


@login_required
@require_GET
def landing(request):
    """The review queues for those whose work is deciding cases; the catalog for everyone else."""
    return redirect("review:home" if works_from_the_queues(request.user) else "home")
