"""`bench.report`'s verdicts on the targets, from figures given here (no servers)."""

import json

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


def test_a_miss_the_ceilings_allow_says_when_the_machines_cpu_is_why():
    [sync, callback] = checkout(1000, 1.6, 72.8)
    callback.update(cores=1.87, p99=773.6, cpu_ms={"all": 25.4})
    verdicts = {t: met for t, _, met in targets([sync, callback], [], [], [], cpus=2)}
    assert verdicts["callback >= 50x sync throughput, 1000 shoppers"] == (
        "**no**: the machine's CPU, 2 cores at 25.4 ms a checkout (every process), serves at "
        "most 78.7/s, 49.2x; 50x needs 25.0 ms or less"
    )
    assert verdicts["callback Pay p99 < 50 ms, 1000 shoppers"] == "**no**: 1.87 of the 2 cores busy"
    # Cores that would allow 50x at that CPU: the miss says how busy they were.
    callback["cpu_ms"] = {"all": 20.0}
    verdicts = {t: met for t, _, met in targets([sync, callback], [], [], [], cpus=2)}
    assert verdicts["callback >= 50x sync throughput, 1000 shoppers"] == (
        "**no**: 1.87 of the 2 cores busy, which at 20.0 ms a checkout (every process) serve at "
        "most 100.0/s, 62.5x"
    )
    # Without the cores' figure, a plain miss.
    del callback["cores"]
    verdicts = {t: met for t, _, met in targets([sync, callback], [], [], [], cpus=2)}
    assert verdicts["callback >= 50x sync throughput, 1000 shoppers"] is False


def test_the_header_lists_the_logs_faults_first_ones():
    faults = [f"uvicorn-redis.log:{n}: 2026-11-28 ERROR x `y`" for n in range(1, 31)]
    lines = report._faults(faults, shown=2)
    assert lines[0].startswith("- **Logs: 30 warnings, errors or tracebacks**")
    assert lines[1:] == [
        "  - `uvicorn-redis.log:1: 2026-11-28 ERROR x 'y'`",
        "  - `uvicorn-redis.log:2: 2026-11-28 ERROR x 'y'`",
    ]


@pytest.mark.parametrize(
    ("config_args", "build"),
    [
        # As pyenv builds it by default, and as this machine's interpreter was built.
        ("'--prefix=/p' '--enable-shared' 'LDFLAGS=-L/p/lib'", "without profile-guided or link"),
        ("'--prefix=/p' '--enable-optimizations' '--with-lto'", "with profile-guided and link"),
        ("'--enable-optimizations'", "with `--enable-optimizations` only"),
        (None, "without profile-guided or link"),
    ],
)
def test_the_header_says_how_the_interpreter_was_built(monkeypatch, config_args, build):
    monkeypatch.setattr(report.sysconfig, "get_config_var", lambda name: config_args)
    assert report._python_build().startswith("built " + build)
    env = {"python": "3.13.0", "python_build": report._python_build()}
    assert report._build_note(env) == f" ({report._python_build()})"
    assert report._build_note({"python": "3.13.0"}) == ""  # a run recorded before it was


def memory_verdicts(*cells: tuple[str, str, float]) -> dict[tuple[str, str], object]:
    memory = [
        {"server": server, "layer": layer, "sockets": 1000, "bytes_per_socket": kib * 1024}
        for server, layer, kib in cells
    ]
    return {
        (m["server"], m["layer"]): met
        for m, (_, _, met) in zip(memory, targets([], [], memory, []), strict=True)
    }


def test_a_miss_by_what_the_shop_replaced_says_so_and_stays_a_miss():
    verdicts = memory_verdicts(
        ("daphne", "local", 31.0),
        ("uvicorn", "inmemory", 21.6),
        ("uvicorn", "local", 21.0),
        ("daphne", "redis", 19.0),
    )
    assert verdicts[("daphne", "local")].startswith("**no**: daphne, which the shop's server")
    assert verdicts[("uvicorn", "inmemory")].startswith("**no**: Channels' stock layer")
    assert verdicts[("uvicorn", "local")] is False  # the shop's own: a plain miss
    assert verdicts[("daphne", "redis")] is True


def test_memory_per_socket_is_the_median_of_its_parts_and_an_older_run_has_one_part():
    row = {"server": "uvicorn", "layer": "local", "sockets": 1000, "failed_sockets": 0}
    [parted, whole] = report.memory_figures(
        [
            {**row, "bytes_per_socket": 2048.0, "bytes_per_socket_parts": [1024.0, 2048.0, 4096.0]},
            {**row, "bytes_per_socket": 3072.0},
        ]
    )
    assert parted["bytes_per_socket"] == 2048.0 and parted["parts"] == [1024.0, 2048.0, 4096.0]
    assert whole["parts"] == [3072.0]


def test_the_machines_speed_stands_beside_the_run_it_replaces(tmp_path):
    steps = [
        {"step": "request", "per": "notification", "process": 1.2, "postgres": 0.4, "count": 300},
        {
            "step": "push",
            "per": "push to one socket",
            "process": 0.2,
            "postgres": 0.0,
            "count": 300,
        },
    ]
    before = tmp_path / "results.json"
    before.write_text(
        json.dumps(
            {
                "environment": {"commit": "abc1234", "date": "2026-11-27 10:00 UTC"},
                "cost": [{**steps[0], "process": 2.4}],  # no push step then
            }
        )
    )
    text = "\n".join(report._speed(steps, report.replaced_run(before)))
    assert "the run this one replaces (2026-11-27 10:00 UTC, commit `abc1234`)" in text
    table = [line for line in text.splitlines() if line.startswith(("| request", "| push"))]
    assert table == [
        "| request | notification | 1.20 | 0.40 | 2.40 | 0.50 |",
        "| push | push to one socket | 0.20 | 0.00 | - | - |",
    ]
    # No run before it (a first run, or a file from before the figures were kept): the table alone.
    assert report.replaced_run(tmp_path / "missing.json") is None
    before.write_text(json.dumps({"environment": {"commit": "abc1234"}}))
    assert report._speed(steps, report.replaced_run(before)) == report._speed(steps)
