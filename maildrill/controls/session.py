"""Running the conformance suites in this process: pytest on ``conformance/`` (found as data,
:mod:`maildrill.suites`) with the maildrill plugin, one :class:`ControlResult` per control.

Usage::

    controls = run_checks(target, policy="seed", keyword="TLS")
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from maildrill.errors import ConfigError
from maildrill.results import ControlResult
from maildrill.suites import conformance_dir
from maildrill.target import Target

__all__ = ["ChecksInterrupted", "run_checks"]


def run_checks(
    target: Target,
    *,
    policy: str | None = None,
    keyword: str | None = None,
    quiet: bool = False,
) -> list[ControlResult]:
    """Run the conformance suites in this process and return one result per control."""
    suites = conformance_dir()
    with tempfile.TemporaryDirectory(prefix="maildrill-") as tmp:
        out = Path(tmp) / "controls.json"
        args = [str(suites), "--target", str(target.source), "--results", str(out)]
        args += ["-q", "--tb=no", "-p", "no:cacheprovider", "--no-header"]
        if policy:
            args += ["--policy", policy]
        if keyword:
            args += ["-k", keyword]
        if quiet:
            args += ["-qq"]
        code = pytest.main(args)
        if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
            raise ConfigError(f"the conformance run could not start (pytest exit {int(code)})")
        controls = []
        if out.exists():  # the plugin writes it on Ctrl-C too
            data = json.loads(out.read_text())
            controls = [ControlResult.model_validate(c) for c in data["controls"]]
        if code == pytest.ExitCode.INTERRUPTED:
            raise ChecksInterrupted(controls)
        return controls


class ChecksInterrupted(KeyboardInterrupt):
    """Ctrl-C during the checks; carries the controls checked so far."""

    def __init__(self, controls: list[ControlResult]) -> None:
        super().__init__()
        self.controls = controls
