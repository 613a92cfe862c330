"""Small statistics shared by promotion evidence, audit reports and the metrics."""

import math

Z_95 = 1.959963984540054  # the two-sided 95 % normal quantile


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion `successes / n`; (0, 1) when n is 0.

    Unlike the normal approximation it stays inside [0, 1] and is honest for
    small n and for rates near 0, which is where override and issue rates live.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denominator = 1 + z2 / n
    return max(0.0, (centre - margin) / denominator), min(1.0, (centre + margin) / denominator)
