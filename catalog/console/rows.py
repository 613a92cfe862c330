"""What the modes and switches pages show: one row for the automation, one per segment policy."""

from dataclasses import dataclass, field

from catalog.console.evidence_bar import EvidenceBar, evidence_bar
from catalog.governance.changes import RANK
from catalog.governance.evidence import Evidence, promotion_evidence
from catalog.models import Automation, GovernanceChange
from catalog.selectors import InFlight, last_governance_changes, runs_in_flight


@dataclass
class ModeRow:
    segment: str  # "": the whole automation
    label: str
    mode: str  # the effective mode
    inherits: bool  # a segment that follows the automation's mode
    evidence: Evidence
    bar: EvidenceBar
    last_change: GovernanceChange | None
    targets: list[tuple[str, str]] = field(default_factory=list)  # (mode, "Promote"|"Demote")

    @property
    def slot(self) -> str:
        return f"segment-{self.segment}" if self.segment else "automation"

    @property
    def rate_text(self) -> str:
        rate = self.evidence.rate
        return "" if rate is None else f"{rate:.1%}"

    @property
    def interval_text(self) -> str:
        return f"{self.evidence.low:.1%} to {self.evidence.high:.1%}"

    @property
    def limit_text(self) -> str:
        return f"{self.evidence.max_override:.1%}"


@dataclass
class SwitchRow:
    segment: str
    label: str
    on: bool
    last_change: GovernanceChange | None
    in_flight: InFlight

    @property
    def slot(self) -> str:
        return f"segment-{self.segment}" if self.segment else "automation"


def _targets(mode: str) -> list[tuple[str, str]]:
    return [
        (other, "Promote" if RANK[other] > RANK[mode] else "Demote")
        for other in sorted(RANK, key=RANK.get, reverse=True)
        if other != mode
    ]


def mode_rows(automation: Automation) -> list[ModeRow]:
    """The automation's mode and each segment's, with the evidence a promotion would need."""
    changes = last_governance_changes(automation, kind=GovernanceChange.Kind.MODE)
    places = [("", "Whole automation", automation.mode, False)]
    places += [
        (p.key, f"Segment {p.key}", p.mode or automation.mode, not p.mode)
        for p in automation.segments.all()
    ]
    rows = []
    for segment, label, mode, inherits in places:
        evidence = promotion_evidence(automation, segment=segment)
        rows.append(
            ModeRow(
                segment=segment,
                label=label,
                mode=mode,
                inherits=inherits,
                evidence=evidence,
                bar=evidence_bar(evidence),
                last_change=changes.get(segment),
                targets=_targets(mode),
            )
        )
    return rows


def switch_rows(automation: Automation) -> list[SwitchRow]:
    """The automation's kill switch and each segment's, with the runs each would meet now."""
    changes = last_governance_changes(automation, kind=GovernanceChange.Kind.SWITCH)
    overall, per_segment = runs_in_flight(automation)
    rows = [SwitchRow("", "Whole automation", automation.enabled, changes.get(""), overall)]
    rows += [
        SwitchRow(
            p.key,
            f"Segment {p.key}",
            p.enabled,
            changes.get(p.key),
            per_segment.get(p.key, InFlight()),
        )
        for p in automation.segments.all()
    ]
    return rows
