"""A run as a trace: its spans on one time axis, and the geometry of the SVG that draws them.

Pure: the spans come from the rows the run page's selector loaded (no query
here), and the chart is numbers that templates/runs/partials/_timeline.html
turns into SVG. Every span carries its name, duration and outcome as text, so
the drawing never relies on colour alone.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from automations.models import Run
from automations.services.actions import IN_FLIGHT
from automations.services.reviews import REJECT_REASONS
from automations.services.runs import IN_FLIGHT_STATES
from automations.states import RunState

# States a run is still in, not ended in: their span runs until now.
ONGOING_STATES = IN_FLIGHT_STATES | {RunState.AWAITING_REVIEW}
STATE_OUTCOMES = {
    RunState.BLOCKED: "block",
    RunState.REJECTED: "block",
    RunState.HALTED: "error",
    RunState.FAILED: "error",
}
REJECT_REASON_TEXTS = dict(REJECT_REASONS)
# At equal start times: the guardrails' verdict before the state it led to, and a state
# before what happened inside it.
KIND_ORDER = {"guardrails": 0, "state": 1, "model": 2, "review": 3, "attempt": 4}
# What each outcome means, in words (the table, the tooltips).
OUTCOME_WORDS = {
    "ok": "ok",
    "error": "error",
    "review": "sent to review",
    "block": "blocked",
    "ongoing": "in progress",
    "end": "final state",
}


@dataclass(frozen=True)
class Span:
    """One thing that happened to a run, from `start` to `end` (None: a moment)."""

    kind: str  # state | model | guardrails | review | attempt
    name: str  # the row's name: "deciding", "model call 1", "review", "attempt 2"
    start: datetime
    end: datetime | None
    label: str  # written next to it: "1.2 s", "HTTP 503, 120 ms"
    outcome: str = "ok"  # a key of OUTCOME_WORDS
    detail: str = ""  # who, why, what came back

    @property
    def outcome_text(self) -> str:
        return OUTCOME_WORDS[self.outcome]

    @property
    def duration(self) -> str:
        """How long it took, in words; "" for a moment."""
        if self.end is None:
            return ""
        took = format_ms(_ms(self.start, self.end))
        return f"{took} so far" if self.outcome == "ongoing" else took


def format_ms(ms: float) -> str:
    """A duration for a trace: "0 ms", "850 ms", "1.2 s", "42 s", "3 min 5 s", "2 h 4 min"."""
    ms = max(0, round(ms))
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 10:
        return f"{seconds:.1f}".removesuffix(".0") + " s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _ms(start: datetime, end: datetime) -> float:
    return (end - start) / timedelta(milliseconds=1)


def _so_far(start: datetime, now: datetime) -> tuple[datetime, str]:
    end = max(start, now)
    return end, f"{format_ms(_ms(start, end))} so far"


def run_spans(run: Run, *, now: datetime) -> list[Span]:
    """Every span of `run` in the order they started (reads only prefetched rows)."""
    transitions = list(run.transitions.all())
    spans = [
        *state_spans(run, transitions, now=now),
        *model_call_spans(run),
        *guardrail_spans(run, transitions),
        *review_spans(run, now=now),
        *attempt_spans(run, now=now),
    ]
    return sorted(spans, key=lambda span: (span.start, KIND_ORDER[span.kind]))


def state_spans(run: Run, transitions: list, *, now: datetime) -> list[Span]:
    """One span per state the run was in, from the transition into it to the next one."""
    spans = []
    for step, following in zip(
        transitions, [*transitions[1:], None][: len(transitions)], strict=True
    ):
        detail = step.actor + (f": {step.reason}" if step.reason else "")
        outcome = STATE_OUTCOMES.get(step.to_state, "ok")
        if following is not None:
            label = format_ms(_ms(step.at, following.at))
            spans.append(
                Span("state", step.to_state, step.at, following.at, label, outcome, detail)
            )
        elif run.state in ONGOING_STATES:
            end, label = _so_far(step.at, now)
            spans.append(Span("state", step.to_state, step.at, end, label, "ongoing", detail))
        else:
            outcome = outcome if outcome != "ok" else "end"
            spans.append(Span("state", step.to_state, step.at, None, "final", outcome, detail))
    return spans


def model_call_spans(run: Run) -> list[Span]:
    """Each model call, from when it was sent (recorded minus latency) to when it was recorded."""
    spans = []
    for number, call in enumerate(run.model_calls.all(), start=1):
        start = call.created_at - timedelta(milliseconds=call.latency_ms)
        what = f"{call.provider} {call.model}".strip()
        detail = (
            f"{what}, prompt v{call.prompt_version}, {call.input_tokens}/{call.output_tokens}"
            f" tokens, {call.cost_usd:.4f} USD"
        )
        label = format_ms(call.latency_ms)
        if call.error:
            label, detail = f"{label}, error", f"{detail}; error: {call.error}"
        outcome = "error" if call.error else "ok"
        spans.append(
            Span("model", f"model call {number}", start, call.created_at, label, outcome, detail)
        )
    return spans


def guardrail_spans(run: Run, transitions: list) -> list[Span]:
    """The guardrails' verdicts as one moment: the decision (they carry no time of their own)."""
    verdicts = run.verdicts or []
    decided_at = next((t.at for t in transitions if t.from_state == RunState.DECIDING), None)
    if not verdicts or decided_at is None:
        return []
    counts = Counter(verdict.get("verdict") for verdict in verdicts)
    tally = ", ".join(
        f"{counts[word]} {word}" for word in ("pass", "review", "block") if counts[word]
    )
    outcome = "block" if counts["block"] else "review" if counts["review"] else "ok"
    label = f"{len(verdicts)} check{'s' if len(verdicts) != 1 else ''}: {tally}"
    detail = "; ".join(
        f"{v.get('check')} {v.get('verdict')}" + (f": {v['reason']}" if v.get("reason") else "")
        for v in verdicts
    )
    return [Span("guardrails", "guardrails", decided_at, None, label, outcome, detail)]


def review_spans(run: Run, *, now: datetime) -> list[Span]:
    """The review, from the claim to the decision (or until now while it is claimed)."""
    # A missing reverse one-to-one raises an AttributeError subclass: getattr's default applies.
    task = getattr(run, "review_task", None)
    if task is None:
        return []
    person = task.decided_by or task.claimed_by
    who = person.get_username() if person is not None else "nobody"
    if task.decided_at is not None:
        took = task.review_ms if task.review_ms is not None else 0
        start = task.claimed_at or task.decided_at - timedelta(milliseconds=took)
        outcome_text = task.get_outcome_display().lower()
        detail = f"{who}: {outcome_text}"
        if task.reject_reason:
            detail += f" ({REJECT_REASON_TEXTS.get(task.reject_reason, task.reject_reason)})"
        label = f"{format_ms(took)}, {outcome_text}"
        return [Span("review", "review", start, task.decided_at, label, "ok", detail)]
    if task.claimed_at is None:
        return []  # waiting in the queue: the awaiting_review state shows it
    end, label = _so_far(task.claimed_at, now)
    detail = f"claimed by {who}"
    if task.lease_expires_at is not None:
        detail += f", lease until {task.lease_expires_at:%H:%M:%S}"
    return [Span("review", "review", task.claimed_at, end, label, "ongoing", detail)]


def attempt_spans(run: Run, *, now: datetime) -> list[Span]:
    """Each delivery attempt of the run's action: status code, duration, error (no excerpt)."""
    action = getattr(run, "action", None)
    if action is None:
        return []
    spans = []
    for attempt in action.attempts.all():
        name = f"attempt {attempt.number}"
        if attempt.error == IN_FLIGHT:
            if run.state == RunState.EXECUTING:
                end, label = _so_far(attempt.started_at, now)
                spans.append(
                    Span("attempt", name, attempt.started_at, end, label, "ongoing", IN_FLIGHT)
                )
            else:
                spans.append(
                    Span("attempt", name, attempt.started_at, None, "no answer", "error", IN_FLIGHT)
                )
            continue
        end = attempt.started_at + timedelta(milliseconds=attempt.duration_ms)
        status = f"HTTP {attempt.status_code}" if attempt.status_code else "no answer"
        ok = attempt.status_code is not None and 200 <= attempt.status_code < 300
        label = f"{status}, {format_ms(attempt.duration_ms)}"
        detail = f"{status}: {attempt.error}" if attempt.error else status
        outcome = "ok" if ok and not attempt.error else "error"
        spans.append(Span("attempt", name, attempt.started_at, end, label, outcome, detail))
    return spans


# The drawing, in the SVG's own units (its viewBox); CSS scales it to the page.
WIDTH = 960
PLOT_LEFT = 200  # the row names sit left of it
PLOT_RIGHT = 880  # room on the right for the label of a span that ends last
AXIS_HEIGHT = 30
ROW_HEIGHT = 24
BAR_HEIGHT = 14
MARKER_RADIUS = 6
LABEL_GAP = 6
CHAR_WIDTH = 6.6  # a 12-unit font's average glyph: enough to keep labels inside the picture
NAME_CHARS = 28
MIN_BAR_WIDTH = 2.0
MAX_TICKS = 6
# Tick spacings a reader can add up: 1-2-5 steps, then minutes, hours and days.
TICK_STEPS_MS = [
    *(m * 10**e for e in range(0, 4) for m in (1, 2, 5)),
    *(s * 1000 for s in (10, 15, 30, 60, 120, 300, 600, 900, 1800)),
    *(h * 3_600_000 for h in (1, 2, 3, 6, 12, 24, 48, 96, 168)),
]


@dataclass(frozen=True)
class Row:
    """One span placed on the chart: its bar (or marker) and its label."""

    span: Span
    index: int
    top: float
    x: float
    width: float  # 0 for a marker
    label_x: float
    label_anchor: str  # "start" | "end"
    label_inside: bool  # written on the bar itself (no room either side)
    offset: str  # when it started, from the event's arrival: "+1.2 s"

    height = ROW_HEIGHT
    bar_height = BAR_HEIGHT

    @property
    def marker(self) -> bool:
        return self.span.end is None

    @property
    def bar_y(self) -> float:
        return self.top + (ROW_HEIGHT - BAR_HEIGHT) / 2

    @property
    def text_y(self) -> float:
        return self.top + ROW_HEIGHT / 2 + 4

    @property
    def name(self) -> str:
        name = self.span.name
        return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"

    @property
    def marker_points(self) -> str:
        """A diamond centred on the moment, as an SVG polygon's points."""
        cx, cy, r = self.x, self.top + ROW_HEIGHT / 2, MARKER_RADIUS
        return f"{cx:g},{cy - r:g} {cx + r:g},{cy:g} {cx:g},{cy + r:g} {cx - r:g},{cy:g}"


@dataclass(frozen=True)
class Tick:
    x: float
    text: str


@dataclass(frozen=True)
class Chart:
    origin: datetime  # the event's arrival: x = PLOT_LEFT
    end: datetime  # the last thing that happened (now, for what is still going on)
    rows: list[Row]
    ticks: list[Tick]
    width: int = WIDTH
    plot_left: int = PLOT_LEFT
    axis_y: int = AXIS_HEIGHT

    @property
    def height(self) -> int:
        return AXIS_HEIGHT + ROW_HEIGHT * len(self.rows) + 6

    @property
    def total(self) -> str:
        return format_ms(_ms(self.origin, self.end))


def tick_step_ms(total_ms: float) -> int:
    """The smallest tick spacing that puts at most MAX_TICKS intervals on the axis."""
    for step in TICK_STEPS_MS:
        if total_ms / step <= MAX_TICKS:
            return step
    return TICK_STEPS_MS[-1] * (int(total_ms / TICK_STEPS_MS[-1] / MAX_TICKS) + 1)


def timeline_chart(spans: list[Span], *, origin: datetime) -> Chart:
    """Place `spans` on one axis from `origin` (the event's arrival) to the last span's end."""
    origin = min([origin, *(span.start for span in spans)])
    end = max([origin, *(span.end or span.start for span in spans)])
    total_ms = max(_ms(origin, end), 1.0)
    scale = (PLOT_RIGHT - PLOT_LEFT) / total_ms

    def x_at(moment: datetime) -> float:
        return round(PLOT_LEFT + _ms(origin, moment) * scale, 1)

    rows = [_row(span, index, x_at, origin) for index, span in enumerate(spans)]
    step = tick_step_ms(total_ms)
    ticks = [
        Tick(round(PLOT_LEFT + n * step * scale, 1), "0" if n == 0 else f"+{format_ms(n * step)}")
        for n in range(int(total_ms // step) + 1)
    ]
    return Chart(origin=origin, end=end, rows=rows, ticks=ticks)


def _row(span: Span, index: int, x_at, origin: datetime) -> Row:
    x = x_at(span.start)
    width = 0.0 if span.end is None else max(x_at(span.end) - x, MIN_BAR_WIDTH)
    reach = MARKER_RADIUS if span.end is None else 0
    text_width = len(span.label) * CHAR_WIDTH
    after, before = x + width + reach + LABEL_GAP, x - reach - LABEL_GAP
    if after + text_width <= WIDTH:
        anchor, label_x, inside = "start", after, False
    elif before - text_width >= PLOT_LEFT:
        anchor, label_x, inside = "end", before, False
    else:
        anchor, label_x, inside = "start", x + LABEL_GAP, True
    return Row(
        span=span,
        index=index,
        top=AXIS_HEIGHT + index * ROW_HEIGHT,
        x=x,
        width=round(width, 1),
        label_x=round(label_x, 1),
        label_anchor=anchor,
        label_inside=inside,
        offset=f"+{format_ms(_ms(origin, span.start))}",
    )
