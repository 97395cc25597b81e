"""Before any check or load: can the target be reached at all, and does each endpoint talk?

:func:`preflight` connects once to each endpoint: a target whose every endpoint refuses,
times out or does not resolve stops the run with exit 3 and one line; one that is only
partly down goes on.

:func:`health` goes one step further for the conformance checks: it connects to the node
every check uses (an endpoint's first address), reads the greeting and sends the protocol's
first command, all endpoints at once. An endpoint that fails one of these steps blocks
every later check on it: those end ``error`` at once, naming the control whose subject the
failure is ("blocked by GREET-SMTP[smtp]: ..."), instead of each waiting out its own
timeout against a server that hangs or talks nonsense.

Usage::

    reachable = preflight(target)      # {"smtp": None, "imap": "refused", ...}
    blocked = health(target)           # {Role.SMTP: Blocker("CAP-SMTP-STARTTLS", ...)}
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from maildrill.dnsrecords.resolver import endpoint_addresses
from maildrill.errors import TargetError, TargetUnreachable, TLSFailure
from maildrill.greetings import imap_greeting_problem, pop3_greeting_problem, smtp_greeting_problem
from maildrill.smtp_protocol import EHLO_NAME
from maildrill.target import Endpoint, Role, Target
from maildrill.tls.context import tls_context
from maildrill.wire import Wire

__all__ = ["Blocker", "health", "layer", "preflight"]

HEALTH_TIMEOUT = 10.0  # the checks' own per-read timeout (Wire's default): no stricter

# how deep into a session each control goes: a failure at one layer blocks the controls of
# the layers above it, not those of its own layer or below (they report it themselves)
_LAYERS = (("REACH-", 0), ("GREET-", 1), ("CAP-", 2))
_GREETING_OWNER = {
    Role.SMTP: "GREET-SMTP",
    Role.SUBMISSION: "GREET-SMTP",
    Role.SMTPS: "GREET-SMTP",
    Role.IMAP: "GREET-IMAP",
    Role.IMAPS: "GREET-IMAP",
    Role.POP3: "GREET-POP3",
    Role.POP3S: "GREET-POP3",
}
_COMMAND_OWNER = {
    Role.SMTP: "CAP-SMTP-STARTTLS",
    Role.SUBMISSION: "CAP-SMTP-STARTTLS",
    Role.SMTPS: "CAP-SMTP-AUTH",
    Role.IMAP: "CAP-IMAP",
    Role.IMAPS: "CAP-IMAP",
    Role.POP3: "CAP-POP3",
    Role.POP3S: "CAP-POP3",
}


@dataclass(frozen=True)
class Blocker:
    """Why checks on one endpoint cannot find anything out, and which control owns that."""

    control: str  # the base control id, e.g. "GREET-SMTP"
    role: Role
    reason: str

    @property
    def layer(self) -> int:
        return layer(self.control)

    def blocks(self, control_id: str) -> bool:
        """Whether the control ``control_id`` (base id) cannot run past this failure."""
        return layer(control_id) > self.layer

    def __str__(self) -> str:
        return f"blocked by {self.control}[{self.role}]: {self.reason}"


def layer(control_id: str) -> int:
    for prefix, depth in _LAYERS:
        if control_id.startswith(prefix):
            return depth
    return len(_LAYERS)


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


def health(target: Target, *, timeout: float = HEALTH_TIMEOUT) -> dict[Role, Blocker]:
    """The endpoints whose first node cannot carry a check, each with its :class:`Blocker`.

    Every endpoint is probed at once, so the whole takes at most about ``timeout`` seconds.

    Example::

        for role, blocker in health(load_target("lab.toml")).items():
            print(role, blocker)     # smtp blocked by GREET-SMTP[smtp]: no greeting ...
    """
    roles = list(target.endpoints)
    with ThreadPoolExecutor(max_workers=max(1, len(roles))) as pool:
        found = pool.map(lambda r: _probe(target, r, target.endpoints[r], timeout), roles)
        return {role: blocker for role, blocker in zip(roles, found, strict=True) if blocker}


def _probe(target: Target, role: Role, endpoint: Endpoint, timeout: float) -> Blocker | None:
    try:
        address = endpoint_addresses(target, endpoint)[0]
        wire = Wire.connect(address, endpoint.host, timeout=timeout)
    except TargetError as exc:
        return Blocker("REACH-CONNECT", role, str(exc))
    try:
        if endpoint.implicit_tls:
            try:
                wire.start_tls(tls_context(target, verify=False))
            except TLSFailure as exc:
                return Blocker("REACH-CONNECT", role, str(exc))
        if role is Role.WEBMAIL:
            return None  # HTTP speaks only when asked; GREET-HTTP asks
        try:
            refusal = _greeting(role, wire)
        except TargetError as exc:
            return Blocker(_GREETING_OWNER[role], role, f"greeting: {exc}")
        if refusal:
            return Blocker(_GREETING_OWNER[role], role, refusal)
        try:
            _first_command(role, wire)
        except TargetError as exc:
            command = _COMMAND_NAME[_COMMAND_OWNER[role]]
            return Blocker(_COMMAND_OWNER[role], role, f"{command}: {exc}")
        return None
    finally:
        wire.close()


def _greeting(role: Role, wire: Wire) -> str | None:
    """Why the greeting opens no session (:mod:`maildrill.greetings`' rule, as the GREET-*
    controls apply it; PREAUTH opens one), or None; :class:`TargetError` when none comes."""
    owner = _GREETING_OWNER[role]
    if owner == "GREET-SMTP":
        return smtp_greeting_problem(wire.read_smtp())
    if owner == "GREET-IMAP":
        return imap_greeting_problem(wire.read_line(), preauth=True)
    return pop3_greeting_problem(wire.read_line())


_COMMAND_NAME = {
    "CAP-SMTP-STARTTLS": "EHLO",
    "CAP-SMTP-AUTH": "EHLO",
    "CAP-IMAP": "CAPABILITY",
    "CAP-POP3": "CAPA",
}


def _first_command(role: Role, wire: Wire) -> None:
    """The protocol's first command answered in time and in the protocol (any status)."""
    owner = _COMMAND_OWNER[role]
    if owner.startswith("CAP-SMTP"):
        wire.smtp(f"EHLO {EHLO_NAME}")
        wire.send_line("QUIT")
    elif owner == "CAP-IMAP":
        wire.imap("CAPABILITY")
    else:
        wire.pop3("CAPA", multiline=True)
