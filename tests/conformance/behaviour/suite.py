"""Running the behavioural suite against a target file, as the proofs in tests/ need it."""

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
SUITE = ROOT / "conformance" / "behaviour"

# every control the behavioural suite declares, read from its markers
CONTROLS = frozenset(declared("behaviour"))


@dataclass(frozen=True)
class SuiteRun:
    controls: dict[str, dict[str, Any]]  # "RELAY-OPEN[smtp]" -> the ControlResult as JSON
    seconds: float
    returncode: int
    output: str
    results_text: str

    def verdicts(self, *verdicts: str) -> set[str]:
        return {cid for cid, c in self.controls.items() if c["verdict"] in verdicts}

    def base_ids(self, *verdicts: str) -> set[str]:
        return {cid.split("[", 1)[0] for cid in self.verdicts(*verdicts)}

    def describe(self, ids: set[str]) -> str:
        """The verdict and reason of each control in ``ids``, one line each."""
        return "\n".join(
            f"  {cid}: {self.controls[cid]['verdict']} {self.controls[cid]['reason'][:240]}"
            if cid in self.controls
            else f"  {cid}: (not run)"
            for cid in sorted(ids)
        )


def run_behaviour(
    target: Path, out: Path, *, keyword: str | None = None, timeout: float = 600
) -> SuiteRun:
    """``pytest conformance/behaviour --target FILE [-k EXPR]`` in a child process."""
    results = out / "behaviour-controls.json"
    args = [sys.executable, "-m", "pytest", str(SUITE), "-c", str(SUITE.parent / "pytest.ini")]
    args += ["--target", str(target), "--results", str(results)]
    args += ["-q", "--tb=line", "-p", "no:cacheprovider"]
    if keyword:
        args += ["-k", keyword]
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    seconds = time.perf_counter() - started
    output = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert results.exists(), f"no results written; pytest said:\n{output}"
    text = results.read_text()
    data = json.loads(text)
    return SuiteRun({c["id"]: c for c in data["controls"]}, seconds, proc.returncode, output, text)


def transcripts(control: dict[str, Any]) -> list[list[str]]:
    return [e["data"] for e in control["evidence"] if e["kind"] == "transcript" and e["data"]]


def probe_messages_left(target_file: Path) -> dict[str, list[int]]:
    """UIDs of "maildrill probe" messages still in account 0's INBOX and Junk (expected: none,
    every check deletes what it sent)."""
    from imapclient import IMAPClient

    from maildrill.dnsrecords.resolver import endpoint_addresses
    from maildrill.target import Role, load_target
    from maildrill.tls.context import tls_context

    target = load_target(target_file)
    endpoint = target.endpoint(Role.IMAPS)
    assert endpoint is not None
    address, port = endpoint_addresses(target, endpoint)[0]
    # counting leftovers, not judging the certificate: the weak stack's may be rejected
    ctx = tls_context(target, verify=False)
    account = target.account(0)
    left: dict[str, list[int]] = {}
    with IMAPClient(address, port=port, ssl=True, ssl_context=ctx, timeout=10) as client:
        client.login(account.local, account.password)
        for _, _, name in client.list_folders():
            if str(name).lower() in ("inbox", "junk", "spam"):
                client.select_folder(name, readonly=True)
                left[str(name)] = list(client.search(["SUBJECT", "maildrill probe"]))
    return left
