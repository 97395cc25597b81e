"""The weak profile's list of deliberate weaknesses, read from ``weaknesses.toml``.

Usage::

    for w in load_weaknesses():
        print(w.id, w.controls)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

__all__ = ["Weakness", "load_weaknesses", "weakness_ids"]


@dataclass(frozen=True)
class Weakness:
    id: str
    description: str
    seed: str
    roles: tuple[str, ...]
    controls: tuple[str, ...]
    # what those controls give under the stack's own policy (seed): "fail", or "warning"
    # where seed does not require the thing (they fail under a stricter profile)
    verdict: str = "fail"


def load_weaknesses() -> tuple[Weakness, ...]:
    """Every weakness of the weak profile, in file order."""
    text = resources.files("maildrill.stack").joinpath("weaknesses.toml").read_text("utf-8")
    return tuple(
        Weakness(
            id=str(item["id"]),
            description=str(item["description"]),
            seed=str(item["seed"]),
            roles=tuple(item["roles"]),
            controls=tuple(item["controls"]),
            verdict=str(item.get("verdict", "fail")),
        )
        for item in tomllib.loads(text)["weakness"]
    )


def weakness_ids() -> frozenset[str]:
    return frozenset(w.id for w in load_weaknesses())
