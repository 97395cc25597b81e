"""Before any check or load: can the target be reached at all?

A target whose every endpoint refuses, times out or does not resolve stops the run with
exit 3 and one line; one that is only partly down goes on, and its reachability controls
fail with the evidence.

Usage::

    reachable = preflight(target)      # {"smtp": None, "imap": "refused", ...}
"""

from __future__ import annotations

from collections.abc import Callable

from maildrill.errors import TargetError, TargetUnreachable
from maildrill.resolve import endpoint_addresses
from maildrill.target import Target
from maildrill.wire import Wire

__all__ = ["preflight"]


def preflight(
    target: Target, *, timeout: float = 5.0, progress: Callable[[str], None] | None = None
) -> dict[str, str | None]:
    """Connect once to the first node of each endpoint; ``None`` means it answered."""
    status: dict[str, str | None] = {}
    for role, endpoint in target.endpoints.items():
        try:
            address = endpoint_addresses(target, endpoint)[0]
            Wire.connect(address, endpoint.host, timeout=timeout).close()
        except TargetError as exc:
            status[str(role)] = str(exc)
        else:
            status[str(role)] = None
        if progress:
            state = status[str(role)] or "reachable"
            progress(f"  {role:<10} {endpoint.host}:{endpoint.port}  {state}")
    if all(status.values()):
        first = next(iter(status.values()))
        raise TargetUnreachable(f"target {target.name!r} unreachable: {first}")
    return status
