"""What a sample is drawn from, read and checked once for the command and the browser alike.

`sample_arguments` takes the raw strings either front end has (command-line
options, form fields) and returns `SampleArguments`, or raises `SampleInvalid`
listing every problem by field, so both say the same thing about bad input.
"""

import re
from dataclasses import asdict, dataclass
from datetime import datetime, time
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from catalog.audit.outcomes import OUTCOMES
from catalog.models import Automation

DIMENSIONS = ("automation", "outcome", "segment")
DEFAULT_STRATIFY = "outcome,segment"
DEFAULT_MIN_PER_STRATUM = 5
MAX_SEED_LENGTH = 64
SEED_PATTERN = re.compile(r"[A-Za-z0-9_.:-]+")


class SampleInvalid(ValueError):
    """The arguments of a draw are wrong; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class SampleArguments:
    """Everything a draw depends on; the sample keeps it (`as_json`) to be drawn again."""

    name: str
    since: datetime
    until: datetime
    size: int | None
    rate: str | None  # a decimal in (0, 1], kept as written so it is read back exactly
    automations: tuple[str, ...]  # slugs; empty: every automation
    outcomes: tuple[str, ...]  # in OUTCOMES order; empty: every outcome
    segments: tuple[str, ...]  # empty: every segment
    stratify: tuple[str, ...]  # in DIMENSIONS order
    min_per_stratum: int
    seed: str | None

    def as_json(self) -> dict:
        data = asdict(self)
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        for key in ("automations", "outcomes", "segments", "stratify"):
            data[key] = list(data[key])
        return data


def _refuse_nul(**fields) -> None:
    """SampleInvalid for fields holding a NUL character, which PostgreSQL cannot store."""
    bad = {
        field: "must not contain NUL characters"
        for field, value in fields.items()
        if any("\x00" in str(v) for v in (value if isinstance(value, list | tuple) else [value]))
    }
    if bad:
        raise SampleInvalid(bad)


def _listed(values) -> list[str]:
    """Values given as a list, or as one comma-separated string; blanks dropped."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in str(value).split(",") if part.strip()]


def parse_moment(value: str) -> datetime:
    """A date (its midnight) or an ISO 8601 date-time, in the site's time zone unless it says."""
    value = (value or "").strip()
    try:
        day = parse_date(value)
        parsed = datetime.combine(day, time.min) if day is not None else parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError("not a date: write YYYY-MM-DD or an ISO 8601 date-time")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def _size(value, errors: dict) -> int | None:
    try:
        size = int(str(value).strip())
    except ValueError:
        errors["size"] = "must be a whole number"
        return None
    if size < 1:
        errors["size"] = "must be at least 1"
        return None
    return size


def _rate(value, errors: dict) -> str | None:
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        errors["rate"] = "must be a number, e.g. 0.05"
        return None
    if not rate.is_finite() or not 0 < rate <= 1:
        errors["rate"] = "must be more than 0 and at most 1"
        return None
    return str(rate)


def _amount(size, rate, errors: dict) -> tuple[int | None, str | None]:
    """(size, rate): exactly one of them must be given."""
    has_size = size is not None and str(size).strip() != ""
    has_rate = rate is not None and str(rate).strip() != ""
    if has_size == has_rate:
        errors["size"] = "give either a size or a rate"
        return None, None
    return (_size(size, errors), None) if has_size else (None, _rate(rate, errors))


def _whole(value, field: str, errors: dict, *, default: int) -> int:
    if value is None or str(value).strip() == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        errors[field] = "must be a whole number"
        return default
    if number < 0:
        errors[field] = "must be 0 or more"
    return number


def _window(since, until, errors: dict) -> tuple[datetime | None, datetime | None]:
    moments = {}
    for field, value in (("since", since), ("until", until)):
        if value is None or str(value).strip() == "":
            errors[field] = "is required"
            continue
        try:
            moments[field] = parse_moment(str(value))
        except ValueError as exc:
            errors[field] = str(exc)
    start, end = moments.get("since"), moments.get("until")
    if start is not None and end is not None and end <= start:
        errors["until"] = "must be after since"
    return start, end


def _choices(values, allowed, field: str, errors: dict, *, what: str) -> tuple[str, ...]:
    chosen = _listed(values)
    unknown = [value for value in chosen if value not in allowed]
    if unknown:
        errors[field] = f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}"
    return tuple(value for value in allowed if value in chosen)


def _automations(values, errors: dict) -> tuple[str, ...]:
    slugs = sorted(set(_listed(values)))
    known = set(Automation.objects.filter(slug__in=slugs).values_list("slug", flat=True))
    missing = [slug for slug in slugs if slug not in known]
    if missing:
        errors["automation"] = f"no automation {', '.join(missing)}"
    return tuple(slugs)


def _seed(value, errors: dict) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    seed = str(value).strip()
    if len(seed) > MAX_SEED_LENGTH or not SEED_PATTERN.fullmatch(seed):
        errors["seed"] = f"use up to {MAX_SEED_LENGTH} letters, digits and the characters _ . : -"
    return seed


def sample_arguments(
    *,
    name,
    since,
    until,
    size=None,
    rate=None,
    automations=None,
    outcomes=None,
    segments=None,
    stratify=None,
    min_per_stratum=None,
    seed=None,
) -> SampleArguments:
    """The checked arguments of a draw; SampleInvalid naming every bad field."""
    _refuse_nul(
        name=name,
        since=since,
        until=until,
        size=size,
        rate=rate,
        automation=automations,
        outcome=outcomes,
        segment=segments,
        stratify=stratify,
        min_per_stratum=min_per_stratum,
        seed=seed,
    )
    errors: dict[str, str] = {}
    name = str(name or "").strip()
    if not name:
        errors["name"] = "is required"
    elif len(name) > 200:
        errors["name"] = "must be at most 200 characters"
    start, end = _window(since, until, errors)
    checked_size, checked_rate = _amount(size, rate, errors)
    stratify = DEFAULT_STRATIFY if stratify is None else stratify
    arguments = SampleArguments(
        name=name,
        since=start,
        until=end,
        size=checked_size,
        rate=checked_rate,
        automations=_automations(automations, errors),
        outcomes=_choices(outcomes, OUTCOMES, "outcome", errors, what="outcome"),
        segments=tuple(sorted(set(_listed(segments)))),
        stratify=_choices(stratify, DIMENSIONS, "stratify", errors, what="dimension"),
        min_per_stratum=_whole(
            min_per_stratum, "min_per_stratum", errors, default=DEFAULT_MIN_PER_STRATUM
        ),
        seed=_seed(seed, errors),
    )
    if errors:
        raise SampleInvalid(errors)
    return arguments


def arguments_from_json(data: dict) -> SampleArguments:
    """The arguments a sample kept, as `sample_arguments` would have returned them."""
    return SampleArguments(
        name=data["name"],
        since=datetime.fromisoformat(data["since"]),
        until=datetime.fromisoformat(data["until"]),
        size=data["size"],
        rate=data["rate"],
        automations=tuple(data["automations"]),
        outcomes=tuple(data["outcomes"]),
        segments=tuple(data["segments"]),
        stratify=tuple(data["stratify"]),
        min_per_stratum=data["min_per_stratum"],
        seed=data["seed"],
    )
