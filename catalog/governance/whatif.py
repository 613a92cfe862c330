"""What-if: what a proposed threshold, mode or do-not-automate rule would have done.

The runs judged: the automation's runs created in the last WINDOW_DAYS days
that have a proposed intent (every run the model or the rules decided; a
proposed intent always carries a numeric confidence, contracts section 4).
Each is routed twice, under the current settings ("before") and under the
proposal ("after"), by this model:

- A run that ended `blocked` stays blocked, before and after (a kill switch
  or a guardrail stopped it). A proposed rule with effect `block` blocks
  every run whose event it matches. Blocked: no person, no action.
- The mode is the segment's own if its policy sets one, else the
  automation's (catalog/policy.py); kill switches are not part of a
  proposal and are not judged again.
- shadow: recorded only, whatever the guardrails said (no person, no action).
- suggest and approve: a person.
- autonomous: a person when a guardrail asks for review, else the run acts
  on its own. The confidence check is judged again against the threshold
  (a confidence below it asks for review); the other guardrails'
  verdicts count as recorded (intent risk, the do-not-automate rules in
  force then, a check that failed); a proposed rule with effect `review`
  asks for review on every run whose event it matches.

Routing itself is automations.routing.route_decide, the router decisions
use. Corrected cases are the runs people reviewed with an overriding
outcome (automations.selectors.OVERRIDDEN_OUTCOMES); a setting catches one
when it sends it to a person, lets it through when it acts on its own, and
neither when it blocks it or only records it.

The database does the counting (catalog/governance/whatif_sql.py): it
groups the runs by what routing reads (each side's mode, blocked, the
confidence among the two thresholds, another guardrail's review, corrected,
the proposed rule's match) and counts each group; the few groups are then
routed here.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.utils import timezone

from automations.routing import route_decide
from automations.states import RunState
from catalog.models import Automation, RuleEffect

from .whatif_sql import Group, band_below, run_groups

WINDOW_DAYS = 30
# What becomes of a run under one side's settings, in the order the fragment shows them.
OUTCOMES = ("person", "acts", "recorded", "blocked")
ROUTE_OUTCOMES = {
    RunState.AWAITING_REVIEW: "person",
    RunState.APPROVED: "acts",
    RunState.RECORDED: "recorded",
    RunState.BLOCKED: "blocked",
}


@dataclass(frozen=True)
class RuleProposal:
    """A do-not-automate rule to try: field, operator (matches|equals|contains), text, effect."""

    field: str
    operator: str
    value: str
    effect: str  # review | block


@dataclass(frozen=True)
class Proposal:
    """The change to preview; None / "" leave a setting as it is."""

    min_confidence: float | None = None
    mode: str = ""
    segment: str = ""  # with `mode`: that segment's mode changes, else the automation's
    rule: RuleProposal | None = None


@dataclass(frozen=True)
class Settings:
    """What routing reads, on one side of the comparison."""

    mode: str
    segment_modes: dict[str, str]  # segments whose policy sets a mode
    min_confidence: float
    rule: RuleProposal | None = None

    def mode_of(self, segment: str) -> str:
        return self.segment_modes.get(segment, self.mode)


@dataclass
class Side:
    """How many runs went each way under one side's settings, and the corrected cases among them."""

    person: int = 0
    acts: int = 0
    recorded: int = 0
    blocked: int = 0
    caught: int = 0  # corrected cases sent to a person
    let_through: int = 0  # corrected cases acting on their own
    stopped: int = 0  # corrected cases blocked or only recorded

    def add(self, outcome: str, runs: int, corrected: int) -> None:
        setattr(self, outcome, getattr(self, outcome) + runs)
        where = {"person": "caught", "acts": "let_through"}.get(outcome, "stopped")
        setattr(self, where, getattr(self, where) + corrected)


@dataclass
class WhatIf:
    """The comparison: the runs judged, each side's figures, and the runs that change course."""

    since: datetime
    until: datetime
    before_settings: Settings
    after_settings: Settings
    runs: int = 0
    corrected: int = 0
    before: Side = field(default_factory=Side)
    after: Side = field(default_factory=Side)
    moves: dict[tuple[str, str], int] = field(default_factory=dict)  # (before, after) -> runs

    def change(self, name: str) -> int:
        """After minus before, for one of Side's figures."""
        return getattr(self.after, name) - getattr(self.before, name)

    @property
    def changed(self) -> list[tuple[str, str, int]]:
        """(before, after, runs) for the runs whose outcome changes, most runs first."""
        rows = [(b, a, n) for (b, a), n in self.moves.items() if b != a]
        return sorted(rows, key=lambda row: (-row[2], OUTCOMES.index(row[0]), row[1]))


@dataclass(frozen=True)
class FigureRow:
    """One line of the preview's table: a figure before and after, and the change in words."""

    name: str
    label: str
    before: int
    after: int
    change: str


# Each figure: its label, and the words for more and for fewer.
FIGURE_WORDS = {
    "person": ("need a person", "more reviews", "fewer reviews"),
    "acts": ("act on their own", "more", "fewer"),
    "recorded": ("are only recorded (shadow)", "more", "fewer"),
    "blocked": ("are blocked", "more", "fewer"),
    "caught": ("corrected cases a person sees (caught)", "more caught", "fewer caught"),
    "let_through": (
        "corrected cases that act on their own (let through)",
        "more let through",
        "fewer let through",
    ),
    "stopped": ("corrected cases blocked or only recorded", "more", "fewer"),
}
CORRECTED_FIGURES = ("caught", "let_through", "stopped")
OUTCOME_WORDS = {
    "person": "a person",
    "acts": "acting on their own",
    "recorded": "only recorded",
    "blocked": "blocked",
}


def figure_rows(result: WhatIf, names: tuple[str, ...]) -> list[FigureRow]:
    """The table's lines for `names` (keys of FIGURE_WORDS), changes signed and in words."""
    rows = []
    for name in names:
        label, more, fewer = FIGURE_WORDS[name]
        change = result.change(name)
        if change > 0:
            words = f"+{change} ({change} {more})"
        elif change < 0:
            words = f"\u2212{-change} ({-change} {fewer})"
        else:
            words = "0 (same)"
        before, after = getattr(result.before, name), getattr(result.after, name)
        rows.append(FigureRow(name, label, before, after, words))
    return rows


def move_lines(result: WhatIf) -> list[str]:
    """The runs that change course, in words: "2 runs: acting on their own → a person"."""
    return [
        f"{runs} run{'s' if runs != 1 else ''}: {OUTCOME_WORDS[was]} → {OUTCOME_WORDS[will]}"
        for was, will, runs in result.changed
    ]


def current_settings(automation: Automation) -> Settings:
    """The automation's settings as they stand (its `segments` prefetched or not)."""
    return Settings(
        mode=automation.mode,
        segment_modes={p.key: p.mode for p in automation.segments.all() if p.mode},
        min_confidence=automation.min_confidence,
    )


def proposed_settings(current: Settings, proposal: Proposal) -> Settings:
    """The current settings with the proposal applied."""
    settings = current
    if proposal.min_confidence is not None:
        settings = replace(settings, min_confidence=proposal.min_confidence)
    if proposal.mode and proposal.segment:
        segment_modes = {**settings.segment_modes, proposal.segment: proposal.mode}
        settings = replace(settings, segment_modes=segment_modes)
    elif proposal.mode:
        settings = replace(settings, mode=proposal.mode)
    if proposal.rule is not None:
        settings = replace(settings, rule=proposal.rule)
    return settings


def settings_changes(before: Settings, after: Settings) -> list[str]:
    """The proposal in words, one line per setting it changes."""
    lines = []
    if after.min_confidence != before.min_confidence:
        lines.append(f"minimum confidence {before.min_confidence:.2f} → {after.min_confidence:.2f}")
    if after.mode != before.mode:
        lines.append(f"mode {before.mode} → {after.mode}")
    for segment in sorted(set(after.segment_modes) | set(before.segment_modes)):
        was, will = before.mode_of(segment), after.mode_of(segment)
        if was != will:
            whose = "" if segment in before.segment_modes else " (the automation's)"
            lines.append(f"segment {segment}: mode {was}{whose} → {will}")
    if after.rule is not None:
        rule = after.rule
        lines.append(
            f'a do-not-automate rule: {rule.field} {rule.operator} "{rule.value}",'
            f" effect {rule.effect}"
        )
    return lines


def whatif_preview(
    *, automation: Automation, proposal: Proposal, now: datetime | None = None
) -> WhatIf:
    """Both sides' figures over the last WINDOW_DAYS days, counted in one query.

    A proposed `matches` pattern must be one the database can run
    (event_sql.pattern_unreadable); whatif_form checks it.
    """
    until = now or timezone.now()
    before = current_settings(automation)
    result = WhatIf(
        since=until - timedelta(days=WINDOW_DAYS),
        until=until,
        before_settings=before,
        after_settings=proposed_settings(before, proposal),
    )
    groups = run_groups(
        automation_id=automation.pk,
        since=result.since,
        until=until,
        before=result.before_settings,
        after=result.after_settings,
    )
    for group in groups:
        was = _outcome(group, result, after=False)
        will = _outcome(group, result, after=True)
        corrected = group.runs if group.corrected else 0
        result.runs += group.runs
        result.corrected += corrected
        result.before.add(was, group.runs, corrected)
        result.after.add(will, group.runs, corrected)
        result.moves[was, will] = result.moves.get((was, will), 0) + group.runs
    return result


def _outcome(group: Group, result: WhatIf, *, after: bool) -> str:
    """Where a group's runs go on one side, by the router decisions use."""
    settings = result.after_settings if after else result.before_settings
    thresholds = (result.before_settings.min_confidence, result.after_settings.min_confidence)
    verdicts = []
    if group.blocked:
        verdicts.append("block")
    if group.other_review or band_below(group.band, settings.min_confidence, *thresholds):
        verdicts.append("review")
    if after and settings.rule is not None and group.rule_hit:
        verdicts.append("block" if settings.rule.effect == RuleEffect.BLOCK else "review")
    verdict = "block" if "block" in verdicts else "review" if verdicts else "pass"
    route = route_decide(mode=group.modes[after], verdict=verdict, has_decision=True)
    return ROUTE_OUTCOMES[route.to_state]
