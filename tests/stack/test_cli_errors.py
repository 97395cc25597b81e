"""One clear line, not a traceback, when the stack cannot run or is not there."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from maildrill.cli import stack as cli
from maildrill.errors import ConfigError
from maildrill.stack import binaries


def test_missing_binary_names_its_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(
        binaries, "BINARIES", {**binaries.BINARIES, "/nonexistent/sbin/knotd-x": "knot"}
    )
    args = argparse.Namespace(action="up", profile="good", weakness=None, net=None, dir=tmp_path)
    with pytest.raises(ConfigError) as excinfo:
        cli.run(args)
    message = str(excinfo.value)
    assert "\n" not in message
    assert "knotd-x not found" in message and " knot " in message
    assert binaries.INSTALL_SCRIPT in message


@pytest.mark.parametrize("action", ["status", "down"])
def test_no_stack_in_dir(action: str, tmp_path: Path) -> None:
    # through the real command, as a user sees it: one line on stderr, exit 2
    out = subprocess.run(
        [sys.executable, "-m", "maildrill", "stack", action, "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    expected = f"--dir {tmp_path}: no stack here (no state.json); run 'stack up'"
    # last line: other subcommands' imports may warn first (locust's gevent monkey-patching)
    assert out.stderr.splitlines()[-1] == f"maildrill stack: {expected}"
    assert "Traceback" not in out.stderr
