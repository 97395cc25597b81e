"""An authoritative DNS server for the lab domain, over UDP and TCP, built on dnspython.

It runs in its own threads, not in the asyncio loop, so that synchronous lookups made by
the mail services (pyspf, dkimpy) can never deadlock against it.

Usage::

    zone = build_zone("example.test", dkim_selector="mail", dkim_public_b64="MIIB…")
    server = DNSServer(zone)
    server.start()          # server.port is the ephemeral port, UDP and TCP alike
    ...
    server.stop()
"""

from __future__ import annotations

import logging
import socket
import socketserver
import struct
import threading

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from maildrill.tls.testpki import SERVICE_NAMES, caa_issuer

__all__ = ["DNSBL_LISTED", "DNSServer", "build_zone", "dnsbl_zone"]

log = logging.getLogger(__name__)

DNSBL_LISTED = "127.0.0.2"  # the one address the lab DNSBL lists (RFC 5782 §5 test entry)
TTL = 300


def dnsbl_zone(domain: str) -> str:
    """The DNSBL zone served for ``domain``: ``dnsbl.<domain>``."""
    return f"dnsbl.{domain}"


def _txt(value: str) -> str:
    # a TXT string holds at most 255 octets (RFC 1035 §3.3.14); split long records
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


def build_zone(domain: str, *, dkim_selector: str, dkim_public_b64: str) -> dns.zone.Zone:
    """The lab zone: SOA/NS, MX 10/20 (S11), A records, SPF (S12), DKIM (S15), DMARC (S13),
    CAA naming the lab CA (RFC 8659) and the DNSBL listing 127.0.0.2 only."""
    listed = ".".join(reversed(DNSBL_LISTED.split(".")))
    lines = [
        f"$ORIGIN {domain}.",
        f"$TTL {TTL}",
        f"@ IN SOA ns1 hostmaster 1 3600 600 86400 {TTL}",
        "@ IN NS ns1",
        "ns1 IN A 127.0.0.1",
        "@ IN A 127.0.0.1",
        "@ IN MX 10 mx1",
        "@ IN MX 20 mx2",
        # only 127.0.0.1 may send as the domain; 127.0.0.5 (say) gets SPF fail (S12)
        f"@ IN TXT {_txt('v=spf1 ip4:127.0.0.1 -all')}",
        f"{dkim_selector}._domainkey IN TXT {_txt('v=DKIM1; k=rsa; p=' + dkim_public_b64)}",
        "_dmarc IN TXT " + _txt(f"v=DMARC1; p=quarantine; pct=100; rua=mailto:postmaster@{domain}"),
        f'@ IN CAA 0 issue "{caa_issuer(domain)}"',
        f"{listed}.dnsbl IN A {DNSBL_LISTED}",
        f"{listed}.dnsbl IN TXT {_txt('listed by the maildrill lab DNSBL (test entry)')}",
    ]
    lines += [f"{name} IN A 127.0.0.1" for name in SERVICE_NAMES]
    return dns.zone.from_text("\n".join(lines) + "\n", origin=domain, relativize=False)


class _Answerer:
    """Turns a query into an authoritative answer from one zone."""

    def __init__(self, zone: dns.zone.Zone) -> None:
        self.zone = zone
        assert zone.origin is not None
        self.origin: dns.name.Name = zone.origin
        self.names = set(zone.nodes)
        soa = zone.find_rdataset(self.origin, dns.rdatatype.SOA)
        self.soa = dns.rrset.from_rdata_list(self.origin, soa.ttl, list(soa))

    def answer(self, wire: bytes, max_size: int | None) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None  # not DNS: drop, as servers do
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if query.opcode() != 0 or len(query.question) != 1:
            response.set_rcode(dns.rcode.NOTIMP if query.opcode() else dns.rcode.FORMERR)
            response.flags &= ~dns.flags.AA
            return response.to_wire()
        question = query.question[0]
        qname, rdtype = question.name, question.rdtype
        if not qname.is_subdomain(self.origin) or question.rdclass != dns.rdataclass.IN:
            response.flags &= ~dns.flags.AA
            response.set_rcode(dns.rcode.REFUSED)  # not authoritative, not a resolver
            return response.to_wire()
        node = self.zone.get_node(qname)
        if node is None:
            # an empty non-terminal (e.g. 0.0.127.dnsbl.<domain>) exists: NODATA, not NXDOMAIN
            if not any(n != qname and n.is_subdomain(qname) for n in self.names):
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self.soa)
        else:
            rdatasets = (
                list(node.rdatasets)
                if rdtype == dns.rdatatype.ANY
                else [r for r in node.rdatasets if r.rdtype == rdtype]
            )
            for rds in rdatasets:
                response.answer.append(dns.rrset.from_rdata_list(qname, rds.ttl, list(rds)))
            if not rdatasets:
                response.authority.append(self.soa)
        try:
            return response.to_wire(max_size=max_size or 65535)
        except dns.exception.TooBig:
            # RFC 1035 §4.2.1: too big for UDP, set TC; the client retries over TCP
            response.answer.clear()
            response.authority.clear()
            response.flags |= dns.flags.TC
            return response.to_wire()


def _udp_limit(wire: bytes) -> int:
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return 512
    return max(512, query.payload) if query.edns >= 0 else 512


class DNSServer:
    """UDP and TCP listeners on 127.0.0.1, the same ephemeral port for both."""

    def __init__(self, zone: dns.zone.Zone, host: str = "127.0.0.1") -> None:
        self._answerer = _Answerer(zone)
        answerer = self._answerer

        class UDPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = answerer.answer(data, _udp_limit(data))
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class TCPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(10)
                try:
                    while True:
                        head = _recv_exact(conn, 2)
                        if head is None:
                            return
                        data = _recv_exact(conn, struct.unpack("!H", head)[0])
                        if data is None:
                            return
                        reply = answerer.answer(data, None)
                        if reply is None:
                            return
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
                except OSError:
                    return

        # bind TCP first on port 0, then UDP on the same number (retry on a clash)
        for _ in range(20):
            tcp = socketserver.ThreadingTCPServer((host, 0), TCPHandler, bind_and_activate=False)
            tcp.daemon_threads = True
            tcp.allow_reuse_address = True
            tcp.server_bind()
            tcp.server_activate()
            port = tcp.server_address[1]
            try:
                udp = socketserver.UDPServer((host, port), UDPHandler)
            except OSError:
                tcp.server_close()
                continue
            break
        else:  # pragma: no cover - twenty clashes in a row
            raise OSError("could not bind DNS UDP and TCP on one port")
        self._tcp, self._udp = tcp, udp
        self.host, self.port = host, int(port)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for srv in (self._udp, self._tcp):
            thread = threading.Thread(target=srv.serve_forever, name="dns", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for srv in (self._udp, self._tcp):
            srv.shutdown()
            srv.server_close()


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    buf = b""
    while len(buf) < size:
        chunk = conn.recv(size - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf
