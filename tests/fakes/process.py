"""The fakes as a process of their own (`python -m tests.fakes.serve`), as a test starts them: on
free ports, back once they listen, with the shop's settings for them in their env file."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from honcho.environ import parse as honcho_parse

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    process: subprocess.Popen
    keys: Path
    ready: dict[str, Any]
    env_file: Path
    log: Path

    @property
    def env(self) -> dict[str, str]:
        return honcho_parse(self.env_file.read_text())

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def launch(directory: Path, *args: str) -> subprocess.Popen:
    # Without Django's settings: the fakes are a plain process, independent of the shop.
    environment = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    log = (directory / "serve.log").open("ab")
    with log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.serve", *args],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def serve(directory: Path, *args: str) -> Served:
    """Start the fakes on free ports with keys in `directory/keys`; back once they listen."""
    ready_file = directory / "ready.json"
    ready_file.unlink(missing_ok=True)  # a run before this one's
    keys = directory / "keys"
    process = launch(
        directory, "--dir", str(keys), "--port", "0", "--ready-file", str(ready_file), *args
    )
    deadline = time.monotonic() + 60
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log = (directory / "serve.log").read_text()
            raise AssertionError(f"the fakes did not start ({process.wait()}):\n{log}")
        time.sleep(0.05)
    ready = json.loads(ready_file.read_text())
    return Served(process, keys, ready, Path(ready["env"]), directory / "serve.log")
