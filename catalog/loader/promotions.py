"""A catalog file promotes to autonomous only what `set_mode` would (contracts §6).

The same evidence and readiness rule as the console and the command line: a
file that moves an automation, or one segment, to autonomous without them is
refused whole, one line per missing item at the mode's path. An admin may load
it anyway with the override, recorded in the change reason. The checklist is
judged as stored before the load, as set_mode judges it: a file that writes it
promotes on the next load.
"""

from catalog.governance.changes import promotion_missing
from catalog.models import Automation, Mode, Role
from catalog.selectors import user_roles

from .errors import Problems, item_path, key_path

NEW_AUTOMATION = (
    "a new automation has no reviewed cases: load it below autonomous, then promote it "
    "with set_mode once it has its evidence"
)
OVERRIDDEN = " (evidence overridden)"


def promotions_check(
    specs: list[dict], current: dict[str, Automation], *, user, override_evidence: bool
) -> bool:
    """Raise CatalogInvalid for promotions that lack their evidence; True if one was overridden.

    An override needs `user` to be an admin, as `set_mode --override-evidence` does.
    """
    problems = Problems()
    for index, spec in enumerate(specs):
        path = item_path("automations", index)
        automation = current.get(spec["slug"])
        for where, segment in _promotions(spec, automation, path):
            missing = (
                [NEW_AUTOMATION]
                if automation is None
                else promotion_missing(automation, segment=segment)
            )
            for line in missing:
                problems.add(where, f"promotion to autonomous refused: {line}")
    if not problems.messages:
        return False
    if override_evidence and user is not None and Role.ADMIN in user_roles(user):
        return True
    if override_evidence:
        problems.add("--override-evidence", "only an admin may promote without the evidence")
    problems.raise_if_any()
    return False


def _promotions(spec: dict, automation: Automation | None, path: str):
    """(path of the mode, segment key or "") for each move to autonomous the spec makes."""
    was = automation.mode if automation else ""
    now = spec["fields"]["mode"]
    if now == Mode.AUTONOMOUS and was != Mode.AUTONOMOUS:
        yield key_path(path, "mode"), ""
    policies = {p.key: p.mode for p in automation.segments.all()} if automation else {}
    for index, segment in enumerate(spec["segments"]):
        mode = segment.get("mode") or ""
        if mode != Mode.AUTONOMOUS:
            continue
        # A segment's effective mode: its own override, else the automation's (as it was).
        if (policies.get(segment["key"]) or was) != Mode.AUTONOMOUS:
            yield key_path(item_path(key_path(path, "segments"), index), "mode"), segment["key"]
