"""PII policy: restricted data is redacted before it is sent to a model host that is not private."""

from urllib.parse import urlparse

from django.conf import settings

from automations.pii import pii_redact
from automations.providers import provider_for
from catalog.models import DataClassification

from .base import GuardrailContext, passed


def model_host(automation) -> tuple[str, str]:
    """(hostname, host:port) the automation's model calls go to, as its provider says."""
    url = urlparse(provider_for(automation).endpoint(automation))
    return (url.hostname or "").lower(), url.netloc.lower()


def host_is_private(hostname: str, netloc: str) -> bool:
    """Whether HANDRAIL_PRIVATE_MODEL_HOSTS names this host (with or without its port)."""
    private = {host.strip().lower() for host in settings.HANDRAIL_PRIVATE_MODEL_HOSTS}
    return hostname in private or netloc in private


class PiiPolicyCheck:
    name = "pii_policy"
    stage = "before"

    def check(self, ctx: GuardrailContext):
        automation = ctx.automation
        if not provider_for(automation).remote:
            return passed(
                self.name, f"provider {automation.provider} runs locally: no redaction needed"
            )
        classification = automation.data_classification
        if classification != DataClassification.RESTRICTED:
            return passed(self.name, f"data is {classification}: no redaction needed")
        hostname, netloc = model_host(automation)
        if host_is_private(hostname, netloc):
            return passed(
                self.name, f"model host {hostname} is private: no redaction needed", host=hostname
            )
        ctx.document, counts = pii_redact(ctx.document)
        if not counts:
            return passed(self.name, "no PII found", redactions={}, host=hostname)
        summary = ", ".join(f"{count} {kind}" for kind, count in counts.items())
        return passed(
            self.name,
            f"redacted {summary} before sending to {hostname}",
            redactions=counts,
            host=hostname,
        )
