"""The dashboards' charts as server-side SVG geometry. Pure: numbers in, coordinates out.

templates/metrics/partials/_chart.html draws them; no chart JavaScript (the
Content-Security-Policy allows none inline, and none is needed). Every bar and
point carries its figures as a <title>, every series a legend entry with its
own shape or dash, so nothing relies on colour alone; the page lists the same
figures in a table.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from automations.timeline import format_ms

from .figures import Figures, Point

WIDTH = 640
HEIGHT = 220
LEFT = 64  # room for the y axis' labels
RIGHT = 12
TOP = 12
BOTTOM = 30  # room for the x axis' labels
X_LABELS = 8  # at most this many labels under the x axis

OUTCOME_STACKS = (
    ("autonomous", "autonomous"),
    ("approved", "approved"),
    ("edited", "edited"),
    ("rejected", "rejected"),
    ("blocked", "blocked"),
)
LATENCY_LINES = (("p50", "decision p50"), ("p95", "decision p95"), ("p99", "decision p99"))


def count_text(value: float) -> str:
    return f"{value:,.0f}"


def rate_text(value: float) -> str:
    return f"{value:.0%}" if value in (0, 1) or value >= 0.1 else f"{value:.1%}"


def usd_text(value: float) -> str:
    """Dollars with cents; a fraction of a cent with four decimals."""
    return f"${value:,.2f}" if abs(value) >= 0.01 or value == 0 else f"${value:.4f}"


@dataclass(frozen=True)
class Tick:
    at: float
    text: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Line:
    css: str
    name: str
    paths: list[str]  # "x,y x,y ..." per unbroken stretch (a point without data breaks it)
    dots: list[Dot]


@dataclass(frozen=True)
class Rule:
    """A horizontal reference: a budget, a baseline, a threshold."""

    css: str
    name: str
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    desc: str
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    legend: list[tuple[str, str, str]] = field(default_factory=list)  # (css, name, shape)
    empty: bool = False
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM


def nice_top(value: float) -> tuple[float, int]:
    """The axis' top (1, 2, 2.5 or 5 times a power of ten, at or above `value`) and how many
    equal steps divide it into round numbers."""
    if value <= 0:
        return 1.0, 4
    power = 10 ** math.floor(math.log10(value))
    for mantissa, steps in ((1, 5), (2, 4), (2.5, 5), (5, 5), (10, 5)):
        if mantissa * power >= value * (1 - 1e-9):
            return mantissa * power, steps
    raise AssertionError("unreachable: 10 times the power is above the value")


class Frame:
    """Where the points and values of one chart land."""

    def __init__(self, starts: list[datetime], top: tuple[float, int], hourly: bool):
        self.starts, self.hourly = starts, hourly
        self.top, self.steps = top
        self.step = (WIDTH - RIGHT - LEFT) / max(1, len(starts))

    def x(self, index: int) -> float:
        return round(LEFT + self.step * (index + 0.5), 1)

    def y(self, value: float) -> float:
        span = HEIGHT - BOTTOM - TOP
        return round(HEIGHT - BOTTOM - span * min(value, self.top) / self.top, 1)

    def when(self, index: int) -> str:
        start = self.starts[index]
        return f"{start:%d %b %H:00}" if self.hourly else f"{start:%d %b}"

    def x_ticks(self) -> list[Tick]:
        every = max(1, math.ceil(len(self.starts) / X_LABELS))
        text = "%H:00" if self.hourly else "%d %b"
        return [
            Tick(self.x(i), start.strftime(text))
            for i, start in enumerate(self.starts)
            if i % every == 0
        ]

    def y_ticks(self, fmt: Callable[[float], str]) -> list[Tick]:
        values = [self.top * n / self.steps for n in range(self.steps + 1)]
        return [Tick(self.y(value), fmt(value)) for value in values]


def _line(frame: Frame, css: str, name: str, values: list[float | None], fmt) -> Line:
    paths, stretch, dots = [], [], []
    for index, value in enumerate(values):
        if value is None:
            if stretch:
                paths.append(" ".join(stretch))
            stretch = []
            continue
        x, y = frame.x(index), frame.y(value)
        stretch.append(f"{x},{y}")
        dots.append(Dot(x, y, f"{frame.when(index)}: {name} {fmt(value)}"))
    if stretch:
        paths.append(" ".join(stretch))
    return Line(css, name, paths, dots)


def _frame(series: list[Point], values: list[float], hourly: bool, floor: float = 0) -> Frame:
    return Frame([p.start for p in series], nice_top(max([floor, *values])), hourly)


def volume_chart(series: list[Point], *, hourly: bool) -> Chart:
    """Outcomes per point as stacked bars, runs received as a line."""
    totals = [sum(p.figures.outcomes.values()) for p in series]
    runs = [p.figures.runs for p in series]
    frame = _frame(series, totals + runs, hourly)
    width = round(frame.step * 0.7, 1)
    bars = []
    for index, point in enumerate(series):
        below = 0
        for key, name in OUTCOME_STACKS:
            n = point.figures.outcomes[key]
            if not n:
                continue
            top, bottom = frame.y(below + n), frame.y(below)
            bars.append(
                Bar(
                    x=round(frame.x(index) - width / 2, 1),
                    y=top,
                    width=width,
                    height=round(bottom - top, 1),
                    css=f"outcome-{key}",
                    title=f"{frame.when(index)}: {n:,} {name}",
                )
            )
            below += n
    return Chart(
        key="volume",
        title="Volume and outcomes",
        desc="Runs received per period (line) and how finished runs ended (stacked bars).",
        x_ticks=frame.x_ticks(),
        y_ticks=frame.y_ticks(count_text),
        bars=bars,
        lines=[_line(frame, "runs", "runs received", runs, count_text)],
        legend=[("runs", "runs received", "line")]
        + [(f"outcome-{key}", name, "bar") for key, name in OUTCOME_STACKS],
        empty=not any(runs) and not any(totals),
    )


def latency_chart(series: list[Point], *, hourly: bool, budget_ms: float | None) -> Chart:
    """Decision latency p50, p95 and p99 per point, against the latency budget."""
    values = {key: [p.figures.decision_latency_ms[key] for p in series] for key, _ in LATENCY_LINES}
    seen = [v for line in values.values() for v in line if v is not None]
    # The budget is drawn once the latencies come within a quarter of it; far below, it
    # would flatten them into the axis.
    near = bool(budget_ms) and max(seen, default=0) >= budget_ms / 4
    frame = _frame(series, seen, hourly, floor=budget_ms if near else 0)
    rules = []
    if near:
        text = f"budget {format_ms(budget_ms)}"
        rules.append(Rule("budget", "latency budget", frame.y(budget_ms), text))
    return Chart(
        key="latency",
        title="Decision latency",
        desc="From an event's arrival to its decision: p50, p95 and p99 per period.",
        x_ticks=frame.x_ticks(),
        y_ticks=frame.y_ticks(format_ms),
        lines=[_line(frame, key, name, values[key], format_ms) for key, name in LATENCY_LINES],
        rules=rules,
        legend=[(key, name, "line") for key, name in LATENCY_LINES]
        + [("budget", "latency budget", "rule")] * near,
        empty=not seen,
    )


def override_chart(series: list[Point], *, hourly: bool, baseline: Figures, margin: float) -> Chart:
    """Override rate per point against the baseline the drift alert compares it with."""
    rates = [p.figures.override_rate if p.figures.reviewed else None for p in series]
    reference = baseline.override_rate if baseline.reviewed else None
    threshold = None if reference is None else min(1.0, reference + margin)
    seen = [r for r in rates if r is not None]
    frame = _frame(series, seen + [threshold or 0], hourly)
    rules = []
    if reference is not None:
        rules = [
            Rule("baseline", "baseline", frame.y(reference), f"baseline {rate_text(reference)}"),
            Rule(
                "threshold",
                "alert threshold",
                frame.y(threshold),
                f"alert at {rate_text(threshold)}",
            ),
        ]
    return Chart(
        key="override",
        title="Override rate",
        desc="Edited and rejected over reviewed, per period, against its baseline.",
        x_ticks=frame.x_ticks(),
        y_ticks=frame.y_ticks(rate_text),
        lines=[_line(frame, "override", "override rate", rates, rate_text)],
        rules=rules,
        legend=[("override", "override rate", "line")]
        + [("baseline", "baseline", "rule"), ("threshold", "alert threshold", "rule")]
        * bool(rules),
        empty=not seen,
    )


def cost_chart(series: list[Point], *, hourly: bool) -> Chart:
    """Cost per 1,000 decisions per point (model calls and reviewers' time)."""
    costs = [p.figures.cost_per_1000_decisions_usd if p.figures.runs else None for p in series]
    seen = [c for c in costs if c is not None]
    frame = _frame(series, seen, hourly)
    width = round(frame.step * 0.7, 1)
    bars = [
        Bar(
            x=round(frame.x(i) - width / 2, 1),
            y=frame.y(cost),
            width=width,
            height=round(frame.y(0) - frame.y(cost), 1),
            css="cost",
            title=f"{frame.when(i)}: {usd_text(cost)} per 1,000 decisions",
        )
        for i, cost in enumerate(costs)
        if cost
    ]
    return Chart(
        key="cost",
        title="Cost per 1,000 decisions",
        desc="Model calls plus reviewers' time at the automation's hourly rate, per 1,000 runs.",
        x_ticks=frame.x_ticks(),
        y_ticks=frame.y_ticks(usd_text),
        bars=bars,
        legend=[("cost", "cost per 1,000 decisions", "bar")],
        empty=not seen,
    )
