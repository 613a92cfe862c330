"""The configuration a decision reads, cached per process under the automation's config version.

A decision reads the automation with its run (one query) and needs its
intents, do-not-automate rules and segment policies too. Those change rarely
and every write to them bumps Automation.config_version (database triggers,
so no write path escapes), so a worker keeps the last set it loaded for each
automation and reuses it while the version it just read is the same. The
kill switch is still read fresh right before every action attempt.
"""

from django.db.models import QuerySet, prefetch_related_objects

from catalog.models import Automation

# What run_decide and the guardrails read through the automation's managers.
DECISION_RELATED = ("intents", "do_not_automate", "segments")

# automation id -> ((created_at, config_version), {related name: prefetched queryset});
# one entry per automation, replaced when its version moves on. created_at
# tells a recreated automation (a restored database) from the one cached.
_loaded: dict[int, tuple[tuple, dict[str, QuerySet]]] = {}


def automation_config_attach(automation: Automation) -> None:
    """Give `automation` its decision-time related objects, from the cache when still current.

    `automation` must have been read moments ago: its config_version decides.
    On a miss the objects are loaded now, so they are at least as new as that
    version, and kept under it. The querysets prefetch_related made are kept
    and handed to every later instance of the automation, already evaluated:
    building one per relation per decision cost more than the rest of this.
    """
    version = (automation.created_at, automation.config_version)
    cached = _loaded.get(automation.pk)
    if cached is not None and cached[0] == version:
        automation.__dict__.setdefault("_prefetched_objects_cache", {}).update(cached[1])
        return
    prefetch_related_objects([automation], *DECISION_RELATED)
    prefetched = automation._prefetched_objects_cache
    _loaded[automation.pk] = (version, {name: prefetched[name] for name in DECISION_RELATED})


def automation_config_forget() -> None:
    """Drop every cached configuration (tests)."""
    _loaded.clear()
