"""Spreading connections over every node behind an endpoint (seed S4: DNS round robin).

The load runner resolves each endpoint once (:func:`maildrill.resolve.endpoint_addresses`)
and checks every address against the safety networks; clients then take nodes in turn::

    nodes = NodeCycle("mx.example.test", [("127.0.0.1", 25), ("127.0.0.2", 25)])
    address = nodes.next()      # ("127.0.0.1", 25), then ("127.0.0.2", 25), ...
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

__all__ = ["NodeCycle", "node_name"]


def node_name(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class NodeCycle:
    """Round robin over the (address, port) pairs of one endpoint host."""

    host: str
    addresses: list[tuple[str, int]]
    _cycle: itertools.cycle[tuple[str, int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.addresses:
            raise ValueError(f"{self.host}: no addresses to connect to")
        self._cycle = itertools.cycle(self.addresses)

    def next(self) -> tuple[str, int]:
        return next(self._cycle)
