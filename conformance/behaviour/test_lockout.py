"""S17: after N failed logins (fail2ban maxretry = 3) the client is refused, even with the
right password. Only where the target declares it, from a source address it names."""

from __future__ import annotations

import ipaddress
import secrets

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.errors import TargetError, TargetTimeout
from maildrill.greetings import imap_greeting_problem
from maildrill.probes.smtp import is_loopback_endpoint
from maildrill.target import Endpoint, Role, Target
from maildrill.wire import Wire

ATTEMPT_WAIT_S = 20.0
# Dovecot's auth penalty delays a failing IP's logins by up to 15 s: wait that out, so a
# throttle is told apart from a refusal
FINAL_WAIT_S = 30.0


def _login(
    target: Target, endpoint: Endpoint, source: str, password: str, log: list[str], wait: float
) -> str:
    """One IMAPS login from ``source``: "ok", "refused: …" (NO/BAD, connection refused or
    dropped, as fail2ban's REJECT/DROP do) or "slow: …" (connected, but no answer in time)."""
    user = target.account(0).local
    connected = False
    try:
        with Wire.open(target, endpoint, source=source, timeout=wait) as wire:
            connected = True
            try:
                problem = imap_greeting_problem(wire.read_line())
                if problem is not None:
                    return f"refused: {problem}"
                quoted = password.replace("\\", "\\\\").replace('"', '\\"')
                status, lines = wire.imap(f'LOGIN "{user}" "{quoted}"')
                if status == "OK":
                    wire.imap("LOGOUT")
                    return "ok"
                return f"refused: {lines[-1]}"
            finally:
                log.extend(wire.transcript)
    except TargetTimeout as exc:
        log.append(f"!: {exc}")
        # a connect that times out is a DROP rule; an answer that never comes is a throttle
        return f"slow: {exc}" if connected else f"refused: {exc}"
    except TargetError as exc:
        log.append(f"!: {exc}")
        return f"refused: {exc}"


@control(
    "HYG-LOCKOUT",
    "After the declared number of failed logins, the client is refused (fail2ban)",
    severity="medium",
    reference="seed S17 (fail2ban maxretry = 3 on smtp/ssmtp/imap/pop3)",
    roles=[Role.IMAPS],
)
def test_lockout_after_failed_logins(
    target: Target, endpoint: Endpoint, evidence: Evidence
) -> None:
    after, source = target.expect.lockout_after, target.expect.lockout_source
    if after is None:
        not_applicable("the target declares no lockout (expect.lockout_after)")
    if source is None:
        not_applicable("no expect.lockout_source: the check needs an address it may burn")
    if ipaddress.ip_address(source) == ipaddress.ip_address("127.0.0.1"):
        not_applicable("expect.lockout_source is 127.0.0.1: the harness never locks that out")
    if not is_loopback_endpoint(target, endpoint):
        not_applicable(f"{endpoint} is not on loopback: cannot send from {source}")
    log: list[str] = []
    evidence.transcript("sessions", log)
    rows = [["attempt", "password", "result"]]
    evidence.table("attempts", rows)
    password = target.account(0).password
    # the right password first: the source must not be locked out before the check
    first = _login(target, endpoint, source, password, log, ATTEMPT_WAIT_S)
    rows.append(["0", "correct", first])
    if first != "ok":
        # most likely still banned by an earlier run; the check cannot start from a clean state
        not_applicable(f"a correct login from {source} fails before any bad one: {first}")
    for n in range(1, after + 1):
        result = _login(target, endpoint, source, secrets.token_urlsafe(12), log, ATTEMPT_WAIT_S)
        rows.append([str(n), "wrong", result])
    last = _login(target, endpoint, source, password, log, FINAL_WAIT_S)
    rows.append([str(after + 1), "correct", last])
    expect(
        last.startswith("refused"),
        f"after {after} failed logins from {source} a correct login is not refused: {last}",
    )
