"""Running the conformance suites in this process: pytest on ``conformance/`` (found as data,
:mod:`maildrill.suites`) with the maildrill plugin, one :class:`ControlResult` per control.

Usage::

    controls = run_checks(target, policy="seed", keyword="TLS", controls=["REACH-*"])

A selection (``keyword``, pytest's ``-k``; ``controls``, the plugin's ``--control``) that
matches no control is a :class:`~maildrill.errors.ConfigError` naming it (exit 2): a gate
that checked nothing has passed nothing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
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
    controls: Sequence[str] = (),
    quiet: bool = False,
) -> list[ControlResult]:
    """Run the conformance suites in this process and return one result per control;
    ``keyword`` and ``controls`` select by control ID as the report shows it."""
    suites = conformance_dir()
    with tempfile.TemporaryDirectory(prefix="maildrill-") as tmp:
        out = Path(tmp) / "controls.json"
        args = [str(suites), "--target", str(target.source), "--results", str(out)]
        args += ["-q", "--tb=no", "-p", "no:cacheprovider", "--no-header"]
        if policy:
            args += ["--policy", policy]
        if keyword:
            args += ["-k", keyword]
        for pattern in controls:
            args += ["--control", pattern]
        if quiet:
            args += ["-qq"]
        code = pytest.main(args)
        if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
            raise ConfigError(f"the conformance run could not start (pytest exit {int(code)})")
        if code == pytest.ExitCode.NO_TESTS_COLLECTED:
            raise ConfigError(_nothing_selected(suites, keyword, controls))
        found = []
        if out.exists():  # the plugin writes it on Ctrl-C too
            data = json.loads(out.read_text())
            found = [ControlResult.model_validate(c) for c in data["controls"]]
        if code == pytest.ExitCode.INTERRUPTED:
            raise ChecksInterrupted(found)
        return found


def _nothing_selected(suites: Path, keyword: str | None, controls: Sequence[str]) -> str:
    selection = ([f"-k '{keyword}'"] if keyword else []) + [f"--control '{c}'" for c in controls]
    if not selection:
        return f"no control found in {suites}"
    return f"no control selected by {' '.join(selection)}"


class ChecksInterrupted(KeyboardInterrupt):
    """Ctrl-C during the checks; carries the controls checked so far."""

    def __init__(self, controls: list[ControlResult]) -> None:
        super().__init__()
        self.controls = controls
