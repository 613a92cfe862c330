"""Decision providers behind one interface; adding one is adding a module and a registry entry."""

from catalog.models import Automation

from .base import Provider, ProviderCall, ProviderResult
from .openai import OpenAIProvider
from .rules import RulesProvider

PROVIDERS: dict[str, Provider] = {
    OpenAIProvider.name: OpenAIProvider(),
    RulesProvider.name: RulesProvider(),
}

__all__ = ["PROVIDERS", "Provider", "ProviderCall", "ProviderResult", "provider_for"]


def provider_for(automation: Automation) -> Provider:
    """The provider named by automation.provider; an unknown name is a configuration bug."""
    try:
        return PROVIDERS[automation.provider]
    except KeyError:
        raise LookupError(f"unknown decision provider {automation.provider!r}") from None
