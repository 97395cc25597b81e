"""The good reference stack for a benchmark: used if it is running in DIR, else started
there and stopped afterwards (shared by the stack benchmarks)::

    with good_stack(Path("/tmp/mdstack"), net="127.0.78") as root:
        run_load(root / "target-raw.toml", "full_chain", ...)
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from maildrill.errors import ConfigError
from maildrill.stack.control import status

STACK = [sys.executable, "-m", "maildrill", "stack"]


def running(root: Path) -> bool:
    """Every daemon of a stack in ``root`` is up (a target file left behind is not enough)."""
    try:
        return all(s.up for s in status(root))
    except ConfigError:  # no stack there
        return False


@contextmanager
def good_stack(root: Path, *, net: str) -> Iterator[Path]:
    started_here = not running(root)
    if started_here:
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        up = [*STACK, "up", "--profile", "good", "--net", net, "--dir", str(root)]
        subprocess.run(up, check=True)
    try:
        yield root
    finally:
        if started_here:
            subprocess.run([*STACK, "down", "--dir", str(root)], check=False)
