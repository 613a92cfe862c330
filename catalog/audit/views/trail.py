"""The trail's compliance page: its head, the last verification, and "verify now"."""

from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from catalog.audit.trail_status import trail_status, trail_verification_start
from catalog.models import TrailVerification

from .common import HttpResponseSeeOther, compliance_required, partial

TEMPLATE = "audit/trail.html"


@compliance_required
@require_GET
def trail_page(request):
    return render(request, TEMPLATE, {"status": trail_status()})


@compliance_required
@require_POST
def trail_verify(request):
    record = trail_verification_start(by=request.user)
    if partial(request):
        return _verification(request, record)
    return HttpResponseSeeOther(reverse("audit:trail"))


@compliance_required
@require_GET
def trail_verification(request, pk: int):
    """One verification's progress or result: the fragment the page polls while it runs."""
    record = get_object_or_404(TrailVerification.objects.select_related("by"), pk=pk)
    return _verification(request, record)


def _verification(request, record: TrailVerification):
    status = trail_status(now=timezone.now())
    context = {"status": status, "verification": record}
    return render(request, f"{TEMPLATE}#verification", context)
