"""Fixed histogram buckets, percentiles from merged buckets, confidence bins and PSI. Pure.

Latencies are counted into fixed buckets in every rollup row, so the rows of
any window add up to one histogram and its percentiles need no raw values.
Twelve buckets each (eleven upper bounds and one open-ended), which is also
what /metrics exposes.
"""

import math
from bisect import bisect_left

# Upper bounds in milliseconds; a value equal to a bound falls in that bound's bucket.
DECISION_BOUNDS_MS = (50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 30_000, 60_000)
# End to end includes the wait for a person: from a tenth of a second to a day.
END_TO_END_BOUNDS_MS = (
    100,
    1_000,
    5_000,
    30_000,
    60_000,
    300_000,
    900_000,
    3_600_000,
    14_400_000,
    28_800_000,
    86_400_000,
)
BUCKETS = len(DECISION_BOUNDS_MS) + 1
assert len(END_TO_END_BOUNDS_MS) + 1 == BUCKETS

# The model's confidence in [0, 1], in ten bins of a tenth (1.0 goes in the last).
CONFIDENCE_BINS = 10
# Added to every bin's count before PSI compares two distributions: an empty bin
# would otherwise make the logarithm infinite.
PSI_SMOOTHING = 0.5

QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def bucket_index(value_ms: float, bounds: tuple[int, ...]) -> int:
    """The bucket a value falls in: the first whose upper bound is at least the value."""
    return bisect_left(bounds, value_ms)


def percentile(counts: list[int], bounds: tuple[int, ...], q: float) -> float | None:
    """The q-quantile (0..1) estimated from bucket counts, as Prometheus' histogram_quantile.

    Linear within the bucket the rank falls in (the first bucket starts at 0);
    a rank in the open-ended bucket answers its lower bound, the largest
    finite one. None when the histogram is empty.
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index == len(bounds):
                return float(bounds[-1])
            lower = bounds[index - 1] if index else 0
            return lower + (bounds[index] - lower) * (rank - seen) / count
        seen += count
    return float(bounds[-1])


def percentiles(counts: list[int], bounds: tuple[int, ...]) -> dict[str, float | None]:
    """{"p50", "p95", "p99"} of a bucket histogram (None each when it is empty)."""
    return {name: percentile(counts, bounds, q) for name, q in QUANTILES}


def confidence_bin(confidence) -> int | None:
    """The bin of a confidence in [0, 1]; None for anything else (no decision, no number)."""
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        return None
    if not 0 <= confidence <= 1:
        return None
    return min(CONFIDENCE_BINS - 1, int(confidence * CONFIDENCE_BINS))


def psi(expected: list[int], actual: list[int]) -> float:
    """Population stability index of `actual` against `expected` (counts per bin).

    sum over bins of (a - e) * ln(a / e), on shares smoothed by PSI_SMOOTHING
    per bin. 0 for the same shares; the usual reading: under 0.1 stable,
    0.1-0.2 some shift, over 0.2 a real one.
    """
    if len(expected) != len(actual):
        raise ValueError("both distributions need the same bins")
    bins = len(expected)
    e_total = sum(expected) + PSI_SMOOTHING * bins
    a_total = sum(actual) + PSI_SMOOTHING * bins
    index = 0.0
    for e, a in zip(expected, actual, strict=True):
        e_share = (e + PSI_SMOOTHING) / e_total
        a_share = (a + PSI_SMOOTHING) / a_total
        index += (a_share - e_share) * math.log(a_share / e_share)
    return index
