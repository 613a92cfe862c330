"""The adapter interface: one approved intent in, one side effect out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from automations.models import Action, Run

# Receiver answers worth trying again with the same key (contracts section 5).
RETRYABLE_STATUS_CODES = frozenset({408, 409, 425, 429})

EXCERPT_CHARS = 500


@dataclass
class Delivery:
    """What one attempt at a side effect came to; adapters return it, they do not raise."""

    ok: bool
    status_code: int | None
    retryable: bool
    error: str  # "" when ok; human-readable ("receiver answered 404", "timed out after 10 s")
    response_excerpt: str  # first 500 chars of the response body


def status_is_retryable(status_code: int) -> bool:
    """True for the answers that may succeed next time: 408, 409, 425, 429 and every 5xx."""
    return status_code in RETRYABLE_STATUS_CODES or 500 <= status_code <= 599


def delivery_failed(error: str, *, retryable: bool, status_code: int | None = None) -> Delivery:
    """A failed Delivery with nothing from the receiver."""
    return Delivery(
        ok=False, status_code=status_code, retryable=retryable, error=error, response_excerpt=""
    )


class Adapter(Protocol):
    """Maps an approved intent to one side effect; every attempt reuses the action's key."""

    name: str

    def timeout_seconds(self, config: dict) -> float:
        """The longest one attempt may take under `config`."""
        ...

    def deliver(self, *, action: Action, run: Run, config: dict, body: dict) -> Delivery:
        """Make one attempt at the side effect; never raise for a network or receiver problem."""
        ...

    def compensate(self, *, action: Action, run: Run, config: dict, body: dict) -> Delivery | None:
        """Make one attempt at undoing the side effect; None when there is nothing to undo."""
        ...
