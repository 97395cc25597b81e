"""SPF for the stack's inbound MX: a Postfix policy delegation server (SMTPD_POLICY_README).

Usage (started by ``maildrill stack up``, one process, stopped by its pid)::

    python -m maildrill.stack.spf_policy --listen 127.0.1.1:2893 --resolver 127.0.1.53:53

Debian's postfix-policyd-spf-python would do the same with the same library (pyspf), but it
asks the system resolver, and the stack's DNS is its own Knot on a loopback address. A
``fail`` is refused with 550 5.7.23 (RFC 7372 §3.2); anything else gets a Received-SPF
header (RFC 7208 §9.1) and goes on to the next restriction.
"""

from __future__ import annotations

import socketserver

import dns.exception
import dns.resolver
import spf

from maildrill.stack.daemon import serve

__all__ = ["decide", "main"]

_resolver = dns.resolver.Resolver(configure=False)


def decide(request: dict[str, str]) -> str:
    """The policy action for one Postfix request (its attributes as a dict)."""
    if request.get("request") != "smtpd_access_policy" or request.get("sasl_username"):
        return "DUNNO"
    client = request.get("client_address", "")
    sender = request.get("sender", "")
    helo = request.get("helo_name", "")
    try:
        result, explanation = spf.check2(i=client, s=sender, h=helo)
    except Exception as exc:  # a policy server that dies takes the MX with it
        return f"PREPEND X-SPF-Error: {type(exc).__name__}"
    if result == "fail":
        return f"550 5.7.23 SPF fail for {sender or helo} from {client}: {explanation}"
    identity = f"envelope-from=<{sender}>; client-ip={client}; helo={helo}"
    return f"PREPEND Received-SPF: {result} ({explanation}) {identity}"


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        request: dict[str, str] = {}
        for raw in self.rfile:  # Postfix keeps the connection for several requests
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                name, _, value = line.partition("=")
                request[name] = value
                continue
            self.wfile.write(f"action={decide(request)}\n\n".encode())
            self.wfile.flush()
            request = {}


def main(argv: list[str] | None = None) -> int:
    return serve(_Handler, _resolver, argv, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
