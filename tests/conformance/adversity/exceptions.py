"""Every exception a probe can meet on the way to what it tests, built from a message.

The maildrill error tree (walked, so a new class is covered the day it is added) and what
the standard library raises under a socket, a TLS layer or a decoder. Not NotApplicable: a
probe raises that on purpose, and it is the verdict not-applicable (tests/core/test_plugin.py).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

from maildrill.errors import MaildrillError, NotApplicable

__all__ = ["MAKERS"]


def _tree(base: type[BaseException]) -> list[type[BaseException]]:
    found = [base]
    for sub in base.__subclasses__():
        found += _tree(sub)
    return found


MAKERS: dict[str, Callable[[str], BaseException]] = {
    **{cls.__name__: cls for cls in _tree(MaildrillError) if cls is not NotApplicable},
    "OSError": lambda m: OSError(104, m),
    "ConnectionResetError": lambda m: ConnectionResetError(104, m),
    "ConnectionRefusedError": lambda m: ConnectionRefusedError(111, m),
    "socket.timeout": socket.timeout,
    "socket.gaierror": lambda m: socket.gaierror(-2, m),
    "ssl.SSLError": lambda m: ssl.SSLError(1, m),
    "ssl.SSLCertVerificationError": lambda m: ssl.SSLCertVerificationError(1, m),
    "ssl.SSLEOFError": lambda m: ssl.SSLEOFError(8, m),
    "EOFError": EOFError,
    "UnicodeDecodeError": lambda m: UnicodeDecodeError("utf-8", b"\xff" + m.encode(), 0, 1, m),
    "TimeoutError": TimeoutError,
}
