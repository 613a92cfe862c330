"""The configuration a decision reads, kept by each worker process for a few seconds.

A decision needs its automation's intents, do-not-automate rules and segment
policies: three queries, and the objects they make, on every decision, for
rows that change rarely. Each process keeps the last set it read for
HANDRAIL_CONFIG_CACHE_SECONDS (5 by default; 0 turns it off), so an edit of
those rows reaches decisions, and the schemas a reviewer's edits are checked
against, within that time. The kill switches and modes
never wait for it: a decision reads them afresh when it is recorded, and so
does every action attempt (catalog/policy.py).
"""

import time

from django.conf import settings
from django.db.models import prefetch_related_objects

from catalog.models import Automation

# What a decision and its guardrails read through the automation's managers.
DECISION_RELATED = ("intents", "do_not_automate", "segments")

# automation id -> (monotonic time it is good until, {related name: the prefetched rows})
_kept: dict[int, tuple[float, dict]] = {}


def automation_config_attach(automation: Automation) -> None:
    """Give `automation` its intents, rules and segment policies: this process's copy if fresh."""
    now = time.monotonic()
    kept = _kept.get(automation.pk)
    if kept is not None and kept[0] > now:
        automation.__dict__.setdefault("_prefetched_objects_cache", {}).update(kept[1])
        return
    prefetch_related_objects([automation], *DECISION_RELATED)
    seconds = settings.HANDRAIL_CONFIG_CACHE_SECONDS
    if seconds:
        prefetched = automation._prefetched_objects_cache
        _kept[automation.pk] = (
            now + seconds,
            {name: prefetched[name] for name in DECISION_RELATED},
        )


def intent_schema(automation_id: int, name: str) -> dict | None:
    """The arguments schema of the automation's intent `name`, None if it has no such intent."""
    automation = Automation(pk=automation_id)
    automation_config_attach(automation)
    return next((i.arguments_schema for i in automation.intents.all() if i.name == name), None)


def automation_config_forget() -> None:
    """Drop every copy (tests)."""
    _kept.clear()
