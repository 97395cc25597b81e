"""STARTTLS for the mailbox sessions maildrill opens for itself (the full-chain watchers,
pre-population): taken where the server offers it; where it does not, the session goes on
in plain text, unless the target file says the endpoint must have it
(``endpoints.<role>.starttls_required``). Whether a server *should* offer it is a
conformance question (TLS-before-auth), not one for the load engine to answer by going
blind::

    imap = ImapClient(fire, nodes, tls_context=ctx)        # opened without STARTTLS
    imap.connect()
    secure(imap, target.endpoints[Role.IMAP])     # STARTTLS, plain, or PhaseError("tls")
    imap.login(user, password)
"""

from __future__ import annotations

from maildrill.clients.imap import ImapClient
from maildrill.clients.pop3 import Pop3Client
from maildrill.errors import PhaseError
from maildrill.target import Endpoint

__all__ = ["secure"]


def secure(client: ImapClient | Pop3Client, endpoint: Endpoint) -> None:
    """STARTTLS (IMAP) or STLS (POP3) on a connection just opened, where offered.

    Raises an already-reported :class:`~maildrill.errors.PhaseError` (phase
    ``starttls``, kind ``tls``) when the server offers none and the endpoint requires it."""
    if endpoint.implicit_tls:
        return
    if isinstance(client, ImapClient):
        offered = client.offers_starttls()
    else:
        offered = "STLS" in client.capa()  # RFC 2595 §4; no CAPA at all: none offered
    if offered:
        client.starttls()
    elif endpoint.starttls_required:
        error = PhaseError(
            "tls",
            f"the server offers no STARTTLS, and the target file says "
            f"endpoints.{endpoint.role}.starttls_required = true",
        )
        client.meter.emit("starttls", 0, exception=error)
        raise error
