"""What went wrong in a run's logs: every server's (and the load generator's) warnings, errors and
tracebacks.

A fault in a server rarely shows in a figure: a consumer that dies after its push went out, a
background poller failing ten times a second while another path delivers the result anyway. Such
faults were found only by reading the logs (bench/profile_notes.md, twelfth pass), so each run
reads them and `make bench` fails on any (the report is written first, listing them).
"""

import re
from dataclasses import dataclass
from pathlib import Path

TRACEBACK = "Traceback (most recent call last):"
# A log record at WARNING or above, in each format a run writes: the shop's and uvicorn's
# ("<date> <time> LEVEL logger message"), daphne's ("<date> <time> LEVEL    message") and
# gunicorn's ("[<date> <time> <zone>] [pid] [LEVEL] message").
RECORD = re.compile(r"^(?:\S+ ){2,4}\[?(WARNING|ERROR|CRITICAL)\]?\s")


@dataclass(frozen=True)
class Fault:
    log: str  # the log file's name
    line: int  # where it starts, from 1
    text: str  # that line

    def __str__(self) -> str:
        return f"{self.log}:{self.line}: {self.text}"


def faults(directory: Path) -> list[Fault]:
    """Every record at WARNING or above and every traceback, in each `*.log` of `directory`. A
    record whose traceback follows it counts once, as the record; a traceback on its own is shown
    by the exception it ends with."""
    found = []
    for path in sorted(directory.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()
        for index, line in enumerate(lines):
            if RECORD.match(line):
                found.append(Fault(path.name, index + 1, line.strip()[:300]))
            elif line.startswith(TRACEBACK) and not (index and RECORD.match(lines[index - 1])):
                raised = next(
                    (later for later in lines[index + 1 :] if not later[:1].isspace()), ""
                )
                found.append(Fault(path.name, index + 1, f"{TRACEBACK} ... {raised}"[:300]))
    return found
