"""The what-if preview's counting, in SQL: a window of runs by what routing reads.

Routing a run needs its mode on each side (from its segment), whether it
ended blocked, where its confidence falls among the two thresholds, and
three rarer facts: a person corrected it, another guardrail asked for
review, the proposed rule matches its event. Each query below reads indexes
made for it (automations migration 0010), never a run's JSON:

- `all`: every run of the window by (segment class, blocked, band,
  corrected), from the covering index run_automation_created alone, joined
  to the corrected review tasks (the partial index review_overridden);
- `other`: the same for the runs another guardrail sent to review, from
  the partial index run_other_review alone (PostgreSQL);
- `hit`: the runs whose event the proposed rule matches (each event read
  once), with both facts.

`all` minus `other` is the runs no other guardrail sent to review; `hit`
splits each group into the runs the rule matches and the rest. The three
read one snapshot.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.db.models import BooleanField, Count, F, FilteredRelation, Func, IntegerField, Q, Value
from django.db.models import Case as SqlCase
from django.db.models import When as SqlWhen

from automations.models import Event, ReviewState, Run
from automations.routing import VERDICTS
from automations.selectors import OVERRIDDEN_OUTCOMES
from automations.states import RunState

from .event_sql import events_matching

if TYPE_CHECKING:
    from .whatif import Settings

# The guardrail whose verdict the preview judges again; every other one counts as recorded.
CONFIDENCE_CHECK = "confidence"
# PostgreSQL: room for the hashed sets of matching events and corrected runs, so that they
# stay in memory (a hashed subquery that no longer fits is scanned once per run).
PREVIEW_WORK_MEM = "64MB"
KEYS = ("segment_class", "blocked", "band", "corrected")
CORRECTED_TASK = "corrected_task"


@dataclass(frozen=True)
class Group:
    """Runs that routing cannot tell apart, and how many there are."""

    modes: tuple[str, str]  # the mode before and after
    blocked: bool
    band: int  # the confidence among the thresholds: 0 below both, 1 between, 2 at or above
    other_review: bool
    corrected: bool
    rule_hit: bool
    runs: int


def run_groups(
    *, automation_id: int, since: datetime, until: datetime, before: Settings, after: Settings
) -> list[Group]:
    """The window's runs with a proposed intent, grouped by what routing reads on both sides."""
    classes, segment_class = _segment_classes(before, after)
    window = Run.objects.filter(
        automation_id=automation_id, created_at__gte=since, created_at__lt=until
    )
    # Every proposed intent carries a numeric confidence (contracts section 4).
    runs = window.filter(confidence__isnull=False).alias(
        **{
            CORRECTED_TASK: FilteredRelation(
                "review_task",
                condition=Q(
                    review_task__state=ReviewState.DONE,
                    review_task__outcome__in=sorted(OVERRIDDEN_OUTCOMES),
                ),
            )
        }
    )
    keys = {
        "segment_class": segment_class,
        "blocked": _flag(Q(state=RunState.BLOCKED)),
        "band": ConfidenceBand(F("confidence"), before.min_confidence, after.min_confidence),
        "corrected": _flag(Q(**{f"{CORRECTED_TASK}__isnull": False})),
    }
    other_review = runs.filter(OtherVerdict("review"))
    queries = {
        "all": runs.annotate(**keys).values(*KEYS),
        "other": other_review.annotate(**keys).values(*KEYS),
    }
    if after.rule is not None:
        matching = events_matching(
            events=Event.objects.filter(automation_id=automation_id),
            field=after.rule.field,
            operator=after.rule.operator,
            value=after.rule.value,
        )
        queries["hit"] = (
            runs.filter(event_id__in=matching.values("pk"))
            .annotate(**keys, other_review=_flag(Q(pk__in=other_review.values("pk"))))
            .values(*KEYS, "other_review")
        )
    return _combine(_count(queries), classes)


def _count(queries: dict) -> dict[str, list[dict]]:
    """Each query's groups with their run counts, all read from one snapshot."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                if outermost:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute("SELECT set_config('work_mem', %s, true)", [PREVIEW_WORK_MEM])
        return {
            name: list(query.annotate(runs=Count("pk")).order_by())
            for name, query in queries.items()
        }


def _combine(counted: dict[str, list[dict]], classes: list[tuple[str, str]]) -> list[Group]:
    def key(row: dict, other_review: bool) -> tuple:
        blocked, corrected = bool(row["blocked"]), bool(row["corrected"])
        return (row["segment_class"], blocked, row["band"], other_review, corrected)

    groups: Counter = Counter()
    for row in counted["all"]:
        groups[key(row, False)] += row["runs"]
    for row in counted["other"]:
        groups[key(row, True)] += row["runs"]
        groups[key(row, False)] -= row["runs"]
    hits: Counter = Counter()
    for row in counted.get("hit", []):
        hits[key(row, bool(row["other_review"]))] += row["runs"]
    result = []
    for (segment_class, blocked, band, other, corrected), runs in sorted(groups.items()):
        hit = hits[segment_class, blocked, band, other, corrected]
        for rule_hit, count in ((True, hit), (False, runs - hit)):
            if count:
                modes = classes[segment_class]
                result.append(Group(modes, blocked, band, other, corrected, rule_hit, count))
    return result


def _segment_classes(before: Settings, after: Settings) -> tuple[list[tuple[str, str]], SqlCase]:
    """The (before, after) mode pairs runs can have, and the SQL giving each run its pair's index.

    Segments whose modes are the automation's on both sides share the default
    pair; so a handful of classes however many segments there are.
    """
    default = (before.mode, after.mode)
    classes = [default]
    members: dict[int, list[str]] = {}
    for segment in sorted(set(before.segment_modes) | set(after.segment_modes)):
        pair = (before.mode_of(segment), after.mode_of(segment))
        if pair == default:
            continue
        if pair not in classes:
            classes.append(pair)
        members.setdefault(classes.index(pair), []).append(segment)
    whens = [SqlWhen(segment__in=segments, then=Value(n)) for n, segments in members.items()]
    if not whens:
        return classes, SqlCase(default=Value(0), output_field=IntegerField())
    return classes, SqlCase(*whens, default=Value(0), output_field=IntegerField())


def _flag(condition) -> SqlCase:
    """True or false per run, for a Q or a boolean expression."""
    return SqlCase(
        SqlWhen(condition, then=Value(True)), default=Value(False), output_field=BooleanField()
    )


class ConfidenceBand(Func):
    """Where a confidence falls among two thresholds: 0 below both, 1 between, 2 at or above.

    `width_bucket` on PostgreSQL. With equal thresholds the bands are 0 and 2.
    """

    output_field = IntegerField()

    def __init__(self, confidence, first: float, second: float):
        super().__init__(confidence)
        self.low, self.high = sorted((float(first), float(second)))

    def as_postgresql(self, compiler, connection, **extra):
        confidence, params = compiler.compile(self.source_expressions[0])
        sql = f"width_bucket({confidence}, ARRAY[%s, %s]::double precision[])"
        return sql, [*params, self.low, self.high]

    def as_sqlite(self, compiler, connection, **extra):
        confidence, params = compiler.compile(self.source_expressions[0])
        sql = f"CASE WHEN {confidence} < %s THEN 0 WHEN {confidence} < %s THEN 1 ELSE 2 END"
        return sql, [*params, self.low, *params, self.high]


def band_below(band: int, threshold: float, first: float, second: float) -> bool:
    """Whether a confidence in `band` is below `threshold`, one of the band's two thresholds."""
    return band < (1 if threshold == min(first, second) else 2)


class OtherVerdict(Func):
    """True when a recorded verdict of another check than the confidence one is `verdict`.

    On PostgreSQL the condition is, to the letter, the predicate of the partial
    index run_other_review (automations migration 0010), which holds only the
    runs it is true for.
    """

    output_field = BooleanField()

    def __init__(self, verdict: str):
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; expected one of {VERDICTS}")
        super().__init__(F("verdicts"))
        self.verdict = verdict

    def as_postgresql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        path = f'$[*] ? (@.verdict == "{self.verdict}" && @.check != "{CONFIDENCE_CHECK}")'
        return f"jsonb_path_exists({column}, %s::jsonpath)", [*params, path]

    def as_sqlite(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        # The column comes from the compiler; every value is a parameter.
        sql = (
            f"EXISTS (SELECT 1 FROM json_each({column}) AS verdict"  # noqa: S608
            " WHERE json_extract(verdict.value, '$.verdict') = %s"
            " AND json_extract(verdict.value, '$.check') <> %s)"
        )
        return sql, [*params, self.verdict, CONFIDENCE_CHECK]
