"""The reference mail stack: real Postfix, Dovecot, OpenDKIM, SpamAssassin and Knot.

Usage::

    from maildrill.stack import up, down, status

    state = up(Path(".maildrill-stack"), profile="good")   # writes target.toml there
    target = load_target(state.target_file)
    down(Path(".maildrill-stack"))

Two profiles: ``good`` does the seed's policies right, ``weak`` turns on every weakness
listed in ``weaknesses.toml``. Each runs on its own loopback block (good 127.0.1.x,
weak 127.0.2.x, DNS on .53 port 53 of that block), so both can run at once.
Every daemon runs from its own config directory under the stack directory and is
started and stopped by pid; nothing under /etc is edited.
"""

from __future__ import annotations

from maildrill.stack.control import StackState, down, status, up
from maildrill.stack.layout import PROFILES, Layout
from maildrill.stack.weaknesses import Weakness, load_weaknesses

__all__ = [
    "PROFILES",
    "Layout",
    "StackState",
    "Weakness",
    "down",
    "load_weaknesses",
    "status",
    "up",
]
