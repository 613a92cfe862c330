"""What an owner looks at before changing an automation: the what-if preview and the diagram.

Both answer whoever may see the automation's page (catalog.selectors
automations_visible_to), and 404 to everyone else, as that page does.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from catalog.selectors import automations_visible_to

from .diagram import automation_diagram as diagram_of
from .whatif import (
    CORRECTED_FIGURES,
    OUTCOMES,
    WINDOW_DAYS,
    figure_rows,
    move_lines,
    settings_changes,
    whatif_preview,
)
from .whatif_form import WhatIfForm

WHATIF_FRAGMENT = "catalog/partials/_whatif.html"


@login_required
@require_GET
def automation_whatif(request, slug: str):
    """The preview of `?min_confidence=&mode=&segment=&rule_...` (whatif_form) as HTML.

    The fragment alone for htmx, inside a page otherwise; 400 with the
    fragment's list of errors for parameters it cannot preview.
    """
    automation = get_object_or_404(
        automations_visible_to(request.user).prefetch_related("segments"), slug=slug
    )
    form = WhatIfForm(request.GET)
    context = {"automation": automation, "form": form, "window_days": WINDOW_DAYS}
    status = 400
    if form.is_valid():
        result = whatif_preview(automation=automation, proposal=form.proposal())
        context |= {
            "result": result,
            "changes": settings_changes(result.before_settings, result.after_settings),
            "rows": figure_rows(result, OUTCOMES),
            "corrected_rows": figure_rows(result, CORRECTED_FIGURES),
            "moves": move_lines(result),
        }
        status = 200
    template = WHATIF_FRAGMENT if request.htmx else "catalog/whatif.html"
    return render(request, template, context, status=status)


@login_required
@require_GET
def automation_diagram(request, slug: str):
    """The automation's transaction diagram as an SVG image, drawn from its configuration."""
    automation = get_object_or_404(
        automations_visible_to(request.user).prefetch_related(
            "intents", "segments", "do_not_automate"
        ),
        slug=slug,
    )
    svg = render_to_string("catalog/partials/_diagram.svg", {"diagram": diagram_of(automation)})
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["Cache-Control"] = "private, no-cache"
    return response
