"""The controls a conformance suite declares, read from its checks' ``control`` markers, so
the proofs in tests/ follow the suite instead of keeping a list of their own.

Usage::

    controls = declared("behaviour")      # conformance/behaviour/
    controls["HYG-VRFY"].check            # "test_vrfy_expn_confirm_no_user"
    controls["HYG-VRFY"].roles            # (Role.SMTP,)
    set(controls)                         # every control ID of the suite
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from maildrill.target import Role

__all__ = ["Declared", "declared"]

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Declared:
    id: str
    check: str  # the check's function name, for ``-k``
    roles: tuple[Role, ...] | None  # None: one verdict for the whole target


@cache
def declared(suite: str) -> dict[str, Declared]:
    """Every control of ``conformance/<suite>/``, by ID, from importing its check modules."""
    found: dict[str, Declared] = {}
    for path in sorted((ROOT / "conformance" / suite).glob("test_*.py")):
        module = importlib.import_module(f"conformance.{suite}.{path.stem}")
        for name, function in vars(module).items():
            for mark in getattr(function, "pytestmark", ()):
                if mark.name == "control" and name.startswith("test"):
                    cid = mark.kwargs["id"]
                    assert cid not in found, f"{cid} declared twice: {found[cid]} and {name}"
                    found[cid] = Declared(cid, name, mark.kwargs["roles"])
    assert found, f"no control declared under conformance/{suite}"
    return found
