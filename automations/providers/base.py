"""The interface every decision provider implements (contracts section 4)."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from catalog.models import Automation


@dataclass
class ProviderCall:
    """What one provider call cost and returned; the caller stores it as a ModelCall row."""

    provider: str
    model: str = ""
    base_url: str = ""
    request_id: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0
    raw_output: str = ""
    error: str = ""


@dataclass
class ProviderResult:
    """A validated decision, or None and the human-readable reason why not."""

    decision: dict | None
    error: str
    call: ProviderCall


class Provider(Protocol):
    """Turns one event document into a decision; never raises for model or network trouble."""

    name: str
    # Whether the event leaves the machine (the PII policy redacts restricted data then).
    remote: bool
    # Whether calls cost money (the budget guardrail counts them).
    bills: bool
    # How many calls one decision may make at most, each within the latency budget.
    attempts: int
    # Whether an automation must name a model (the loader refuses one without).
    needs_model: bool

    def endpoint(self, automation: Automation) -> str:
        """The URL the automation's events are sent to; "" when they stay on this machine."""
        ...

    def decide(self, *, automation: Automation, document: dict) -> ProviderResult: ...
