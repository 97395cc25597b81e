"""The shared start-up of the stack's small Python daemons (SPF policy server, DMARC milter).

Both listen on ``--listen host:port``, resolve through Knot at ``--resolver host:port`` (their
dnspython resolver and pyspf's lookups alike) and serve one thread per connection::

    def main(argv=None):
        return serve(_Handler, _resolver, argv, description=__doc__)
"""

from __future__ import annotations

import argparse
import socketserver

import dns.resolver
import spf

from maildrill.dnsrecords.pyspf_adapter import pyspf_lookup

__all__ = ["serve"]


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(
    handler: type[socketserver.BaseRequestHandler],
    resolver: dns.resolver.Resolver,
    argv: list[str] | None,
    *,
    description: str | None,
) -> int:
    parser = argparse.ArgumentParser(
        description=description.splitlines()[0] if description else None
    )
    parser.add_argument("--listen", required=True, help="host:port")
    parser.add_argument("--resolver", required=True, help="host:port of the DNS server")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    dns_host, _, dns_port = args.resolver.rpartition(":")
    resolver.nameservers = [dns_host]
    resolver.port = int(dns_port)
    spf.DNSLookup = pyspf_lookup(resolver, max_lifetime=5.0)
    with _Server((host, int(port)), handler) as server:
        server.serve_forever()
    return 0
