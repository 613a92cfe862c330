"""How the dashboards write their figures: counts, shares, durations, dollars; "—" for none."""

from django import template

from automations.metrics.charts import usd_text
from automations.timeline import format_ms

register = template.Library()
NONE = "—"


@register.filter
def count(value) -> str:
    return NONE if value is None else f"{value:,.0f}"


@register.filter
def share(value) -> str:
    """A rate in [0, 1] as a percentage with one decimal."""
    return NONE if value is None else f"{value * 100:.1f} %"


@register.filter
def duration(ms) -> str:
    return NONE if ms is None else format_ms(ms)


@register.filter
def usd(value) -> str:
    return NONE if value is None else usd_text(float(value))


@register.filter
def hours(value) -> str:
    return NONE if value is None else f"{value:,.1f} h"


@register.filter
def seconds(value) -> str:
    return NONE if value is None else format_ms(value * 1000)
