"""Stratified, reproducible audit samples of finished runs (contracts section 7).

A draw takes the finished runs created in [since, until) of the chosen
automations, outcomes and segments (catalog/audit/outcomes.py says which runs
are finished and what their outcome is), splits them into strata by the
chosen dimensions (outcome × segment by default, and automation whenever the
runs come from more than one), and allocates the sample's size:

- every non-empty stratum gets min(K, its population) items (K: min_per_stratum);
- the rest of the size goes to the strata in proportion to their populations,
  largest remainders first (ties: the earlier stratum), never more than a
  stratum holds; a size that the minimums already exceed draws the minimums.

Within a stratum the runs drawn are those whose SHA-256 of "{seed}:{run_id}"
is lowest. The hash alone orders the runs, so the same arguments and seed
over the same runs draw the same items, a run's chance does not depend on
its id, and anyone can check a sample from the seed and the run ids.

Cost: the populations are one GROUP BY in the database; the hashes are
computed in Python over (id, automation, outcome, segment) tuples streamed
from a server-side cursor, keeping only the sample's size in memory (one
bounded heap per stratum). About 2 µs per run: a million runs in a few seconds.
"""

import hashlib
import heapq
import math
import secrets
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count

from catalog.audit.access import audit_check
from catalog.audit.arguments import SampleArguments, arguments_from_json
from catalog.audit.outcomes import OUTCOMES, finished_runs
from catalog.models import AuditSample, AuditSampleItem, AuditStratum, Automation

STREAM_CHUNK = 10_000


class NothingToSample(ValueError):
    """No finished run matches the arguments: there is nothing to draw."""


def draw_hash(seed: str, run_id: int) -> bytes:
    """The key a run is drawn by: SHA-256 of "{seed}:{run_id}" (lowest first)."""
    return hashlib.sha256(f"{seed}:{run_id}".encode()).digest()


def seed_new() -> str:
    """A random seed, for a draw that was not given one."""
    return str(secrets.randbelow(2**31))


def allocate(*, populations: list[int], total: int, minimum: int) -> list[int]:
    """Items per stratum: min(minimum, population) each, the rest of `total` by population.

    Exact integer arithmetic: strata whose proportional share would pass what
    they hold are filled and set aside, the others share what is left; the
    last items go by largest remainder, ties to the earlier stratum.
    """
    allocated = [min(minimum, population) for population in populations]
    room = [population - given for population, given in zip(populations, allocated, strict=True)]
    remaining = min(total - sum(allocated), sum(room))
    active = [i for i, free in enumerate(room) if free > 0]
    while remaining > 0 and active:
        weight = sum(populations[i] for i in active)
        full = [i for i in active if remaining * populations[i] >= room[i] * weight]
        if not full:
            break
        for i in full:
            allocated[i] += room[i]
            remaining -= room[i]
        active = [i for i in active if i not in full]
    if remaining > 0 and active:
        weight = sum(populations[i] for i in active)
        shares = {i: divmod(remaining * populations[i], weight) for i in active}
        for i in active:
            allocated[i] += shares[i][0]
        left = remaining - sum(whole for whole, _ in shares.values())
        by_remainder = sorted(active, key=lambda i: (-shares[i][1], i))
        for i in by_remainder[:left]:
            allocated[i] += 1
    return allocated


def sample_total(*, arguments: SampleArguments, population: int) -> int:
    """How many items the arguments ask of `population` runs: the size, or rate × population."""
    if arguments.size is not None:
        return min(arguments.size, population)
    return min(population, math.ceil(Fraction(arguments.rate) * population))


@dataclass
class Stratum:
    key: dict  # e.g. {"outcome": "approved", "segment": "enterprise"}
    population: int
    allocated: int = 0


def _population(arguments: SampleArguments):
    runs = finished_runs().filter(created_at__gte=arguments.since, created_at__lt=arguments.until)
    if arguments.automations:
        ids = Automation.objects.filter(slug__in=arguments.automations).values("pk")
        runs = runs.filter(automation_id__in=ids)
    if arguments.outcomes and len(arguments.outcomes) < len(OUTCOMES):
        runs = runs.filter(outcome__in=arguments.outcomes)
    if arguments.segments:
        runs = runs.filter(segment__in=arguments.segments)
    return runs


def _key_of(dimensions: tuple[str, ...], slugs: dict[int, str]):
    def key(automation_id: int, outcome: str, segment: str) -> tuple:
        values = {"automation": slugs.get(automation_id), "outcome": outcome, "segment": segment}
        return tuple(values[dimension] for dimension in dimensions)

    return key


def _order(dimensions: tuple[str, ...]):
    """Strata in a fixed order: automation slug, outcome as section 7 lists them, segment."""

    def order(key: tuple):
        return tuple(
            OUTCOMES.index(value) if dimension == "outcome" else value
            for dimension, value in zip(dimensions, key, strict=True)
        )

    return order


def _strata(arguments: SampleArguments):
    """(key function, {key: Stratum} in stratum order) from one GROUP BY."""
    groups = list(
        _population(arguments)
        .order_by()
        .values_list("automation_id", "outcome", "segment")
        .annotate(n=Count("*"))
    )
    automation_ids = {automation_id for automation_id, _, _, _ in groups}
    dimensions = tuple(
        d
        for d in ("automation", "outcome", "segment")
        if d in arguments.stratify or (d == "automation" and len(automation_ids) > 1)
    )
    slugs = dict(Automation.objects.filter(pk__in=automation_ids).values_list("pk", "slug"))
    key_of = _key_of(dimensions, slugs)
    sizes: dict[tuple, int] = defaultdict(int)
    for automation_id, outcome, segment, n in groups:
        sizes[key_of(automation_id, outcome, segment)] += n
    strata = {
        key: Stratum(key=dict(zip(dimensions, key, strict=True)), population=sizes[key])
        for key in sorted(sizes, key=_order(dimensions))
    }
    return key_of, strata


def _select(arguments: SampleArguments, seed: str, key_of, strata: dict) -> dict[tuple, list]:
    """Per stratum, the allocated runs with the lowest hashes: [(hash, run id, outcome)], sorted."""
    heaps: dict[tuple, list] = {key: [] for key in strata}
    rows = (
        _population(arguments)
        .order_by()
        .values_list("id", "automation_id", "outcome", "segment")
        .iterator(chunk_size=STREAM_CHUNK)
    )
    for run_id, automation_id, outcome, segment in rows:
        key = key_of(automation_id, outcome, segment)
        wanted = strata[key].allocated
        if not wanted:
            continue
        # A max-heap by hash (negated) of the `wanted` lowest seen so far.
        rank = -int.from_bytes(draw_hash(seed, run_id), "big")
        heap = heaps[key]
        if len(heap) < wanted:
            heapq.heappush(heap, (rank, run_id, outcome))
        elif rank > heap[0][0]:
            heapq.heapreplace(heap, (rank, run_id, outcome))
    return {key: sorted(heap, reverse=True) for key, heap in heaps.items()}


@dataclass
class Draw:
    """What a draw came to before it is written: strata and the runs chosen in each."""

    seed: str
    strata: dict  # {key: Stratum}
    chosen: dict  # {key: [(rank, run id, outcome)], lowest hash first}


def sample_compute(*, arguments: SampleArguments, seed: str) -> Draw:
    """Draw without writing anything: the strata, their allocation and the runs chosen."""
    key_of, strata = _strata(arguments)
    population = sum(stratum.population for stratum in strata.values())
    if not population:
        raise NothingToSample("no finished run matches: nothing to sample")
    total = sample_total(arguments=arguments, population=population)
    allocation = allocate(
        populations=[s.population for s in strata.values()],
        total=total,
        minimum=arguments.min_per_stratum,
    )
    for stratum, allocated in zip(strata.values(), allocation, strict=True):
        stratum.allocated = allocated
    return Draw(seed=seed, strata=strata, chosen=_select(arguments, seed, key_of, strata))


def sample_draw(*, arguments: SampleArguments, by: AbstractBaseUser | None = None) -> AuditSample:
    """Draw a sample and write it with its strata and items in one transaction.

    NothingToSample when no finished run matches; nothing is written then.
    PermissionDenied when `by` is neither compliance staff nor an admin.
    """
    if by is not None:
        audit_check(by, doing="draw audit samples")
    seed = arguments.seed or seed_new()
    draw = sample_compute(arguments=arguments, seed=seed)
    with transaction.atomic():
        sample = AuditSample.objects.create(
            name=arguments.name,
            seed=seed,
            since=arguments.since,
            until=arguments.until,
            arguments={**arguments.as_json(), "seed": seed},
            created_by=by,
        )
        strata = AuditStratum.objects.bulk_create(
            AuditStratum(sample=sample, position=n, key=s.key, population=s.population)
            for n, s in enumerate(draw.strata.values())
        )
        items = []
        for stratum, chosen in zip(strata, draw.chosen.values(), strict=True):
            for _, run_id, outcome in chosen:
                items.append(
                    AuditSampleItem(
                        sample=sample,
                        stratum=stratum,
                        run_id=run_id,
                        outcome=outcome,
                        position=len(items),
                    )
                )
        AuditSampleItem.objects.bulk_create(items, batch_size=1000)
    return sample


def sample_rederive(*, sample: AuditSample) -> list[int]:
    """The run ids the sample's own arguments and seed draw today, in item order.

    Equal to the sample's items as long as the runs it was drawn from are as they were.
    """
    arguments = arguments_from_json(sample.arguments)
    draw = sample_compute(arguments=arguments, seed=sample.seed)
    return [run_id for chosen in draw.chosen.values() for _, run_id, _ in chosen]


def seed_json(seed: str):
    """The seed as JSON: a number when it is one written plainly, else the string."""
    return int(seed) if seed.isdigit() and str(int(seed)) == seed else seed


def sample_summary(sample: AuditSample) -> dict:
    """The JSON contracts section 7 prints for a drawn sample."""
    strata = list(sample.strata.order_by("position"))
    counts = defaultdict(int)
    items = []
    keys = {stratum.pk: stratum.key for stratum in strata}
    for item_id, run_id, stratum_id in sample.items.order_by("position").values_list(
        "id", "run_id", "stratum_id"
    ):
        counts[stratum_id] += 1
        items.append({"item_id": item_id, "run_id": str(run_id), "stratum": keys[stratum_id]})
    return {
        "sample_id": sample.pk,
        "seed": seed_json(sample.seed),
        "strata": [
            {"stratum": s.key, "population": s.population, "sampled": counts[s.pk]} for s in strata
        ],
        "items": items,
    }
