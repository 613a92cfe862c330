"""Configuration changes on the trail: one entry per historical record, whatever wrote it.

django-simple-history records every save of the configuration people edit
(automations, intents, segment policies, do-not-automate rules, tokens), from
the loader, the admin (its revert form included) and the owner console alike.
Its signal is the one place all of them pass, so the trail listens there
rather than in each write path; the entry is written in the same transaction
as the record.
"""

from django.db import models
from simple_history.signals import post_create_historical_record

from catalog.audit.trail import trail_append

# The configuration models; audit items keep history too, but their verdicts are audit facts.
CONFIG_MODELS = frozenset(
    {"catalog.Automation", "catalog.Intent", "catalog.SegmentPolicy", "catalog.DoNotAutomateRule"}
    | {"catalog.ApiToken"}
)
# Historical bookkeeping, not configuration.
_SKIPPED = {"history_id", "history_date", "history_change_reason", "history_type", "history_user"}


def config_change_record(sender, instance, history_instance, history_user=None, **kwargs) -> None:
    """Append the configuration change `history_instance` records."""
    opts = instance._meta
    if opts.label not in CONFIG_MODELS:
        return
    values = {
        field.attname: getattr(history_instance, field.attname)
        for field in history_instance._meta.concrete_fields
        if field.attname not in _SKIPPED and not isinstance(field, models.BinaryField)
    }
    automation_id = instance.pk if opts.model_name == "automation" else values.get("automation_id")
    trail_append(
        kind="config",
        automation_id=automation_id,
        data={
            "model": opts.label,
            "object_id": instance.pk,
            "change": {"+": "created", "~": "changed", "-": "deleted"}[
                history_instance.history_type
            ],
            "reason": history_instance.history_change_reason or "",
            "by": history_user.get_username() if history_user else None,
            "at": history_instance.history_date,
            "values": values,
        },
    )


def config_trail_connect() -> None:
    post_create_historical_record.connect(config_change_record, dispatch_uid="config_trail")
