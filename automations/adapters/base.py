"""The adapter interface: one approved intent in, one side effect out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from automations.models import Action, Run

# Receiver answers worth trying again with the same key (contracts section 5).
RETRYABLE_STATUS_CODES = frozenset({408, 409, 425, 429})

# A receiver's answer is stored as its status and at most this much of its body, cleaned.
EXCERPT_CHARS = 200
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class ConfigField:
    """One setting of an action as a catalog file writes it; the loader checks it by `kind`.

    Kinds: "url" (http or https, to a host the outbound address policy allows),
    "secret_env" (the name of an allowed variable that holds a secret), "text"
    (a non-empty string up to `max_length`), "number" and "integer" (from
    `minimum` to `maximum`; `above_minimum` refuses the minimum itself).
    """

    KINDS: ClassVar[frozenset[str]] = frozenset({"url", "secret_env", "text", "number", "integer"})

    kind: str
    required: bool = False
    minimum: float = 0
    maximum: float | None = None
    above_minimum: bool = False
    max_length: int | None = None

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown kind of action setting {self.kind!r}")


# Settings every action takes whatever its adapter: services/actions.py reads them.
ACTION_CONFIG_FIELDS = {"max_attempts": ConfigField("integer", minimum=1, maximum=20)}


@dataclass
class Delivery:
    """What one attempt at a side effect came to; adapters return it, they do not raise."""

    ok: bool
    status_code: int | None
    retryable: bool
    error: str  # "" when ok; human-readable ("receiver answered 404", "timed out after 10 s")
    response_excerpt: str  # response_excerpt() of the response body's beginning


def status_is_retryable(status_code: int) -> bool:
    """True for the answers that may succeed next time: 408, 409, 425, 429 and every 5xx."""
    return status_code in RETRYABLE_STATUS_CODES or 500 <= status_code <= 599


def response_excerpt(text: str) -> str:
    """At most EXCERPT_CHARS of `text`: whitespace runs become one space, other unprintables go.

    What a receiver answers is shown to people later: no control characters (terminal
    escapes, bidirectional overrides) and no more than a glance's worth.
    """
    text = _SPACES.sub(" ", text)
    return "".join(char for char in text if char.isprintable()).strip()[:EXCERPT_CHARS]


def delivery_failed(error: str, *, retryable: bool, status_code: int | None = None) -> Delivery:
    """A failed Delivery with nothing from the receiver."""
    return Delivery(
        ok=False, status_code=status_code, retryable=retryable, error=error, response_excerpt=""
    )


class Adapter(Protocol):
    """Maps an approved intent to one side effect; every attempt reuses the action's key."""

    name: str
    # The adapter's own settings, beside ACTION_CONFIG_FIELDS; the loader accepts no others.
    config_fields: dict[str, ConfigField]

    def timeout_seconds(self, config: dict) -> float:
        """The longest one attempt may take under `config`."""
        ...

    def deliver(self, *, action: Action, run: Run, config: dict, body: dict) -> Delivery:
        """Make one attempt at the side effect; never raise for a network or receiver problem."""
        ...

    def compensate(self, *, action: Action, run: Run, config: dict, body: dict) -> Delivery | None:
        """Make one attempt at undoing the side effect; None when there is nothing to undo."""
        ...
