"""MTA-STS both ways with a real HTTPS policy host (RFC 8461 §3.3: port 443 only, so the
host gets its own loopback address): an enforcing policy covering every MX passes; a
testing-mode policy, one missing an MX, or a policy that is not served fails MTA-STS alone."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from maildrill.tls.testpki import make_pki
from tests.conformance.dnschecks import zones
from tests.conformance.suite import run_suites

POLICY = "version: STSv1\r\nmode: {mode}\r\n{mx}max_age: 86400\r\n"
# variant → (mode, MX patterns served, HTTP status, the MTA-STS verdict it must get)
VARIANTS = {
    "sts-enforce": ("enforce", ("mx1", "mx2"), 200, "pass"),
    "sts-wildcard": ("enforce", ("*",), 200, "pass"),
    "sts-testing": ("testing", ("mx1", "mx2"), 200, "fail"),
    "sts-uncovered": ("enforce", ("mx1",), 200, "fail"),
    "sts-not-served": ("enforce", ("mx1", "mx2"), 404, "fail"),
}


def _free_loopback_443() -> str | None:
    for n in range(77, 100):
        address = f"127.0.{n}.1"
        with socket.socket() as probe:
            try:
                probe.bind((address, 443))
            except OSError:
                continue
        return address
    return None


class _PolicyHost(BaseHTTPRequestHandler):
    policies: ClassVar[dict[str, tuple[int, str]]] = {}

    def do_GET(self) -> None:
        status, body = self.policies.get(self.headers.get("Host", ""), (404, "no such policy"))
        if self.path != "/.well-known/mta-sts.txt":
            status, body = 404, "not here"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def policy_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    address = _free_loopback_443()
    if address is None or os.geteuid() != 0:
        reason = "MTA-STS proof needs root to bind a loopback address on port 443"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(f"!!! {reason} !!!")
    names = [f"mta-sts.{label}.{zones.ORIGIN}" for label in VARIANTS]
    pki = make_pki(tmp_path_factory.mktemp("sts-pki"), names)
    _PolicyHost.policies = {}
    for label, (mode, mx, status, _verdict) in VARIANTS.items():
        lines = "".join(f"mx: {m}.{label}.{zones.ORIGIN}\r\n" if m != "*" else
                        f"mx: *.{label}.{zones.ORIGIN}\r\n" for m in mx)  # fmt: skip
        _PolicyHost.policies[f"mta-sts.{label}.{zones.ORIGIN}"] = (
            status,
            POLICY.format(mode=mode, mx=lines),
        )
    server = HTTPServer((address, 443), _PolicyHost)
    context = pki.server_context()
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield address, pki.ca_file
    server.shutdown()
    server.server_close()


def _sts(address: str) -> zones.Change:
    def change(r: zones.Records, _keys: dict[int, str]) -> None:
        r.extra += [
            f"_mta-sts.§ TXT {zones.txt('v=STSv1; id=20240101T000000')}",
            f"mta-sts.§ A {address}",
        ]

    return change


def test_mta_sts_both_ways(policy_host: tuple[str, Path], tmp_path: Path) -> None:
    address, ca_file = policy_host
    keys = {1024: zones.dkim_public(1024), 2048: zones.dkim_public(2048)}
    server = zones.serve(zones.build(keys, only={label: _sts(address) for label in VARIANTS}))
    server.start()
    try:
        for label, (*_served, wanted) in VARIANTS.items():
            target = zones.target_file(tmp_path, label, f"127.0.0.1:{server.port}", ca_file=ca_file)
            run = run_suites(target, tmp_path, "dns")
            assert run.controls["MTA-STS"]["verdict"] == wanted, (label, run.describe({"MTA-STS"}))
            others = run.verdicts("fail", "error") - {"MTA-STS"}
            assert not others, (label, run.describe(others))
    finally:
        server.stop()
