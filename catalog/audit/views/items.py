"""Working through a sample, one item at a time: blind answer (or skip), then the verdict.

Every page works without JavaScript (forms POST and redirect with 303); with
htmx the forms and the previous/next links swap `#audit-panel` in place and
push the item's URL, as the review console does.
"""

from django.contrib import messages
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, push_url

from catalog.audit.item_panel import (
    audit_item_detail,
    blind_form,
    blind_submission,
    item_panel,
    verdict_form,
)
from catalog.audit.verdicts import (
    AuditInvalid,
    audit_blind_record,
    audit_reveal,
    audit_verdict_record,
    blind_comparison,
)
from catalog.models import AuditVerdict

from .common import HttpResponseSeeOther, compliance_required, partial

TEMPLATE = "audit/item.html"
STATUS_KEY = "audit_status"


def _template(request) -> str:
    return f"{TEMPLATE}#panel" if partial(request) else TEMPLATE


def _render(request, item, *, status: str = "", status_code: int = 200, **panel):
    context = {**item_panel(item, **panel), "status": status}
    return render(request, _template(request), context, status=status_code)


def _show(request, pk: int, *, status: str = ""):
    """Item `pk` in place (htmx, its URL pushed), else a 303 to its page."""
    url = reverse("audit:item", args=[pk])
    if not partial(request):
        request.session[STATUS_KEY] = status
        return HttpResponseSeeOther(url)
    return push_url(_render(request, audit_item_detail(pk), status=status), url)


@compliance_required
@require_GET
def item_page(request, pk: int):
    item = audit_item_detail(pk)
    if partial(request) and request.htmx.target == "blind-fields":
        form = blind_form(item, intent_name=request.GET.get("intent", ""))
        return render(request, f"{TEMPLATE}#blind-fields", {"blind": form, "item": item})
    status = request.session.pop(STATUS_KEY, "")
    blind = None
    if "intent" in request.GET and item.revealed_at is None:
        blind = blind_form(item, intent_name=request.GET["intent"])
    return _render(request, item, status=status, blind=blind)


@compliance_required
@require_POST
def item_blind(request, pk: int):
    item = audit_item_detail(pk)
    data = request.POST
    if "show_fields" in data:  # the no-JavaScript way to switch the form to another intent
        return _render(request, item, blind=blind_form(item, intent_name=data.get("intent", "")))
    intent, arguments, errors = blind_submission(item, data)
    if not errors:
        try:
            audit_blind_record(item_id=pk, intent=intent, arguments=arguments, by=request.user)
        except AuditInvalid as exc:
            errors = exc.errors
    if errors:
        form = blind_form(item, intent_name=data.get("intent", ""), submitted=data, errors=errors)
        return _render(request, item, blind=form, status_code=422)
    return _show(request, pk, status="Blind answer recorded: here is what was done.")


@compliance_required
@require_POST
def item_reveal(request, pk: int):
    audit_reveal(item_id=pk, by=request.user)
    return _show(request, pk)


@compliance_required
@require_POST
def item_verdict(request, pk: int):
    item = audit_item_detail(pk)
    data = request.POST
    verdict = data.get("verdict", "")
    try:
        audit_verdict_record(
            item_id=pk,
            verdict=verdict,
            # A compliant verdict drops the category a disagreement may have filled in.
            category=data.get("category", "") if verdict == AuditVerdict.ISSUE else "",
            note=data.get("note", ""),
            by=request.user,
        )
    except AuditInvalid as exc:
        item = audit_item_detail(pk)
        form = verdict_form(item, blind_comparison(item), submitted=data, errors=exc.errors)
        return _render(request, item, verdict=form, status_code=422)
    number = item.position + 1
    status = f"Recorded {verdict} for item {number} (run {item.run_id})."
    following = item.sample.items.filter(position__gt=item.position).order_by("position").first()
    if following is not None:
        return _show(request, following.pk, status=status)
    messages.success(request, f"{status} That was the last item of the sample.")
    url = reverse("audit:sample", args=[item.sample_id])
    return HttpResponseClientRedirect(url) if partial(request) else HttpResponseSeeOther(url)
