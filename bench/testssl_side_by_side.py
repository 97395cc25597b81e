"""Benchmark: testssl.sh and ``maildrill check`` side by side on the reference stack, for
the good profile and for each TLS, certificate and CAA weakness alone (issue 17).

    sudo python bench/testssl_side_by_side.py --dir /tmp/mdssl --out /tmp/mdssl/out

For each stack (``stack up --profile good``, then ``--profile weak --weakness ID`` one at a
time, in DIR/<name> on ``--net``) it runs

- testssl.sh (Debian's ``testssl.sh`` package, not needed by the tests) on each chosen
  port, ports in parallel: ``--starttls smtp|imap|pop3`` on the STARTTLS ports, plain on
  the implicit-TLS ones, ``--add-ca`` the stack's CA, ``--jsonfile``, ``--quiet``,
  ``--warnings off``, connect/openssl timeouts and a bounded wall time per port. It runs in
  a mount namespace of its own whose /etc/resolv.conf names the stack's Knot, so it
  resolves the target file's host names and looks up CAA as it would in production (the
  machine's resolv.conf is untouched);
- ``maildrill check --target DIR/<name>/target.toml -k "tls or dns"``: every TLS,
  certificate and DNS control, on all seven mail ports and the webmail;

and prints one Markdown row per stack: testssl.sh's findings at MEDIUM or above, the
maildrill controls that failed or warned (each also as "beyond the good stack"), and the
two wall times, with the load average. ``--ports all`` runs testssl.sh on all seven mail
ports of every stack; the default runs all seven on the good stack and ``smtp`` (STARTTLS)
+ ``imaps`` (implicit TLS) on each weakness. Raw results go to OUT/<name>/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from maildrill.stack import load_weaknesses
from maildrill.target import IMPLICIT_TLS, Role, load_target

MAIL_ROLES = ("smtp", "submission", "smtps", "imap", "imaps", "pop3", "pop3s")
TWO_PORTS = ("smtp", "imaps")  # one STARTTLS port (Postfix), one implicit-TLS port (Dovecot)
STARTTLS = {"smtp": "smtp", "submission": "smtp", "imap": "imap", "pop3": "pop3"}
SEVERE = ("MEDIUM", "HIGH", "CRITICAL")
PORT_TIMEOUT_S = 900  # one testssl.sh run: 50-90 s on an idle 2-core box, minutes when loaded
STACK = [sys.executable, "-m", "maildrill", "stack"]


@dataclass
class Row:
    name: str
    ports: tuple[str, ...]
    testssl: dict[str, list[str]] = field(default_factory=dict)  # role -> "id (SEVERITY)"
    testssl_s: dict[str, float] = field(default_factory=dict)  # role -> wall seconds
    testssl_wall_s: float = 0.0  # all ports at once
    failed: list[str] = field(default_factory=list)  # control IDs, TLS-VERSIONS[smtp]
    errors: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)
    maildrill_s: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average before, after


def weaknesses_to_compare() -> list[str]:
    """Every weakness naming a TLS or certificate control, and the CAA one."""
    return [
        w.id
        for w in load_weaknesses()
        if any(c.startswith(("TLS-", "CERT-")) or c == "DNS-CAA" for c in w.controls)
    ]


def testssl_port(root: Path, role: str, out: Path) -> tuple[list[str], float]:
    """testssl.sh on the endpoint of ``role``: its findings at MEDIUM or above, wall time."""
    target = load_target(root / "target.toml")
    endpoint = target.endpoints[Role(role)]
    resolver = target.dns.resolver_address
    assert resolver is not None and resolver[1] == 53, "resolv.conf takes no port"
    resolv = out / "resolv.conf"
    resolv.write_text(f"nameserver {resolver[0]}\noptions timeout:2 attempts:2\n")
    json_file = out / f"testssl-{role}.json"
    json_file.unlink(missing_ok=True)
    command = ["testssl", "--quiet", "--warnings", "off", "--color", "0"]
    command += ["--connect-timeout", "10", "--openssl-timeout", "10"]
    command += ["--add-ca", str(target.ca_path), "--jsonfile", str(json_file)]
    if Role(role) not in IMPLICIT_TLS:
        command += ["--starttls", STARTTLS[role]]
    command.append(f"{endpoint.host}:{endpoint.port}")
    # a private mount namespace: only this process tree sees the stack's resolver
    shell = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    started = time.perf_counter()
    with (out / f"testssl-{role}.txt").open("w") as log:
        proc = subprocess.Popen(
            ["unshare", "--mount", "sh", "-c", shell, str(resolv), *command],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            proc.wait(timeout=PORT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # testssl.sh and the openssl it started
            proc.wait()
    seconds = time.perf_counter() - started
    if not json_file.exists():
        return [f"(no JSON written; see {out / f'testssl-{role}.txt'})"], seconds
    try:
        found = json.loads(json_file.read_text() or "[]")
    except json.JSONDecodeError:  # cut off by the timeout
        return [f"(incomplete JSON after {seconds:.0f} s; see {json_file})"], seconds
    severe = [f"{f['id']} ({f['severity']})" for f in found if f.get("severity") in SEVERE]
    return sorted(set(severe)), seconds


def maildrill_check(root: Path, out: Path) -> tuple[list[str], list[str], list[str], float]:
    """The controls that failed, errored, and passed with a warning; the wall time."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "maildrill", "check", "--target", str(root / "target.toml"),
         "-k", "tls or dns", "--out", str(out / "maildrill")],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    controls = json.loads((out / "maildrill" / "results.json").read_text())["controls"]

    def ids(verdict: str, warned: bool = False) -> list[str]:
        return sorted(
            c["id"] for c in controls if c["verdict"] == verdict and (c["warnings"] or not warned)
        )

    return ids("fail"), ids("error"), ids("pass", warned=True), seconds


def measure(
    name: str, weakness: str | None, ports: tuple[str, ...], args: argparse.Namespace
) -> Row:
    root, out = args.dir / name, args.out / name
    if root.exists():  # left by an interrupted run: stop what may still run there first
        subprocess.run([*STACK, "down", "--dir", str(root)], capture_output=True, check=False)
        shutil.rmtree(root)
    root.mkdir(parents=True)
    root.chmod(0o755)  # the daemons run unprivileged
    out.mkdir(parents=True, exist_ok=True)
    only = ["--profile", "weak", "--weakness", weakness] if weakness else ["--profile", "good"]
    subprocess.run([*STACK, "up", *only, "--net", args.net, "--dir", str(root)], check=True)
    row = Row(name, ports)
    try:
        before = os.getloadavg()[0]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(ports)) as pool:
            runs = {role: pool.submit(testssl_port, root, role, out) for role in ports}
            for role, run in runs.items():
                row.testssl[role], row.testssl_s[role] = run.result()
        row.testssl_wall_s = time.perf_counter() - started
        row.failed, row.errors, row.warned, row.maildrill_s = maildrill_check(root, out)
        row.load = (before, os.getloadavg()[0])
    finally:
        subprocess.run([*STACK, "down", "--dir", str(root)], check=False)
    (out / "row.json").write_text(json.dumps(row.__dict__, indent=1) + "\n")
    return row


def _by_subject(pairs: list[tuple[str, str]]) -> dict[str, set[str]]:
    """(finding, port) pairs → finding: its ports."""
    found: dict[str, set[str]] = {}
    for finding, port in pairs:
        found.setdefault(finding, set()).add(port)
    return found


def _testssl(row: Row) -> dict[str, set[str]]:
    return _by_subject([(f, role) for role, fs in row.testssl.items() for f in fs])


def _controls(ids: list[str]) -> dict[str, set[str]]:
    """``TLS-VERSIONS[smtp]`` → {"TLS-VERSIONS": {"smtp"}}."""
    return _by_subject([(i.split("[")[0], i.partition("[")[2].rstrip("]")) for i in ids])


def _cell(found: dict[str, set[str]], baseline: dict[str, set[str]] | None) -> str:
    """Each finding with its ports; in bold when the good stack (``baseline``) lacks it."""
    shown = []
    for key in sorted(found):
        ports = {p for p in found[key] if p}
        if not ports:
            where = ""
        elif ports == set(MAIL_ROLES):
            where = " [7 mail ports]"
        elif ports == {*MAIL_ROLES, "webmail"}:
            where = " [all 8 endpoints]"
        else:
            where = f" [{', '.join(sorted(ports))}]"
        new = baseline is not None and key not in baseline
        shown.append(f"**{key}**{where}" if new else f"{key}{where}")
    return "; ".join(shown) or "—"


def table(rows: list[Row]) -> str:
    good = rows[0]
    lines = [
        "| stack | testssl.sh ≥ MEDIUM | maildrill fail | maildrill warning | "
        "testssl.sh wall | maildrill wall (8 endpoints + DNS) | load avg |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        first = row is good  # the good stack is the baseline: bold marks what is not in it
        ssl = _cell(_testssl(row), None if first else _testssl(good))
        failed = _cell(_controls(row.failed), None if first else _controls(good.failed))
        if row.errors:
            failed += "; error: " + ", ".join(row.errors)
        warned = _cell(_controls(row.warned), None if first else _controls(good.warned))
        each = sorted(row.testssl_s.values())
        per_port = f"{len(each)} ports at once, each {each[0]:.0f}–{each[-1]:.0f} s"
        lines.append(
            f"| {row.name} | {ssl} | {failed} | {warned} | "
            f"{row.testssl_wall_s:.0f} s ({per_port}) | {row.maildrill_s:.0f} s | "
            f"{row.load[0]:.1f} → {row.load[1]:.1f} |"
        )
    return "\n".join(lines)


def _measured(out: Path) -> list[Row]:
    """The rows written by an earlier run, good first, then in weaknesses.toml's order."""
    order = ["good", *weaknesses_to_compare()]
    found = {p.parent.name: p for p in out.glob("*/row.json")}
    rows = []
    for name in (n for n in order if n in found):
        data = json.loads(found[name].read_text())
        data["ports"], data["load"] = tuple(data["ports"]), tuple(data["load"])
        rows.append(Row(**data))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/maildrill-bench-testssl"))
    parser.add_argument("--out", type=Path, default=None, help="raw results (default DIR/out)")
    parser.add_argument("--net", default="127.0.91")
    parser.add_argument(
        "--ports", choices=("two", "all"), default="two",
        help="testssl.sh on each weakness: smtp + imaps, or all seven mail ports",
    )  # fmt: skip
    parser.add_argument(
        "--weakness", action="append", default=None,
        help="only this weakness (repeatable; default: every TLS/certificate/CAA one)",
    )  # fmt: skip
    parser.add_argument(
        "--table-only", action="store_true",
        help="print the table of the rows already measured in OUT, run nothing",
    )  # fmt: skip
    args = parser.parse_args()
    args.out = args.out or args.dir / "out"
    if args.table_only:
        print(table(_measured(args.out)))
        return 0
    if shutil.which("testssl") is None:
        print("testssl.sh is not installed (Debian: apt-get install testssl.sh)", file=sys.stderr)
        return 2
    weak_ports = MAIL_ROLES if args.ports == "all" else TWO_PORTS
    started = time.perf_counter()
    rows = [measure("good", None, MAIL_ROLES, args)]
    print(table(rows), flush=True)
    for weakness in args.weakness or weaknesses_to_compare():
        rows.append(measure(weakness, weakness, weak_ports, args))
        print(table(rows), flush=True)
    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} CPUs; "
          f"total {time.perf_counter() - started:.0f} s")  # fmt: skip
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
