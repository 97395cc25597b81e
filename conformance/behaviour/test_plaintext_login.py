"""IMAP and POP3 refuse a login on the plaintext port before STARTTLS/STLS."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect
from maildrill.target import Endpoint, Role, Target
from maildrill.wire import Wire


@control(
    "HYG-PLAINTEXT-LOGIN",
    "IMAP/POP3 refuse a plaintext login before STARTTLS/STLS (LOGINDISABLED, no USER/PASS)",
    severity="high",
    reference="RFC 9051 §6.2.3 and §7.2.2 (LOGINDISABLED), RFC 2595 §3.2 and §4; seed S14",
    roles=[Role.IMAP, Role.POP3],
)
def test_plaintext_login_refused(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    # the test account's real credentials: only a refused *valid* login proves the refusal
    account = target.account(0)
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("plaintext session", wire.transcript)
        wire.read_line()
        if endpoint.role == Role.IMAP:
            _imap(wire, account.local, account.password)
        else:
            _pop3(wire, account.local, account.password)


def _imap(wire: Wire, user: str, password: str) -> None:
    status, lines = wire.imap("CAPABILITY")
    caps = {
        word.upper()
        for line in lines
        if line.upper().startswith("* CAPABILITY")
        for word in line.split()[2:]
    }
    plain_mechs = sorted(c for c in caps if c in ("AUTH=PLAIN", "AUTH=LOGIN"))
    # no credentials: a "+" continuation already shows the mechanism is open
    wire.send_line("mdauth AUTHENTICATE PLAIN")
    while not (line := wire.read_line()).startswith(("mdauth ", "+")):
        pass
    continued = line.startswith("+")
    if continued:
        wire.send_line("*")  # RFC 9051 §6.2.2: cancel the exchange
        while not wire.read_line().startswith("mdauth "):
            pass
    quoted = password.replace("\\", "\\\\").replace('"', '\\"')
    login_status, _ = wire.imap(f'LOGIN "{user}" "{quoted}"')
    wire.imap("LOGOUT")
    expect(login_status != "OK", "a plaintext LOGIN succeeded before STARTTLS")
    expect(not continued, "AUTHENTICATE PLAIN continues before STARTTLS")
    expect("LOGINDISABLED" in caps, f"no LOGINDISABLED before STARTTLS: {sorted(caps)}")
    expect(not plain_mechs, f"plaintext mechanisms offered before STARTTLS: {plain_mechs}")
    del status


def _pop3(wire: Wire, user: str, password: str) -> None:
    ok, capa = wire.pop3("CAPA", multiline=True)
    caps = {line.split(" ", 1)[0].upper() for line in capa[1:]} if ok else set()
    user_ok, _ = wire.pop3(f"USER {user}")
    pass_ok = False
    if user_ok:
        wire.redact_next = True
        pass_ok, _ = wire.pop3(f"PASS {password}")
    wire.pop3("QUIT")
    expect(not pass_ok, "a plaintext USER/PASS login succeeded before STLS")
    expect(not user_ok, "USER is accepted before STLS (RFC 2595 §4: refuse until STLS)")
    expect("USER" not in caps, f"CAPA offers USER before STLS: {sorted(caps)}")
