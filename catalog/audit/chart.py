"""The report's chart as server-side SVG geometry: issue rate and Wilson interval per stratum.

No chart JavaScript (the Content-Security-Policy allows none inline, and none
is needed): this computes coordinates, templates/audit/partials/_chart.svg draws them.
"""

from dataclasses import dataclass

from catalog.audit.report import Report, stratum_label

WIDTH = 720
LABEL_WIDTH = 260
RIGHT_MARGIN = 24
ROW_HEIGHT = 28
TOP = 28  # room for the axis labels
BOTTOM = 12
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class ChartRow:
    label: str
    y: float  # the row's middle
    low_x: float
    high_x: float
    rate_x: float | None  # None: nothing reviewed yet
    title: str  # the figures, for a tooltip and for screen readers
    overall: bool = False

    @property
    def whisker_top(self) -> float:
        return self.y - 6

    @property
    def whisker_bottom(self) -> float:
        return self.y + 6

    @property
    def rule_y(self) -> float:
        """Where the line that sets the overall row apart runs."""
        return self.y - ROW_HEIGHT / 2


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    label_x: int  # the labels end here, right-aligned
    ticks: list[tuple[float, str]]  # (x, "25 %")
    rows: list[ChartRow]
    axis_bottom: float


def _x(value: float) -> float:
    return round(LABEL_WIDTH + value * (WIDTH - LABEL_WIDTH - RIGHT_MARGIN), 1)


def _title(label: str, rate, low: float, high: float, reviewed: int) -> str:
    if rate is None:
        return f"{label}: nothing reviewed yet"
    return (
        f"{label}: issue rate {rate:.1%} (95% interval {low:.1%} to {high:.1%}),"
        f" {reviewed} reviewed"
    )


def report_chart(report: Report) -> Chart:
    """One row per stratum and one for the overall estimate, on a 0-100 % axis."""
    rows = []
    for n, row in enumerate(report.rows):
        label = stratum_label(row.stratum)
        low, high = row.interval
        rows.append(
            ChartRow(
                label=label,
                y=TOP + ROW_HEIGHT * n + ROW_HEIGHT / 2,
                low_x=_x(low),
                high_x=_x(high),
                rate_x=None if row.issue_rate is None else _x(row.issue_rate),
                title=_title(label, row.issue_rate, low, high, row.reviewed),
            )
        )
    overall = report.overall
    low, high = overall.interval
    rows.append(
        ChartRow(
            label="overall (weighted)",
            y=TOP + ROW_HEIGHT * len(report.rows) + ROW_HEIGHT / 2 + 8,
            low_x=_x(low),
            high_x=_x(high),
            rate_x=None if overall.issue_rate is None else _x(overall.issue_rate),
            title=_title("overall", overall.issue_rate, low, high, overall.reviewed),
            overall=True,
        )
    )
    height = int(rows[-1].y + ROW_HEIGHT / 2 + BOTTOM)
    return Chart(
        width=WIDTH,
        height=height,
        plot_left=LABEL_WIDTH,
        plot_right=WIDTH - RIGHT_MARGIN,
        label_x=LABEL_WIDTH - 10,
        ticks=[(_x(t), f"{t:.0%}") for t in TICKS],
        rows=rows,
        axis_bottom=height - BOTTOM,
    )
