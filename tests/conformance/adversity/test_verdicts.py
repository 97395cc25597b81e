"""Issue 10, cases 5 and 7: verdicts stay true when the server misbehaves.

- ``fail`` means the server was seen doing the wrong thing, ``error`` that the check could
  not find out: one certificate flaw fails only the certificate's controls (the behavioural
  probes note it and go on), and a server that answers garbage or hangs after its banner
  fails the one control whose subject that is, while every other check on it ends ``error``
  at once, "blocked by" that control — in bounded time, without a third-party traceback;
- an sslyze crash on one node is that node's error, within the scan deadline.

All against scripted servers on loopback (tests/conformance/reachability/servers.py for
well-behaved mail ports, tests/conformance/adversity/servers.py for the broken one).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maildrill.target import Role, load_target
from maildrill.tls.scan import scan_target
from tests.conformance.adversity.servers import misbehaving
from tests.conformance.reachability.servers import serve
from tests.conformance.suite import ROOT, run_suites
from tests.conformance.tls.pki import Leaf

# -- case 5: one certificate flaw ----------------------------------------------------------

CERT_FLAWS = {
    # RFC 6125 §6.4: the name is not in the SAN; sslyze's path validation checks it too
    "names-missing": (
        Leaf(ip=None, dns_names=("elsewhere.example.test",)),
        {"CERT-SAN", "CERT-CHAIN"},
    ),
    # RFC 9325 §4.3: a 1024-bit RSA key (this machine's OpenSSL rejects it when verifying)
    "rsa-1024": (Leaf(key_bits=1024), {"CERT-KEY"}),
}
TLS_PORTS = ("smtp", "submission", "smtps", "imap", "imaps", "pop3", "pop3s")


@pytest.mark.slow  # a reachability and TLS suite run each, sslyze scanning seven ports
@pytest.mark.parametrize("flaw", sorted(CERT_FLAWS))
def test_one_certificate_flaw_fails_only_the_certificate_controls(
    flaw: str, tmp_path: Path
) -> None:
    leaf, owners = CERT_FLAWS[flaw]
    with serve(tmp_path, dict.fromkeys(Role), leaf) as target:
        run = run_suites(target, tmp_path, "reachability", "tls")
    expected = {f"{control}[{role}]" for control in owners for role in TLS_PORTS}
    bad = run.verdicts("fail") | run.verdicts("error")
    assert bad == expected, run.describe(bad ^ expected)
    # the probes that met the certificate say so in their evidence, and went on
    greeting = run.controls["GREET-SMTP[smtps]"]
    assert greeting["verdict"] == "pass", run.describe({"GREET-SMTP[smtps]"})
    transcript = "\n".join(
        line for e in greeting["evidence"] if e["kind"] == "transcript" for line in e["data"]
    )
    assert "certificate rejected" in transcript, transcript
    assert "without certificate verification" in transcript, transcript


# -- case 7: a server that answers garbage, one that hangs after its banner ----------------

OWNER = {"garbage": "GREET-SMTP[smtp]", "hang_after_banner": "CAP-SMTP-STARTTLS[smtp]"}
BOUND_S = {"garbage": 30.0, "hang_after_banner": 60.0}  # before: 120+ s and 175-200 s


# the hang waits out the capability check's timeout (~20 s); garbage shows the same
# blocking quickly
@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(b, marks=[pytest.mark.slow] if b == "hang_after_banner" else [])
        for b in sorted(OWNER)
    ],
)
def test_misbehaving_server_blocks_quietly_and_fast(behaviour: str, tmp_path: Path) -> None:
    with misbehaving(tmp_path, behaviour) as target:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "maildrill", "check", "--target", str(target),
             "--out", str(tmp_path / "out")],
            capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
        )  # fmt: skip
        took = time.monotonic() - started
    assert took < BOUND_S[behaviour], f"maildrill check took {took:.0f} s"
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    assert proc.returncode == 1, proc.stdout[-3000:]
    controls = json.loads((tmp_path / "out" / "results.json").read_text())["controls"]
    smtp = {c["id"]: c for c in controls if c["id"].endswith("[smtp]")}
    failed = {cid for cid, c in smtp.items() if c["verdict"] == "fail"}
    errors = {cid for cid, c in smtp.items() if c["verdict"] == "error"}
    assert failed == {OWNER[behaviour]}, [(cid, smtp[cid]["reason"]) for cid in failed]
    assert len(errors) > 15, sorted(errors)
    for cid in errors:  # each names the control that owns the cause
        assert smtp[cid]["reason"].startswith(f"blocked by {OWNER[behaviour]}: "), smtp[cid]
    # the console tells failures and errors apart
    summary = next(line for line in proc.stdout.splitlines() if line.startswith("controls:"))
    assert f"{len(errors)} errors" in summary, summary


def test_sslyze_crash_is_the_nodes_error_within_the_deadline(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # sslyze's SMTP helper decodes a non-220 greeting as UTF-8: this one is not UTF-8
    with misbehaving(tmp_path, "garbage", roles=("smtp", "imap")) as target:
        started = time.monotonic()
        scan = scan_target(load_target(target), deadline=30.0)
        took = time.monotonic() - started
    assert took < 20.0, f"the scan took {took:.0f} s: it waited for a crashed job"
    (smtp,) = scan.endpoint(Role.SMTP).nodes
    assert smtp.error is not None and "UnicodeDecodeError" in smtp.error, smtp.error
    (imap,) = scan.endpoint(Role.IMAP).nodes
    assert imap.error is not None and "rejected" in imap.error, imap.error
    assert "Traceback" not in capfd.readouterr().err
