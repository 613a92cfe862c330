"""Action adapters by name; adding one is adding a module and a line here."""

from .base import ACTION_CONFIG_FIELDS, Adapter, ConfigField, Delivery
from .webhook import WebhookAdapter

ADAPTERS: dict[str, Adapter] = {adapter.name: adapter for adapter in [WebhookAdapter()]}


class UnknownAdapter(LookupError):
    def __init__(self, name: str):
        super().__init__(f"unknown action adapter {name!r}")
        self.name = name


def adapter_for(name: str) -> Adapter:
    """The registered adapter called `name`; raises UnknownAdapter otherwise."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise UnknownAdapter(name) from None


__all__ = [
    "ACTION_CONFIG_FIELDS",
    "ADAPTERS",
    "Adapter",
    "ConfigField",
    "Delivery",
    "UnknownAdapter",
    "adapter_for",
]
