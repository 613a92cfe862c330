"""One validation for every write of an automation: the loader's checks, placed for forms.

The loader validates whole catalog files; the admin (and the owner console)
change one automation a field or a child at a time. Every write builds the
automation as the change would leave it (a Draft), renders it in the
loader's document shape, runs the loader's checkers on it, cross-field rules
included, and gets each problem back at the model field a form shows it
next to: of the automation, or of one of its intents, segment policies or
do-not-automate rules.
"""

import re
from dataclasses import dataclass

from catalog.loader.dump import draft_document
from catalog.loader.validate import automation_check
from catalog.models import Automation, MatchOperator

# The automation's child lists, named as in the document and as its related managers.
PARTS = ("intents", "segments", "do_not_automate")
_ITEM = re.compile(r"(intents|segments|do_not_automate)\[(\d+)\](?:\.(.*))?", re.DOTALL)
# A path that is just the field's own key: its message needs no prefix.
_PLAIN = re.compile(r"\w+")


@dataclass
class Draft:
    """An automation as a write would leave it: its fields, its people, its children in order."""

    automation: Automation
    owner: str
    reviewers: list[str]
    children: dict[str, list]  # part -> model instances, saved or not

    def document(self) -> dict:
        return draft_document(
            self.automation, owner=self.owner, reviewers=self.reviewers, **self.children
        )


def draft_stored(automation: Automation) -> Draft:
    """The automation as the database holds it."""
    return Draft(
        automation=automation,
        owner=automation.owner.get_username(),
        reviewers=[user.get_username() for user in automation.reviewers.all()],
        children={part: list(getattr(automation, part).all()) for part in PARTS},
    )


@dataclass(frozen=True)
class Problem:
    """One reason a write is refused, at the model field that shows it."""

    part: str | None  # None: the automation; else which child list
    index: int | None  # the child's place in its list
    field: str | None  # the model field; None: the automation or child as a whole
    where: str  # the path within the automation or the child, as the loader writes it
    message: str

    @property
    def path(self) -> str:
        """Where it is within the automation (`intents[1].action.url`)."""
        if self.part is None:
            return self.where
        item = f"{self.part}[{self.index}]"
        return f"{item}.{self.where}" if self.where else item

    @property
    def text(self) -> str:
        """The message for its field, led by the path inside the field when there is one."""
        where = self.where.removeprefix("decision.")
        return self.message if not where or _PLAIN.fullmatch(where) else f"{where}: {self.message}"


def draft_problems(draft: Draft, *, before: Draft | None = None) -> list[Problem]:
    """What the loader finds wrong with `draft`, less what `before` (as stored) already had.

    A write is refused for what it gets wrong, not for rows stored before a
    check existed: those fail safe where they are used, and an unrelated
    change (a segment switched off) must still go through.
    """
    problems = _located(draft)
    if before is None:
        return problems
    known = {_identity(problem, before) for problem in _located(before)}
    return [problem for problem in problems if _identity(problem, draft) not in known]


def problem_show(problem: Problem, *, form, fallback, label: str = "") -> None:
    """Next to its field on `form`; else on `form` as a whole; else on `fallback` with its path."""
    if form is None:
        prefix = f"{label}: " if label else ""
        fallback.add_error(None, f"{prefix}{problem.path}: {problem.message}")
    elif problem.field in form.fields:
        # A field Django already refused keeps its own message.
        if not form.has_error(problem.field):
            form.add_error(problem.field, problem.text)
    elif problem.where:
        form.add_error(None, f"{problem.where}: {problem.message}")
    else:
        form.add_error(None, problem.message)


def problem_locate(path: str, message: str) -> Problem:
    """A loader problem (path within one automation) at its model field."""
    if match := _ITEM.fullmatch(path):
        part, index, where = match[1], int(match[2]), match[3] or ""
        return Problem(part, index, _child_field(part, where), where, message)
    return Problem(None, None, _automation_field(path), path, message)


def _located(draft: Draft) -> list[Problem]:
    return [problem_locate(path, message) for path, message in automation_check(draft.document())]


def _identity(problem: Problem, draft: Draft) -> tuple:
    # Children by primary key, so that a problem keeps its identity when a
    # deletion before it moves it up the list.
    child = None
    if problem.part is not None:
        items = draft.children[problem.part]
        instance = items[problem.index] if problem.index < len(items) else None
        child = instance.pk if instance is not None and instance.pk else ("new", problem.index)
    return (problem.part, child, problem.where, problem.message)


def _head(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _automation_field(path: str) -> str | None:
    head = _head(path)
    if head == "decision":
        return _head(path.removeprefix("decision").removeprefix(".")) or None
    return None if head in PARTS or not head else head


def _child_field(part: str, where: str) -> str | None:
    head = _head(where)
    if part == "intents" and head == "action":
        return "action_adapter" if where in ("action", "action.adapter") else "action_config"
    if part == "do_not_automate" and head in MatchOperator.values:
        return "value"
    if part == "do_not_automate" and head not in ("name", "field", "effect"):
        return "operator"  # the operator is the key the value is written under
    return head or None
