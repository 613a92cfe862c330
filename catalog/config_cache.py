"""The configuration a decision reads, kept by each worker process for a few seconds.

A decision needs its automation, with its intents, do-not-automate rules and
segment policies: four queries, and the objects they make, on every decision,
for rows that change rarely. Each process keeps the last set it read for
HANDRAIL_CONFIG_CACHE_SECONDS (5 by default; 0 turns it off), so an edit of an
automation's settings or of those rows reaches decisions, and the schemas a
reviewer's edits are checked against, within that time. The kill switches and
modes never wait for it: a decision reads them afresh when it is recorded, and
so does every action attempt (catalog/policy.py).
"""

import time

from django.conf import settings

from catalog.models import Automation

# What a decision and its guardrails read through the automation's managers.
DECISION_RELATED = ("intents", "do_not_automate", "segments")

# automation id -> (monotonic time it is good until, the automation with its rows prefetched)
_kept: dict[int, tuple[float, Automation]] = {}


def automation_config(automation_id: int) -> Automation:
    """The automation with its intents, rules and segment policies: this process's copy if fresh.

    Callers only read it (the copy is shared by the process's decisions). Its
    own switch and mode may be as old as the rest: what acts reads them afresh.
    """
    now = time.monotonic()
    kept = _kept.get(automation_id)
    if kept is not None and kept[0] > now:
        return kept[1]
    automation = Automation.objects.prefetch_related(*DECISION_RELATED).get(pk=automation_id)
    seconds = settings.HANDRAIL_CONFIG_CACHE_SECONDS
    if seconds:
        _kept[automation_id] = (now + seconds, automation)
    return automation


def intent_schema(automation_id: int, name: str) -> dict | None:
    """The arguments schema of the automation's intent `name`, None if it has no such intent."""
    intents = automation_config(automation_id).intents.all()
    return next((i.arguments_schema for i in intents if i.name == name), None)


def automation_config_forget() -> None:
    """Drop every copy (tests)."""
    _kept.clear()
