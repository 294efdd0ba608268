"""`bench.report`'s verdicts on the targets, from figures given here (no servers)."""

import pytest

from bench import report
from bench.report import targets


def checkout(shoppers: int, sync: float, callback: float) -> list[dict]:
    return [
        {"mode": "sync", "shoppers": shoppers, "per_second": sync, "p99": 14_000.0},
        {"mode": "callback", "shoppers": shoppers, "per_second": callback, "p99": 30.0},
    ]


def ratio_verdict(shoppers: int, sync: float, callback: float):
    [(_, figure, met)] = [
        t for t in targets(checkout(shoppers, sync, callback), [], [], []) if "x" in t[0]
    ]
    return figure, met


@pytest.mark.parametrize(
    ("shoppers", "sync", "callback", "figure", "verdict"),
    [
        # 200 shoppers over 4 workers: the ceilings' ratio is the target itself.
        (200, 2.0, 95.0, "47.5x", "at the edge, the ceilings allow exactly 50.0x"),
        (200, 1.8, 95.0, "52.8x", True),
        # 1,000: room to spare, a miss is a plain miss.
        (1000, 2.0, 95.0, "47.5x", False),
        (50, 2.0, 24.0, "12.0x", "out of reach, the ceilings allow 12.5x"),
    ],
)
def test_the_throughput_ratio_says_how_far_the_ceilings_let_it_go(
    shoppers, sync, callback, figure, verdict
):
    measured, met = ratio_verdict(shoppers, sync, callback)
    assert measured.startswith(figure + " (ceilings' ratio")
    if isinstance(verdict, str):
        assert met.startswith("**no**: ") and verdict in met
    else:
        assert met is verdict


def test_the_header_lists_the_logs_faults_first_ones():
    faults = [f"uvicorn-redis.log:{n}: 2026-11-28 ERROR x `y`" for n in range(1, 31)]
    lines = report._faults(faults, shown=2)
    assert lines[0].startswith("- **Logs: 30 warnings, errors or tracebacks**")
    assert lines[1:] == [
        "  - `uvicorn-redis.log:1: 2026-11-28 ERROR x 'y'`",
        "  - `uvicorn-redis.log:2: 2026-11-28 ERROR x 'y'`",
    ]
