"""Issue 10, case 5 on the real reference stack: one certificate flaw fails only the
certificate's controls. With the mail services' certificate lacking the host names, or
carrying a 1024-bit RSA key (`stack up --weakness cert-names-missing|cert-rsa-1024`), the
whole of `maildrill check` ends with exactly the controls weaknesses.toml names failing on
the mail roles, and nothing else failing or erroring: the behavioural probes (RELAY-OPEN,
GREET-*, CAP-*, FILTER-*, AUTH-DKIM-*, HYG-*) note the rejected certificate and go on.

Each weakness gets a stack of its own (one bring-up and one whole check, about 2 minutes
each): a stack with both would not show that a 1024-bit key leaves CERT-CHAIN and CERT-SAN
alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maildrill.stack import Weakness, load_weaknesses
from tests.conformance.tls.suite import ROOT
from tests.stack.conftest import RunningStack, bring_up

CERT_WEAKNESSES = [w for w in load_weaknesses() if w.id.startswith("cert-")]
CHECK_TIMEOUT_S = 600.0


@pytest.fixture(params=CERT_WEAKNESSES, ids=[w.id for w in CERT_WEAKNESSES])
def cert_weak_stack(request: pytest.FixtureRequest) -> Iterator[tuple[Weakness, RunningStack]]:
    weakness: Weakness = request.param
    for stack in bring_up("weak", weakness.id):
        yield weakness, stack


def _check(stack: RunningStack, out: Path) -> tuple[subprocess.CompletedProcess[str], Any]:
    """The whole of `maildrill check --target …`, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "maildrill.cli", "check", "--target",
         str(stack.root / "target.toml"), "--out", str(out)],
        capture_output=True, text=True, timeout=CHECK_TIMEOUT_S, cwd=ROOT, check=False,
    )  # fmt: skip
    results = out / "results.json"
    assert results.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, {c["id"]: c for c in json.loads(results.read_text())["controls"]}


def _describe(controls: dict[str, Any], ids: set[str]) -> str:
    return "\n".join(
        f"  {cid}: {controls[cid]['verdict']} {controls[cid]['reason'][:200]}"
        for cid in sorted(ids)
    )


def _transcript(control: dict[str, Any]) -> str:
    return "\n".join(
        line for e in control["evidence"] if e["kind"] == "transcript" for line in e["data"]
    )


def test_one_certificate_flaw_fails_only_its_controls(
    cert_weak_stack: tuple[Weakness, RunningStack], tmp_path: Path
) -> None:
    weakness, stack = cert_weak_stack
    proc, controls = _check(stack, tmp_path)
    expected = {f"{c}[{role}]" for c in weakness.controls for role in weakness.roles}
    assert expected <= set(controls), sorted(expected - set(controls))
    bad = {cid for cid, c in controls.items() if c["verdict"] in ("fail", "error")}
    assert bad == expected, (
        f"{weakness.id}: unexpected\n{_describe(controls, bad - expected)}\n"
        f"expected but not failed\n{_describe(controls, expected - bad)}"
    )
    assert all(controls[cid]["verdict"] == "fail" for cid in expected)
    assert proc.returncode == 1, proc.stdout[-3000:]
    for control in weakness.controls:  # the webmail keeps its own, good certificate
        assert controls[f"{control}[webmail]"]["verdict"] == "pass", control
    # probes that met the certificate say so in their evidence, and went on without it
    for cid in ("GREET-SMTP[smtps]", "GREET-IMAP[imaps]", "GREET-POP3[pop3s]"):
        assert controls[cid]["verdict"] == "pass", _describe(controls, {cid})
        transcript = _transcript(controls[cid])
        assert "certificate rejected" in transcript, (cid, transcript)
        assert "without certificate verification" in transcript, (cid, transcript)
