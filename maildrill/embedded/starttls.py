"""What every STARTTLS/STLS implementation of the lab must do before its TLS handshake.

Usage::

    await send("+OK begin TLS negotiation")
    discard_plaintext(reader)
    await writer.start_tls(ctx)
"""

from __future__ import annotations

import asyncio

__all__ = ["discard_plaintext"]


def discard_plaintext(reader: asyncio.StreamReader) -> None:
    """Drop bytes the client pipelined after STARTTLS/STLS, before the handshake.

    RFC 2595 §3.1 / RFC 3207 §4.2: nothing sent before TLS may be acted on inside it
    (STARTTLS command injection, CVE-2011-0411). asyncio has no public call for this; the
    buffer is what aiosmtpd clears for the same reason.
    """
    buffer: bytearray = reader._buffer  # type: ignore[attr-defined]
    buffer.clear()
