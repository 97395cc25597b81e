"""Running the conformance suites against a target file, as the proofs in tests/ need it.

Two ways in, one result: :func:`run_suites` runs ``pytest conformance/<suite> --target FILE``
(the plugin and a results file, as ``maildrill check`` runs it); :func:`run_check` runs the
``maildrill check`` command end to end, as a user does. Each runs in a child process, so
every run starts clean, and gives a :class:`SuiteRun`: the controls' results by ID.

Usage::

    run = run_suites(target_file, tmp_path, "reachability", "tls")
    run.verdicts("fail", "error")          # {"CERT-SAN[smtp]", …}
    run.base_ids("pass")                   # {"TLS-VERSIONS", …}
    assert not bad, run.describe(bad)      # one line per control: verdict and reason
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["ROOT", "SUITES", "SuiteRun", "run_check", "run_suites"]

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "conformance"


@dataclass(frozen=True)
class SuiteRun:
    controls: dict[str, dict[str, Any]]  # "TLS-VERSIONS[smtp]" -> its ControlResult as JSON
    seconds: float
    returncode: int
    output: str  # the end of what the run printed
    results_text: str  # the results file as written

    def verdicts(self, *verdicts: str) -> set[str]:
        """The IDs of the controls with one of ``verdicts``."""
        return {cid for cid, c in self.controls.items() if c["verdict"] in verdicts}

    def base_ids(self, *verdicts: str) -> set[str]:
        """The same, without the role: ``"TLS-VERSIONS[smtp]"`` is ``"TLS-VERSIONS"``."""
        return {cid.split("[", 1)[0] for cid in self.verdicts(*verdicts)}

    def describe(self, ids: set[str]) -> str:
        """The verdict and reason of each control in ``ids``, one line each."""
        return "\n".join(
            f"  {cid}: {self.controls[cid]['verdict']} {self.controls[cid]['reason'][:240]}"
            if cid in self.controls
            else f"  {cid}: (not run)"
            for cid in sorted(ids)
        )


def run_suites(
    target: Path,
    out: Path,
    *suites: str,
    policy: str | None = None,
    keyword: str | None = None,
    timeout: float = 300,
) -> SuiteRun:
    """``pytest conformance/<suite>… --target FILE [--policy NAME] [-k EXPR]`` (default: the
    TLS suite); the results file goes to ``out``."""
    results = out / f"controls-{target.stem}-{uuid.uuid4().hex[:8]}.json"
    args = [sys.executable, "-m", "pytest", *(str(SUITES / s) for s in suites or ("tls",))]
    args += ["-c", str(SUITES / "pytest.ini"), "--target", str(target), "--results", str(results)]
    args += ["-q", "--tb=line", "-p", "no:cacheprovider"]
    if policy:
        args += ["--policy", policy]
    if keyword:
        args += ["-k", keyword]
    return _run(args, results, timeout)


def run_check(target: Path, out: Path, *args: str, timeout: float = 300) -> SuiteRun:
    """``maildrill check --target FILE --out OUT [args…]``: every result in ``out``."""
    command = [sys.executable, "-m", "maildrill", "check", "--target", str(target)]
    return _run([*command, "--out", str(out), *args], out / "results.json", timeout)


def _run(args: list[str], results: Path, timeout: float) -> SuiteRun:
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    seconds = time.perf_counter() - started
    output = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert results.exists(), f"no results written; the run said:\n{output}"
    text = results.read_text(encoding="utf-8")
    controls = {c["id"]: c for c in json.loads(text)["controls"]}
    return SuiteRun(controls, seconds, proc.returncode, output, text)


def check_module(path: str) -> ModuleType:
    """One check module of a suite, loaded from its file: conformance/ is a folder of checks
    pytest runs, never a package this project imports (docs/architecture.md)."""
    name = "_checks_" + path.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, SUITES / path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
