"""Running the TLS suite against a target file, as the proofs in tests/ need it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conformance.declared import declared

ROOT = Path(__file__).resolve().parents[3]
SUITES = ROOT / "conformance"

# every control the TLS suite declares, read from its markers
CONTROLS = frozenset(declared("tls"))


@dataclass(frozen=True)
class SuiteRun:
    controls: dict[str, dict[str, Any]]  # "TLS-VERSIONS[smtp]" -> the ControlResult as JSON
    seconds: float
    returncode: int
    output: str

    def verdicts(self, verdict: str) -> set[str]:
        return {cid for cid, c in self.controls.items() if c["verdict"] == verdict}

    def base_ids(self, verdict: str) -> set[str]:
        return {cid.split("[", 1)[0] for cid in self.verdicts(verdict)}


def run_suites(
    target: Path, out: Path, *suites: str, policy: str | None = None, timeout: float = 300
) -> SuiteRun:
    """``pytest conformance/<suite> --target FILE`` in a child process; the results."""
    results = out / f"controls-{policy or 'default'}.json"
    args = [sys.executable, "-m", "pytest", *(str(SUITES / s) for s in suites or ("tls",))]
    args += ["-c", str(SUITES / "pytest.ini"), "--target", str(target), "--results", str(results)]
    args += ["-q", "--tb=line", "-p", "no:cacheprovider"]
    if policy:
        args += ["--policy", policy]
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    seconds = time.perf_counter() - started
    output = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert results.exists(), f"no results written; pytest said:\n{output}"
    data = json.loads(results.read_text())
    return SuiteRun({c["id"]: c for c in data["controls"]}, seconds, proc.returncode, output)


def describe(run: SuiteRun, ids: set[str]) -> str:
    """The verdict and reason of each control in ``ids``, one line each (for assertions)."""
    return "\n".join(
        f"  {cid}: {run.controls[cid]['verdict']} {run.controls[cid]['reason'][:200]}"
        for cid in sorted(ids)
    )
