"""S9/S14: each service advertises what its role needs (STARTTLS, AUTH after TLS)."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect, not_applicable, subject
from maildrill.smtp_protocol import EHLO_NAME, OK, SERVICE_READY, ehlo_keywords
from maildrill.target import Endpoint, Role, Target
from maildrill.wire import SMTPReply, Wire


@control(
    "CAP-SMTP-STARTTLS",
    "Plaintext SMTP offers STARTTLS",
    severity="high",
    reference="RFC 3207 §4; seed S14",
    roles=[Role.SMTP, Role.SUBMISSION],
)
def test_smtp_offers_starttls(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("session", wire.transcript)
        wire.read_smtp()
        with subject("EHLO"):
            reply = wire.smtp(f"EHLO {EHLO_NAME}")
        expect(reply.code == OK, f"EHLO answered {reply.code} {reply.text!r}")
        expect("STARTTLS" in ehlo_keywords(reply), "EHLO does not advertise STARTTLS")
        wire.send_line("QUIT")


@control(
    "CAP-SMTP-AUTH",
    "Submission offers AUTH once TLS is up",
    severity="high",
    reference="RFC 4954 §4, RFC 8314 §3; seed S9",
    roles=[Role.SUBMISSION, Role.SMTPS],
)
def test_submission_offers_auth(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("session", wire.transcript)

        def up_to_starttls(wire: Wire) -> SMTPReply:
            wire.read_smtp()
            with subject("EHLO"):
                reply = wire.smtp(f"EHLO {EHLO_NAME}")
            if not endpoint.implicit_tls:
                expect("STARTTLS" in ehlo_keywords(reply), "no STARTTLS before AUTH")
                with subject("STARTTLS"):
                    start = wire.smtp("STARTTLS")
                expect(
                    start.code == SERVICE_READY, f"STARTTLS answered {start.code} {start.text!r}"
                )
            return reply

        reply = up_to_starttls(wire)
        if not endpoint.implicit_tls:
            # a rejected certificate is CERT-*'s finding: noted, and AUTH is looked at anyway
            wire.upgrade(target, up_to_starttls)
            with subject("EHLO over TLS"):
                reply = wire.smtp(f"EHLO {EHLO_NAME}")
        expect(reply.code == OK, f"EHLO answered {reply.code} {reply.text!r}")
        expect("AUTH" in ehlo_keywords(reply), "EHLO over TLS does not advertise AUTH")
        wire.send_line("QUIT")


@control(
    "CAP-IMAP",
    "IMAP advertises IMAP4rev1/IMAP4rev2, and STARTTLS on the plaintext port",
    severity="high",
    reference="RFC 9051 §6.1.1, RFC 2595 §3.1; seed S9",
    roles=[Role.IMAP, Role.IMAPS],
)
def test_imap_capabilities(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("session", wire.transcript)
        wire.read_line()
        with subject("CAPABILITY"):
            status, lines = wire.imap("CAPABILITY")
        expect(status == "OK", f"CAPABILITY answered {lines[-1]!r}")
        caps = {
            word.upper()
            for line in lines
            if line.upper().startswith("* CAPABILITY")
            for word in line.split()[2:]
        }
        expect(caps & {"IMAP4REV1", "IMAP4REV2"}, f"no IMAP4rev1/rev2 in {sorted(caps)}")
        if not endpoint.implicit_tls:
            expect("STARTTLS" in caps, f"plaintext IMAP does not offer STARTTLS: {sorted(caps)}")
        wire.send_line("md9 LOGOUT")


@control(
    "CAP-POP3",
    "POP3 answers CAPA, with STLS on the plaintext port",
    severity="medium",
    reference="RFC 2449 §5, RFC 2595 §4; seed S9",
    roles=[Role.POP3, Role.POP3S],
)
def test_pop3_capabilities(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("session", wire.transcript)
        wire.read_line()
        with subject("CAPA"):
            ok, lines = wire.pop3("CAPA", multiline=True)
        if not ok and endpoint.implicit_tls:
            not_applicable("server does not implement CAPA (RFC 2449 is optional on pop3s)")
        expect(ok, f"CAPA answered {lines[0]!r}")
        caps = {line.split(" ", 1)[0].upper() for line in lines[1:]}
        if not endpoint.implicit_tls:
            expect("STLS" in caps, f"plaintext POP3 does not offer STLS: {sorted(caps)}")
        wire.send_line("QUIT")
