"""The configuration a decision reads, cached per process under the automation's config version.

A decision reads the automation with its run (one query) and needs its
intents, do-not-automate rules and segment policies too. Those change rarely
and every write to them bumps Automation.config_version (database triggers,
so no write path escapes), so a worker keeps the last set it loaded for each
automation and reuses it while the version it just read is the same. The
kill switch is still read fresh right before every action attempt.
"""

from django.db.models import prefetch_related_objects

from catalog.models import Automation

# What run_decide and the guardrails read through the automation's managers.
DECISION_RELATED = ("intents", "do_not_automate", "segments")

# automation id -> ((created_at, config_version), {related name: [instances]});
# one entry per automation, replaced when its version moves on. created_at
# tells a recreated automation (a restored database) from the one cached.
_loaded: dict[int, tuple[tuple, dict[str, list]]] = {}


def automation_config_attach(automation: Automation) -> None:
    """Give `automation` its decision-time related objects, from the cache when still current.

    `automation` must have been read moments ago: its config_version decides.
    On a miss the objects are loaded now, so they are at least as new as that
    version, and kept under it.
    """
    version = (automation.created_at, automation.config_version)
    cached = _loaded.get(automation.pk)
    if cached is not None and cached[0] == version:
        for name, items in cached[1].items():
            _prefetched_set(automation, name, items)
        return
    prefetch_related_objects([automation], *DECISION_RELATED)
    related = {name: list(getattr(automation, name).all()) for name in DECISION_RELATED}
    _loaded[automation.pk] = (version, related)


def _prefetched_set(automation: Automation, name: str, items: list) -> None:
    """Install `items` as if prefetch_related had loaded them (manager.all() reads them)."""
    queryset = getattr(automation, name).get_queryset()
    queryset._result_cache = items
    queryset._prefetch_done = True
    automation.__dict__.setdefault("_prefetched_objects_cache", {})[name] = queryset


def automation_config_forget() -> None:
    """Drop every cached configuration (tests)."""
    _loaded.clear()
