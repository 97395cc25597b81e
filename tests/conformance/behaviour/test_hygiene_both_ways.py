"""The behavioural controls a scripted mail system can answer, proven both ways without root:
the sound system (:mod:`.mailsystem`) passes every one of them on every role, and the same
system with exactly one weakness fails exactly that control, on exactly the roles it
weakens, for that reason, while every other control still passes.

Each case writes a target file for the system and runs these checks (``-k``): the rest of
the behavioural suite needs a full mail system. HYG-SMUGGLING runs only in its own cases and
the sound one, since it waits 5 s for an early reply; a flaw that takes the system down runs
only its own check, since every later check would find nothing to connect to."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from maildrill.target import Role
from tests.conformance.behaviour.mailsystem import (
    ALL_ROLES,
    END_OF_DATA,
    LIMIT,
    Flaws,
    mail_system,
    server_pki,
)
from tests.conformance.declared import declared
from tests.conformance.suite import run_suites

SUITE = declared("behaviour")
SCRIPTED = (  # the controls the scripted system can answer
    "HYG-BANNER",
    "HYG-SIZE",
    "HYG-PLAINTEXT-LOGIN",
    "RELAY-OPEN",
    "HYG-VRFY",
    "HYG-LONG-COMMAND",
    "HYG-AUTH-PLAINTEXT",
    "HYG-SMUGGLING",
)
WAITS = {"HYG-SMUGGLING"}  # checks that wait out a quiet server
MAILBOX_ROLES = (Role.IMAPS, Role.IMAP)  # where a check deletes what it got through


@dataclass(frozen=True)
class Case:
    control: str | None  # the one control the flaw is about; None: the sound system
    flaws: Flaws
    fails: Mapping[Role, str] = field(default_factory=dict)  # roles failing, words of reason
    roles: tuple[Role, ...] = ALL_ROLES  # the endpoints the target file names
    alone: bool = False  # run only this control's check

    @property
    def controls(self) -> tuple[str, ...]:
        if self.alone and self.control:
            return (self.control,)
        return tuple(c for c in SCRIPTED if c not in WAITS or c == self.control or not self.control)

    def expected(self) -> dict[str, str]:
        """Control ID -> verdict, for every role of every control run."""
        verdicts = {}
        for control in self.controls:
            for role in SUITE[control].roles or ():
                if role not in self.roles:
                    verdict = "not-applicable"  # the target names no such endpoint
                elif control == self.control and role in self.fails:
                    verdict = "fail"
                else:
                    verdict = "pass"
                verdicts[f"{control}[{role}]"] = verdict
        return verdicts


VERSIONED = {
    Role.SMTP: "220 mx.example.test ESMTP Postfix 3.7.11",
    # IIS's SMTP service: a four-part version
    Role.SUBMISSION: "220 mx.example.test Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675",
    Role.IMAPS: "* OK Dovecot 2.3.19 ready.",
    Role.POP3: "+OK Dovecot 2.3.19 ready.",
    # Zimbra's build suffix, joined to the version by an underscore
    Role.IMAP: "* OK mail.example.test Zimbra IMAP4rev1 server ready 8.8.15_GA_4484",
}
# an address in a greeting is not a version
SOUND = Flaws(banners={Role.SMTPS: "220 mx.example.test ESMTP ready (192.0.2.25)"})
RELAYED = "relay-victim@relay-test.invalid"  # the check's foreign recipient

CASES = {
    "sound": Case(None, SOUND),
    "banner-versioned": Case(
        "HYG-BANNER",
        Flaws(banners=VERSIONED),
        {
            Role.SMTP: "3.7.11",
            Role.SUBMISSION: "6.0.3790.4675",
            Role.IMAPS: "2.3.19",
            Role.POP3: "2.3.19",
            Role.IMAP: "8.8.15_GA_4484",
        },
    ),
    "size-not-advertised": Case(
        "HYG-SIZE", Flaws(size_advertised=False), {Role.SMTP: "does not advertise SIZE"}
    ),
    # RFC 1870 §6.1: a declared size over the limit must get 552
    "size-declared-accepted": Case(
        "HYG-SIZE",
        Flaws(declared_size_refused=False),
        {Role.SMTP: f"SIZE={LIMIT + 1} answered 250"},
    ),
    # RFC 1870 §6.3: the limit holds for a client that does not declare the size too
    "size-oversize-accepted": Case(
        "HYG-SIZE", Flaws(oversize_refused=False), {Role.SMTP: f"(SIZE {LIMIT}) answered 250"}
    ),
    # without a mailbox to delete it from, the reason is still the accepted message
    "size-oversize-accepted-no-mailbox": Case(
        "HYG-SIZE",
        Flaws(oversize_refused=False),
        {Role.SMTP: f"(SIZE {LIMIT}) answered 250"},
        roles=tuple(r for r in ALL_ROLES if r not in MAILBOX_ROLES),
    ),
    # RFC 9051 §6.2.3: LOGINDISABLED before STARTTLS
    "plaintext-imap-login": Case(
        "HYG-PLAINTEXT-LOGIN",
        Flaws(imap_login_before_tls=True),
        {Role.IMAP: "plaintext LOGIN succeeded"},
    ),
    # RFC 2595 §4: no USER/PASS before STLS
    "plaintext-pop3-user-pass": Case(
        "HYG-PLAINTEXT-LOGIN",
        Flaws(pop3_user_before_tls=True),
        {Role.POP3: "USER/PASS login succeeded"},
    ),
    # RFC 5321 §3.6.2, §7.1: an MX takes mail for its own domains only
    "relay-open-mx": Case(
        "RELAY-OPEN", Flaws(mx_relays=True), {Role.SMTP: f"plain <{RELAYED}> got 250"}
    ),
    # RFC 2505 §2: the percent hack relays through a server that takes only its own domain
    "relay-percent-hack": Case(
        "RELAY-OPEN",
        Flaws(percent_hack=True),
        {Role.SMTP: "percent hack <relay-victim%relay-test.invalid@example.test> got 250"},
    ),
    # RFC 6409 §4.3, RFC 4954 §6: submission relays for authenticated users only
    "relay-submission-without-auth": Case(
        "RELAY-OPEN", Flaws(submission_relays=True), {Role.SUBMISSION: f"plain <{RELAYED}> got 250"}
    ),
    # RFC 5321 §3.5.3, §7.3: 250 to VRFY/EXPN confirms the mailbox
    "vrfy-confirms": Case(
        "HYG-VRFY", Flaws(vrfy="confirms"), {Role.SMTP: "confirms users: ['VRFY user0001'"}
    ),
    # no 250, but a missing user gets another answer: enumeration all the same
    "vrfy-differs": Case(
        "HYG-VRFY",
        Flaws(vrfy="differs"),
        {Role.SMTP: "VRFY answers an existing and a missing user differently"},
    ),
    # RFC 5321 §4.5.3.1.4 (command line ≤ 512 octets); seed S18: 1,000+ characters
    "long-command-accepted": Case(
        "HYG-LONG-COMMAND",
        Flaws(long_line="accepted"),
        {Role.SMTP: "1043-character address answered 250"},
    ),
    "long-command-crash": Case(
        "HYG-LONG-COMMAND",
        Flaws(long_line="crash"),
        {Role.SMTP: "no reply to the over-long MAIL FROM"},
        alone=True,
    ),
    # the 500 is right, but nothing answers afterwards: the server did not keep serving
    "long-command-refused-then-crash": Case(
        "HYG-LONG-COMMAND",
        Flaws(long_line="refused, then crash"),
        {Role.SMTP: "next session: 127.0.0.1"},
        alone=True,
    ),
    # RFC 5321 §2.3.8, §4.1.1.4: a bare LF is no line ending, <CRLF>.<CRLF> the only end;
    # CVE-2023-51765 (sendmail) took <LF>.<LF>
    "smuggling-bare-lf": Case(
        "HYG-SMUGGLING",
        Flaws(data_ends=(END_OF_DATA, b"\n.\n")),
        {Role.SMTP: "smuggling possible): ['LF.LF: "},
    ),
    # CVE-2023-51766 (Exim) took <LF>.<CR><LF>
    "smuggling-lf-crlf": Case(
        "HYG-SMUGGLING",
        Flaws(data_ends=(END_OF_DATA, b"\n.\r\n")),
        {Role.SMTP: "smuggling possible): ['LF.CRLF: "},
    ),
    # RFC 4954 §4, RFC 8314 §3: no AUTH over a channel not yet encrypted
    "auth-advertised-before-tls": Case(
        "HYG-AUTH-PLAINTEXT",
        Flaws(auth_before_tls="advertised"),
        {Role.SUBMISSION: "EHLO before STARTTLS advertises AUTH 'PLAIN LOGIN'"},
    ),
    # not advertised, yet AUTH PLAIN gets its 334 challenge
    "auth-hidden-before-tls": Case(
        "HYG-AUTH-PLAINTEXT",
        Flaws(auth_before_tls="hidden"),
        {Role.SUBMISSION: "AUTH starts before STARTTLS: ['AUTH PLAIN -> 334']"},
    ),
}


# the quick tier: the sound system and one weakness of each control proven here first
FAST = {
    "sound",
    "relay-open-mx",
    "vrfy-confirms",
    "long-command-accepted",
    "smuggling-bare-lf",
    "auth-advertised-before-tls",
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """(the CA file the targets trust, the servers' TLS context), for every case."""
    return server_pki(tmp_path_factory.mktemp("pki"))


def test_every_scripted_control_has_a_failing_case() -> None:
    """A control the scripted system answers is proven failing here, not only on the stack."""
    assert set(SCRIPTED) <= set(SUITE)
    assert {case.control for case in CASES.values()} == {*SCRIPTED, None}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[] if n in FAST else [pytest.mark.slow]) for n in CASES]
)
def test_hygiene_control_both_ways(
    tmp_path: Path, pki: tuple[Path, ssl.SSLContext], name: str
) -> None:
    case = CASES[name]
    keyword = " or ".join(SUITE[control].check for control in case.controls)
    with mail_system(tmp_path / name, pki, case.flaws, case.roles) as (target, system):
        run = run_suites(target, tmp_path, "behaviour", keyword=keyword)
    expected = case.expected()
    verdicts = {cid: run.controls.get(cid, {}).get("verdict", "not run") for cid in expected}
    assert verdicts == expected, run.describe(set(expected)) + "\n" + run.output
    assert set(run.controls) == set(expected), run.describe(set(run.controls) - set(expected))
    for role, words in case.fails.items():
        cid = f"{case.control}[{role}]"
        assert words in run.controls[cid]["reason"], run.describe({cid})
    assert not system.relayed, "a check sent a message on to a foreign domain"
    if set(MAILBOX_ROLES) & set(case.roles):
        assert not system.inbox, "a check left what it sent in the mailbox"
    else:  # no mailbox endpoint to delete it from: the evidence says it stayed
        evidence = run.controls["HYG-SIZE[smtp]"]["evidence"]
        assert any(e["label"] == "clean-up" for e in evidence), evidence
