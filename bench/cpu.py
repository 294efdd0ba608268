"""CPU per step, as `python -m bench.cost` prints it and `make bench` reads it back.

`request: 4.71 ms CPU per notification, PostgreSQL 0.83 ms (300)`: the measuring process, then
PostgreSQL's (when it runs on the same machine), each divided by the number of steps.
"""

import re
from typing import NamedTuple

LINE = re.compile(
    r"^(?P<step>\w+): (?P<process>[\d.]+) ms CPU per (?P<per>[\w ]+?)"
    r"(?:, PostgreSQL (?P<postgres>[\d.]+) ms)? \((?P<count>\d+)\)$",
    re.M,
)


class Cost(NamedTuple):
    process: float  # ms of the measuring process's CPU per step
    postgres: float | None  # ms of PostgreSQL's, if it runs here

    def line(self, step: str, per: str, count: int) -> str:
        database = "" if self.postgres is None else f", PostgreSQL {self.postgres:.2f} ms"
        return f"{step}: {self.process:.2f} ms CPU per {per}{database} ({count})"


def parse(text: str) -> list[dict]:
    """Every step's line in `text`, as a dict: step, per, process, postgres (None), count."""
    return [
        {
            "step": m["step"],
            "per": m["per"],
            "process": float(m["process"]),
            "postgres": float(m["postgres"]) if m["postgres"] else None,
            "count": int(m["count"]),
        }
        for m in LINE.finditer(text)
    ]
