"""The promotion evidence as a small server-side SVG: the override rate, its interval, the limit.

Coordinates only; templates/catalog/console/_evidence_bar.svg draws them (no
chart JavaScript: the Content-Security-Policy allows none inline, none is needed).
"""

import math
from dataclasses import dataclass

from catalog.governance.evidence import Evidence

WIDTH = 320
HEIGHT = 50
LEFT = 10
RIGHT = 10
LABEL_Y = 10  # the limit's label, above the bar
BAR_Y = 24  # the interval's middle
AXIS_Y = 46  # the tick labels' baseline


@dataclass(frozen=True)
class EvidenceBar:
    width: int
    height: int
    left: float
    right: float
    bar_y: float
    axis_y: float
    label_y: float
    low_x: float
    high_x: float
    rate_x: float | None  # None: nothing reviewed yet
    limit_x: float
    limit_label: str
    ticks: list[tuple[float, str]]
    within: bool  # the upper bound is at most the limit
    title: str

    @property
    def interval_width(self) -> float:
        return round(max(self.high_x - self.low_x, 1.0), 1)  # a point interval stays visible

    @property
    def interval_top(self) -> float:
        return self.bar_y - 5

    @property
    def limit_top(self) -> float:
        return self.label_y + 3

    @property
    def limit_bottom(self) -> float:
        return self.bar_y + 10

    @property
    def label_anchor(self) -> str:
        """The limit's label runs left of its line when the line is near the right end."""
        return "end" if self.limit_x > (self.left + self.right) / 2 else "start"


def evidence_bar(evidence: Evidence) -> EvidenceBar:
    """The override rate's Wilson 95 % interval against the allowed maximum, on a fitting axis."""
    # Up to twice the limit, or far enough to show the interval, in steps of 5 %.
    top = min(1.0, max(2 * evidence.max_override, math.ceil(evidence.high * 20) / 20, 0.05))

    def x(value: float) -> float:
        return round(LEFT + min(value, top) / top * (WIDTH - LEFT - RIGHT), 1)

    rate = evidence.rate
    return EvidenceBar(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        bar_y=BAR_Y,
        axis_y=AXIS_Y,
        label_y=LABEL_Y,
        low_x=x(evidence.low),
        high_x=x(evidence.high),
        rate_x=None if rate is None else x(rate),
        limit_x=x(evidence.max_override),
        ticks=[(x(0.0), "0%"), (x(top), f"{top:.0%}")],
        limit_label=f"limit {evidence.max_override:.1%}",
        within=evidence.reviewed > 0 and evidence.high <= evidence.max_override,
        title=_title(evidence),
    )


def _title(evidence: Evidence) -> str:
    limit = f"at most {evidence.max_override:.1%} allowed"
    if evidence.rate is None:
        return f"No reviewed cases in the last {evidence.window_days} days; {limit}"
    return (
        f"Override rate {evidence.rate:.1%} ({evidence.overridden} of {evidence.reviewed}),"
        f" 95% interval {evidence.low:.1%} to {evidence.high:.1%}; {limit}"
    )
