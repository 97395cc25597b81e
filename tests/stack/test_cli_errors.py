"""One clear line, not a traceback, when the stack cannot run or is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from maildrill.cli import main
from maildrill.stack import binaries


def test_missing_binary_names_its_package(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(
        binaries, "BINARIES", {**binaries.BINARIES, "/nonexistent/sbin/knotd-x": "knot"}
    )
    assert main(["stack", "up", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "knotd-x not found" in err and "knot" in err and binaries.INSTALL_SCRIPT in err


@pytest.mark.parametrize("action", ["status", "down"])
def test_no_stack_in_dir(action: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["stack", action, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"maildrill stack: --dir {tmp_path}: no stack here (no state.json); run 'stack up'"
    )
