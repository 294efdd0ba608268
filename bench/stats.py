"""Percentiles and medians: small on purpose, so every table is computed the same way."""

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99, max and mean of durations given in seconds, in milliseconds."""
    return {
        "n": len(seconds),
        "p50": percentile(seconds, 50) * 1000,
        "p99": percentile(seconds, 99) * 1000,
        "max": (max(seconds) * 1000) if seconds else float("nan"),
        "mean": (statistics.fmean(seconds) * 1000) if seconds else float("nan"),
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def median_of(runs: Sequence[dict], key: str) -> float:
    """The median over runs of one figure (every run is a dict with that key)."""
    return median([run[key] for run in runs])
