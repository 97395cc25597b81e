"""MTA-STS (RFC 8461): the ``_mta-sts`` record and the policy fetched over HTTPS.

The policy host ``mta-sts.<domain>`` is resolved through the target's resolver and reached
on port 443 (RFC 8461 §3.3), verified against the target's CA file.

Usage::

    status, body = fetch_policy(target, lookups, "example.test")
"""

from __future__ import annotations

import http.client
import socket

from maildrill.dnsrecords.lookups import Lookups
from maildrill.errors import TargetUnreachable, TLSFailure
from maildrill.target import Target
from maildrill.tls.context import tls_context

__all__ = ["POLICY_PATH", "fetch_policy"]

POLICY_PATH = "/.well-known/mta-sts.txt"  # RFC 8461 §3.3
HTTPS_PORT = 443  # RFC 8461 §3.3: the policy is served on port 443 only
MAX_POLICY = 64 * 1024  # RFC 8461 §3.3: senders may refuse larger policies


def fetch_policy(
    target: Target, lookups: Lookups, domain: str, *, port: int = HTTPS_PORT, timeout: float = 10.0
) -> tuple[int, str]:
    """(HTTP status, body) of ``https://mta-sts.<domain>/.well-known/mta-sts.txt``.

    Raises :class:`~maildrill.errors.TargetUnreachable` or :class:`TLSFailure`: a policy
    that cannot be fetched is a finding (verdict fail).
    """
    host = f"mta-sts.{domain}"
    found = lookups.addresses(host)
    if not found:
        raise TargetUnreachable(f"MTA-STS: {host} has no address (RFC 8461 §3.3)")
    context = tls_context(target)
    try:
        raw = socket.create_connection((found[0], port), timeout=timeout)
    except OSError as exc:
        raise TargetUnreachable(f"MTA-STS: {host} ({found[0]}:{port}): {exc}") from None
    try:
        sock = context.wrap_socket(raw, server_hostname=host)
    except OSError as exc:
        raw.close()
        raise TLSFailure(f"MTA-STS: {host}: TLS failed: {exc}") from None
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    conn.sock = sock  # already connected to the address the target's resolver gave
    try:
        conn.request("GET", POLICY_PATH, headers={"Host": host})
        response = conn.getresponse()
        body = response.read(MAX_POLICY + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise TargetUnreachable(f"MTA-STS: GET https://{host}{POLICY_PATH}: {exc}") from None
    finally:
        conn.close()
    return response.status, body.decode("utf-8", "replace")
