"""Issue 10, case 5 on the real reference stack: one certificate flaw fails only the
certificate's controls. With the mail services' certificate lacking the host names, or
carrying a 1024-bit RSA key (`stack up --weakness cert-names-missing|cert-rsa-1024`), the
whole of `maildrill check` ends with exactly the controls weaknesses.toml names failing on
the mail roles, and nothing else failing or erroring: the behavioural probes (RELAY-OPEN,
GREET-*, CAP-*, FILTER-*, AUTH-DKIM-*, HYG-*) note the rejected certificate and go on.

Each weakness gets a stack of its own: a stack with both would not show that a 1024-bit key
leaves CERT-CHAIN and CERT-SAN alone. The two checks run at once (most of a check is
waiting: the lockout and DMARC probes), which saves CI about a minute and a half.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from maildrill.stack import Weakness, load_weaknesses
from tests.conformance.suite import SuiteRun, run_check
from tests.stack.conftest import RunningStack, bring_up

pytestmark = [pytest.mark.stack, pytest.mark.slow]

# a certificate clients reject; cert-revocation-missing is one they accept, proven with the
# TLS suite alone (test_tls_conformance.py)
CERT_WEAKNESSES = [
    w for w in load_weaknesses() if w.id.startswith("cert-") and w.id != "cert-revocation-missing"
]
CHECK_TIMEOUT_S = 600.0


@contextmanager
def _stack(weakness: Weakness) -> Iterator[RunningStack]:
    yield from bring_up("weak", weakness.id)


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SuiteRun]]:
    """Each cert weakness's stack, checked as a user runs it, all checks at once."""
    with ExitStack() as stacks, ThreadPoolExecutor(max_workers=len(CERT_WEAKNESSES)) as pool:
        futures = {}
        for weakness in CERT_WEAKNESSES:
            stack = stacks.enter_context(_stack(weakness))
            out = tmp_path_factory.mktemp(weakness.id)
            target = stack.root / "target.toml"
            futures[weakness.id] = pool.submit(run_check, target, out, timeout=CHECK_TIMEOUT_S)
        yield {wid: future.result() for wid, future in futures.items()}


def _transcript(control: dict[str, Any]) -> str:
    return "\n".join(
        line for e in control["evidence"] if e["kind"] == "transcript" for line in e["data"]
    )


@pytest.mark.parametrize("weakness_id", [w.id for w in CERT_WEAKNESSES])
def test_one_certificate_flaw_fails_only_its_controls(
    checked: dict[str, SuiteRun], weakness_id: str
) -> None:
    weakness = next(w for w in CERT_WEAKNESSES if w.id == weakness_id)
    run = checked[weakness_id]
    controls = run.controls
    expected = {f"{c}[{role}]" for c in weakness.controls for role in weakness.roles}
    assert expected <= set(controls), sorted(expected - set(controls))
    bad = {cid for cid, c in controls.items() if c["verdict"] in ("fail", "error")}
    assert bad == expected, (
        f"{weakness.id}: unexpected\n{run.describe(bad - expected)}\n"
        f"expected but not failed\n{run.describe(expected - bad)}"
    )
    assert all(controls[cid]["verdict"] == "fail" for cid in expected)
    assert run.returncode == 1, run.output
    for control in weakness.controls:  # the webmail keeps its own, good certificate
        assert controls[f"{control}[webmail]"]["verdict"] == "pass", control
    # probes that met the certificate say so in their evidence, and went on without it
    for cid in ("GREET-SMTP[smtps]", "GREET-IMAP[imaps]", "GREET-POP3[pop3s]"):
        assert controls[cid]["verdict"] == "pass", run.describe({cid})
        transcript = _transcript(controls[cid])
        assert "certificate rejected" in transcript, (cid, transcript)
        assert "without certificate verification" in transcript, (cid, transcript)
