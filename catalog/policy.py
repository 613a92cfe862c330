"""Whether an automation may act for a segment: the kill switches and modes, stated once.

A run may act (send its action) only while its automation is switched on, its
segment is not switched off, and its effective mode (the segment's own mode
if its policy sets one, else the automation's) is approve or autonomous. The
segment-policy guardrail reads this from the configuration a decision loaded;
an action attempt reads it afresh (`policy_now`) right before it reserves a
send, so a switch holds for everything not yet sent.

`policy_lock` orders the two: a change of switch or mode holds the
automation's lock exclusively while it commits, a reservation holds it shared
while it reads the policy and writes its attempt. So every attempt reserved
after a change has committed sees the change, and a change waits for the
reservations already under way (which were allowed) to commit first.
"""

from dataclasses import dataclass

from django.db import transaction

from .models import Automation, Mode, SegmentPolicy

ACTING_MODES = frozenset({Mode.APPROVE, Mode.AUTONOMOUS})


@dataclass(frozen=True)
class Policy:
    """An automation's switch and mode, with its segment's policy if it has one."""

    segment: str
    automation_enabled: bool
    automation_mode: str
    segment_enabled: bool | None = None  # None: the segment has no policy
    segment_mode: str = ""  # "": the policy leaves the mode to the automation

    @property
    def mode(self) -> str:
        """The effective mode: the segment's if its policy sets one, else the automation's."""
        return self.segment_mode or self.automation_mode

    @property
    def switched_off(self) -> str:
        """Which kill switch is off, in words; "" when neither is."""
        if not self.automation_enabled:
            return "the automation is switched off"
        if self.segment_enabled is False:
            return f"segment {self.segment} is switched off"
        return ""

    @property
    def acts(self) -> bool:
        """True when a run under this policy may send its action now."""
        return not self.switched_off and self.mode in ACTING_MODES

    def why_not(self) -> str:
        """What stopped a run under this policy from acting, in words; "" when nothing did."""
        if not self.automation_enabled:
            return "the automation switched off"
        if self.segment_enabled is False:
            return f"segment {self.segment} switched off"
        if self.mode not in ACTING_MODES:
            whose = f"segment {self.segment}" if self.segment_mode else "the automation"
            return f"{whose} switched to {self.mode} mode"
        return ""


def policy_of(automation: Automation, segment: str) -> Policy:
    """The policy from an automation as loaded (its `segments` prefetched or not)."""
    found = None
    if segment:
        found = next((p for p in automation.segments.all() if p.key == segment), None)
    return Policy(
        segment=segment,
        automation_enabled=automation.enabled,
        automation_mode=automation.mode,
        segment_enabled=None if found is None else found.enabled,
        segment_mode="" if found is None else found.mode,
    )


# One plain statement, the same on PostgreSQL and SQLite: it runs before every attempt, and
# the ORM's two correlated subqueries cost several times its execution to build.
_POLICY_SQL = (
    'SELECT a."enabled", a."mode", p."enabled", p."mode"'  # noqa: S608 (model names)
    f' FROM "{Automation._meta.db_table}" a'
    f' LEFT JOIN "{SegmentPolicy._meta.db_table}" p'
    ' ON p."automation_id" = a."id" AND p."key" = %s'
    ' WHERE a."id" = %s'
)


def policy_now(*, automation_id: int, segment: str) -> Policy:
    """The policy as committed right now, read in one query."""
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(_POLICY_SQL, [segment or None, automation_id])
        automation_enabled, automation_mode, segment_enabled, segment_mode = cursor.fetchone()
    return Policy(
        segment=segment,
        automation_enabled=bool(automation_enabled),
        automation_mode=automation_mode,
        segment_enabled=None if segment_enabled is None else bool(segment_enabled),
        segment_mode=segment_mode or "",
    )


# A constant for this lock's class, so Handrail's advisory locks never meet another app's.
_LOCK_CLASS = 0x48524C  # "HRL"


def policy_lock(*, automation_id: int, exclusive: bool) -> None:
    """Take the automation's policy lock for the rest of the caller's transaction.

    PostgreSQL: a transaction-level advisory lock (no row is locked, so the hot
    path's reads of the automation stay free). SQLite runs one writing
    transaction at a time (IMMEDIATE), which orders them already.
    """
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [_LOCK_CLASS, automation_id])
