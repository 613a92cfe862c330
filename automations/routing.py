"""Where a decided run goes: effective mode × strictest guardrail verdict. Pure: no database."""

from collections.abc import Sequence
from dataclasses import dataclass

from automations.states import RunState

# The values of catalog.models.Mode and automations.models.Verdict, repeated
# here so that this table imports no models (tests keep them in step).
MODES = ("shadow", "suggest", "approve", "autonomous")
VERDICTS = ("pass", "review", "block")


@dataclass(frozen=True)
class Route:
    to_state: str
    review_kind: str | None  # "approve" | "suggest" | None
    reason: str


def _joined(reasons: Sequence[str]) -> str:
    return "; ".join(r for r in reasons if r)


def _with(reason: str, reasons: Sequence[str]) -> str:
    extra = _joined(reasons)
    return f"{reason}; {extra}" if extra else reason


def route_decide(
    *,
    mode: str,
    verdict: str,
    has_decision: bool,
    error: str = "",
    reasons: Sequence[str] = (),
) -> Route:
    """The next state, review kind and reason for a run; never acts without a decision."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; expected one of {VERDICTS}")
    if verdict == "block":
        return Route(RunState.BLOCKED.value, None, _joined(reasons) or "blocked by a guardrail")
    if mode == "shadow":
        what = (
            "recorded, never acts" if has_decision else f"no decision ({error or 'unknown error'})"
        )
        return Route(RunState.RECORDED.value, None, f"shadow mode: {what}")
    review_kind = "suggest" if mode == "suggest" else "approve"
    if not has_decision:
        return Route(RunState.AWAITING_REVIEW.value, review_kind, error or "no decision")
    if mode == "suggest":
        why = "suggest mode: a person acts on the draft"
        return Route(RunState.AWAITING_REVIEW.value, "suggest", _with(why, reasons))
    if mode == "approve":
        why = "approve mode: a person approves every action"
        return Route(RunState.AWAITING_REVIEW.value, "approve", _with(why, reasons))
    if verdict == "review":
        why = _joined(reasons) or "a guardrail asked for review"
        return Route(RunState.AWAITING_REVIEW.value, "approve", why)
    return Route(RunState.APPROVED.value, None, "autonomous: every guardrail passed")
