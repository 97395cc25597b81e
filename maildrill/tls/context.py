"""The client TLS context for a target's endpoints: it trusts the target's CA file.

Usage::

    ctx = tls_context(target)                  # verifies against target.ca_file
    ctx = tls_context(target, verify=False)    # sees what the server offers, whatever it is
"""

from __future__ import annotations

import ssl

from maildrill.errors import ConfigError
from maildrill.target import Target

__all__ = ["tls_context"]


def tls_context(target: Target, *, verify: bool = True) -> ssl.SSLContext:
    """A client context that trusts the target's CA file (or the system's CAs).

    ``verify=False`` is for checks that must see what the server offers even when the
    certificate is wrong; they report the certificate separately.
    """
    ctx = ssl.create_default_context()
    if target.ca_path is not None:
        try:
            ctx.load_verify_locations(cafile=str(target.ca_path))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"ca_file: cannot load {target.ca_path}: {exc}") from None
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
