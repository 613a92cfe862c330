"""Samples: the list, the draw form, one sample's strata and items, and its report."""

import json
from datetime import timedelta

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from catalog.audit.arguments import (
    DEFAULT_MIN_PER_STRATUM,
    DIMENSIONS,
    SampleInvalid,
    sample_arguments,
)
from catalog.audit.chart import report_chart
from catalog.audit.outcomes import OUTCOMES
from catalog.audit.report import report_csv, report_json, sample_report, stratum_label
from catalog.audit.sampling import NothingToSample, sample_draw
from catalog.models import AuditSample, AuditVerdict, Automation

from .common import HttpResponseSeeOther, compliance_required

ITEMS_LISTED = 500


@compliance_required
@require_GET
def sample_list(request):
    samples = (
        AuditSample.objects.select_related("automation", "created_by")
        .annotate(
            item_count=Count("items"),
            reviewed=Count("items", filter=~Q(items__verdict="")),
            issues=Count("items", filter=Q(items__verdict=AuditVerdict.ISSUE)),
        )
        .order_by("-kind", "-created_at", "-id")  # standing queues first
    )
    return render(request, "audit/sample_list.html", {"samples": samples})


def _form_context(data, errors: dict) -> dict:
    today = timezone.localdate()
    stratify_sent = "stratify_sent" in data
    return {
        "values": {
            "name": data.get("name", ""),
            "since": data.get("since", (today - timedelta(days=30)).isoformat()),
            "until": data.get("until", (today + timedelta(days=1)).isoformat()),
            "size": data.get("size", ""),
            "rate": data.get("rate", ""),
            "segments": data.get("segments", ""),
            "min_per_stratum": data.get("min_per_stratum", DEFAULT_MIN_PER_STRATUM),
            "seed": data.get("seed", ""),
            "automations": data.getlist("automation"),
            "outcomes": data.getlist("outcome"),
            "stratify": data.getlist("stratify") if stratify_sent else ["outcome", "segment"],
        },
        "errors": errors,
        "automations": Automation.objects.order_by("name").only("slug", "name"),
        "outcome_choices": OUTCOMES,
        "dimension_choices": DIMENSIONS,
    }


@compliance_required
@require_http_methods(["GET", "POST"])
def sample_new(request):
    if request.method == "GET":
        return render(request, "audit/sample_new.html", _form_context(request.GET, {}))
    data = request.POST
    try:
        arguments = sample_arguments(
            name=data.get("name"),
            since=data.get("since"),
            until=data.get("until"),
            size=data.get("size"),
            rate=data.get("rate"),
            automations=data.getlist("automation"),
            outcomes=data.getlist("outcome"),
            segments=data.get("segments"),
            stratify=",".join(data.getlist("stratify")),
            min_per_stratum=data.get("min_per_stratum"),
            seed=data.get("seed"),
        )
        sample = sample_draw(arguments=arguments, by=request.user)
    except SampleInvalid as exc:
        context = _form_context(data, exc.errors)
        return render(request, "audit/sample_new.html", context, status=422)
    except NothingToSample as exc:
        context = _form_context(data, {"form": f"{exc}: widen the window or the filters"})
        return render(request, "audit/sample_new.html", context, status=422)
    count = sample.items.count()
    messages.success(request, f"Drew {count} item(s) with seed {sample.seed}.")
    return HttpResponseSeeOther(reverse("audit:sample", args=[sample.pk]))


@compliance_required
@require_GET
def sample_detail(request, pk: int):
    sample = get_object_or_404(
        AuditSample.objects.select_related("automation", "created_by"), pk=pk
    )
    report = sample_report(sample)
    items = list(
        sample.items.order_by("position").only(
            "pk", "position", "run_id", "verdict", "category", "revealed_at", "blind_at"
        )[:ITEMS_LISTED]
    )
    first_open = sample.items.filter(verdict="").order_by("position").first()
    context = {
        "sample": sample,
        "report": report,
        "rows": [(stratum_label(row.stratum), row) for row in report.rows],
        "items": items,
        "items_cut": report.overall.sampled > len(items),
        "first_open": first_open,
        "first_item": sample.items.order_by("position").first(),
        "arguments": json.dumps(sample.arguments, indent=2),
    }
    return render(request, "audit/sample_detail.html", context)


@compliance_required
@require_GET
def sample_report_page(request, pk: int):
    sample = get_object_or_404(AuditSample, pk=pk)
    report = sample_report(sample)
    context = {
        "sample": sample,
        "report": report,
        "rows": [(stratum_label(row.stratum), row) for row in report.rows],
        "chart": report_chart(report),
    }
    return render(request, "audit/report.html", context)


def _download(content: str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@compliance_required
@require_GET
def sample_report_csv(request, pk: int):
    sample = get_object_or_404(AuditSample, pk=pk)
    csv_text = report_csv(sample_report(sample))
    return _download(csv_text, "text/csv; charset=utf-8", f"audit-sample-{sample.pk}-report.csv")


@compliance_required
@require_GET
def sample_report_json(request, pk: int):
    sample = get_object_or_404(AuditSample, pk=pk)
    body = json.dumps(report_json(sample_report(sample)), indent=2)
    return _download(body, "application/json", f"audit-sample-{sample.pk}-report.json")


@compliance_required
@require_GET
def sample_chart_svg(request, pk: int):
    sample = get_object_or_404(AuditSample, pk=pk)
    chart = report_chart(sample_report(sample))
    svg = render_to_string("audit/partials/_chart.svg", {"chart": chart, "standalone": True})
    return HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
