"""S13 for the stack's inbound MX: a DMARC milter (RFC 7489) speaking the milter protocol.

Usage (started by ``maildrill stack up``, one process, stopped by its pid)::

    python -m maildrill.stack.dmarc_milter --listen 127.0.1.1:2895 --resolver 127.0.1.53:53

OpenDMARC is not among the stack's Debian packages, so this does its job for the stack: it
checks SPF (pyspf) and DKIM (dkimpy) against the stack's own Knot, applies the From
domain's published policy and adds ``Authentication-Results: …; dmarc=…``. A failure under
``p=quarantine`` is quarantined (Postfix's hold queue, RFC 7489 §6.6.2), under ``p=reject``
refused with 550 5.7.1; ``p=none`` only records the result. ``pct`` is read as 100.
Anything it cannot evaluate is let through, as a filter that fails open. Finding the policy,
alignment, verifying the DKIM signatures and the result are :mod:`maildrill.mailauth`'s,
shared with the embedded target.
"""

from __future__ import annotations

import socket
import socketserver
import struct
from dataclasses import dataclass, field

import dns.resolver
import spf

from maildrill.mailauth import (
    dkim_results,
    dmarc_result,
    find_dmarc_policy,
    header_from_domain,
    resolver_txt,
)
from maildrill.stack.daemon import serve

__all__ = ["Message", "evaluate", "main"]

_resolver = dns.resolver.Resolver(configure=False)
_txt = resolver_txt(_resolver, lifetime=5.0)
AUTHSERV_ID = "mx1.example.test"

# milter protocol (libmilter/mfdef.h), version 6 as Postfix speaks it
SMFIC_OPTNEG, SMFIC_CONNECT, SMFIC_HELO, SMFIC_MAIL = b"O", b"C", b"H", b"M"
SMFIC_HEADER, SMFIC_BODY, SMFIC_BODYEOB = b"L", b"B", b"E"
SMFIC_MACRO, SMFIC_ABORT, SMFIC_QUIT, SMFIC_QUIT_NC = b"D", b"A", b"Q", b"K"
SMFIR_CONTINUE, SMFIR_ADDHEADER, SMFIR_QUARANTINE, SMFIR_REPLYCODE = b"c", b"h", b"q", b"y"
SMFIF_ADDHDRS, SMFIF_QUARANTINE = 0x01, 0x20


@dataclass
class Message:
    client: str = ""
    helo: str = ""
    mail_from: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)

    def raw(self) -> bytes:
        head = "".join(
            f"{name}: {value}\r\n".replace("\r\n", "\n").replace("\n", "\r\n")
            for name, value in self.headers
        )
        return head.encode("utf-8", "surrogateescape") + b"\r\n" + bytes(self.body)


def evaluate(msg: Message) -> tuple[str, str, str]:
    """(dmarc result, the From domain's policy, Authentication-Results text)."""
    from_domain = header_from_domain(v for n, v in msg.headers if n.lower() == "from")
    if from_domain is None:
        return "none", "none", "dmarc=none (no single From address)"
    policy = find_dmarc_policy(_txt, from_domain)
    if policy is None:
        return "none", "none", f"dmarc=none header.from={from_domain}"
    spf_result, _ = spf.check2(i=msg.client, s=msg.mail_from, h=msg.helo)
    spf_domain = (msg.mail_from.rpartition("@")[2] if "@" in msg.mail_from else msg.helo).lower()
    # lazily: verifying stops at the first aligned pass
    dkim = ((r.result, r.domain) for r in dkim_results(msg.raw(), _txt))
    result = dmarc_result(policy, from_domain, (spf_result, spf_domain), dkim)
    text = f"dmarc={result} (p={policy.policy}) header.from={from_domain}"
    return result, policy.policy, text


def _packet(command: bytes, data: bytes = b"") -> bytes:
    return struct.pack("!I", len(data) + 1) + command + data


class _Handler(socketserver.BaseRequestHandler):
    def _read(self) -> tuple[bytes, bytes] | None:
        head = self._exact(4)
        if head is None:
            return None
        (length,) = struct.unpack("!I", head)
        data = self._exact(length)
        return None if not data else (data[:1], data[1:])

    def _exact(self, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def handle(self) -> None:
        sock: socket.socket = self.request
        msg = Message()
        while (packet := self._read()) is not None:
            command, data = packet
            if command == SMFIC_OPTNEG:
                sock.sendall(_packet(SMFIC_OPTNEG, struct.pack("!III", 6, 0x21, 0)))
            elif command in (SMFIC_MACRO, SMFIC_ABORT):
                if command == SMFIC_ABORT:
                    msg = Message(client=msg.client, helo=msg.helo)
            elif command in (SMFIC_QUIT, SMFIC_QUIT_NC):
                if command == SMFIC_QUIT:
                    return
                msg = Message()
            elif command == SMFIC_BODYEOB:
                msg.body += data
                sock.sendall(b"".join(self._verdict(msg)))
                msg = Message(client=msg.client, helo=msg.helo)
            else:
                if command == SMFIC_CONNECT:
                    _, _, rest = data.partition(b"\0")  # hostname, then family+port+addr
                    msg.client = rest[3:].rstrip(b"\0").decode() if rest[:1] == b"4" else ""
                elif command == SMFIC_HELO:
                    msg.helo = data.rstrip(b"\0").decode("utf-8", "replace")
                elif command == SMFIC_MAIL:
                    first = data.split(b"\0", 1)[0].decode("utf-8", "replace")
                    msg = Message(client=msg.client, helo=msg.helo, mail_from=first.strip("<>"))
                elif command == SMFIC_HEADER:
                    name, _, value = data.partition(b"\0")
                    text = value.rstrip(b"\0").decode("utf-8", "surrogateescape")
                    msg.headers.append((name.decode("utf-8", "replace"), text))
                elif command == SMFIC_BODY:
                    msg.body += data
                sock.sendall(_packet(SMFIR_CONTINUE))

    @staticmethod
    def _verdict(msg: Message) -> list[bytes]:
        try:
            result, policy, text = evaluate(msg)
        except Exception:  # fail open: a broken filter must not stop the MX
            return [_packet(SMFIR_CONTINUE)]
        if result == "fail" and policy == "reject":
            return [_packet(SMFIR_REPLYCODE, b"550 5.7.1 rejected by the From domain's DMARC\0")]
        header = f"Authentication-Results\0 {AUTHSERV_ID}; {text}\0".encode()
        replies = [_packet(SMFIR_ADDHEADER, header)]
        if result == "fail" and policy == "quarantine":
            replies.append(_packet(SMFIR_QUARANTINE, b"DMARC policy quarantine\0"))
        replies.append(_packet(SMFIR_CONTINUE))
        return replies


def main(argv: list[str] | None = None) -> int:
    return serve(_Handler, _resolver, argv, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
