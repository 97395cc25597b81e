"""S15: inbound DKIM verification shows in Authentication-Results — pass for an intact
signature, fail for a tampered copy.

Which key signs? The harness holds no private key of the target's domain, and a domain of
its own would have to be published in the target's DNS. So the check lets the **target**
sign: it submits a message on the submission port (which DKIM-signs it, see
AUTH-DKIM-SIGN), reads the signed copy back over IMAP, and replays exactly those bytes to
the inbound MX. The replay's signature is the target's own and must verify (dkim=pass);
the same bytes with signed headers altered must not (dkim=fail, or a rejection).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.probes.auth import auth_results, verify_dkim
from maildrill.probes.inbound import Inbound, require_mailbox
from maildrill.probes.mailbox import JUNK, Found
from maildrill.probes.messages import TestMessage, build, new_token
from maildrill.smtp_protocol import is_permanent
from maildrill.target import Endpoint, Role, Target


def replayable(found: Found) -> bytes:
    """The signed message as the signer produced it: everything above the first
    DKIM-Signature was added on delivery (Return-Path, Delivered-To, Received, …)."""
    raw = found.raw
    lower = raw.lower()
    at = 0 if lower.startswith(b"dkim-signature:") else lower.find(b"\r\ndkim-signature:") + 2
    return raw[at:]


def tamper(message: bytes, token: str, new_token: str, target: Target) -> bytes:
    """The signed message with two signed headers altered: the Subject's token (so the copy
    is found by its own token) and From, moved to a foreign domain so that the target's
    DMARC policy does not quarantine the copy before its dkim= result can be read."""
    end = message.find(b"\r\n\r\n")
    head, body = message[:end], message[end:]
    head = head.replace(f"probe {token}".encode(), f"probe {new_token}".encode(), 1)
    head = _FROM.sub(f"From: <dkim-tamper@{target.expect.relay_test_domain}>".encode(), head, 1)
    return head + body


_FROM = re.compile(rb"^From:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", re.IGNORECASE | re.MULTILINE)


def submission_endpoint(target: Target) -> Endpoint | None:
    return target.endpoint(Role.SUBMISSION) or target.endpoint(Role.SMTPS)


@control(
    "AUTH-DKIM-VERIFY",
    "Inbound DKIM: a valid signature gives dkim=pass, a tampered copy dkim=fail",
    severity="high",
    reference="seed S15 (DKIM verification); RFC 6376 §6.1, RFC 8601 §2.7.1",
    roles=[Role.SMTP],
)
def test_dkim_verified(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    submit_to = submission_endpoint(target)
    if submit_to is None:
        not_applicable("no submission endpoint to obtain a message signed by the target")
    require_mailbox(target)
    account = target.account(0)
    original = build("plain", sender=account.address, recipient=account.address)
    with Inbound(target, submit_to, account) as submit:
        evidence.transcript("submission", submit.smtp_transcript)
        evidence.transcript("mailbox", submit.imap_transcript)
        tx = submit.send(
            original, sender=account.address, starttls=not submit_to.implicit_tls, login=account
        )
        expect(tx.accepted, f"submission refused: {tx.last.code} {tx.last.text!r}")
        signed = submit.find(original.token, ("INBOX",))
        expect(signed is not None, "the submitted message never arrived")
        assert signed is not None
        submit.mailbox().delete(original.token, ["INBOX"])  # the replay reuses its token
        own = verify_dkim(target, signed.raw)
        evidence.text("signature of the submitted copy", f"{own}")
        if not own.signed:
            not_applicable(
                "the target does not DKIM-sign submissions (AUTH-DKIM-SIGN fails), so no "
                "validly signed message is available to replay"
            )
        replay = replayable(signed)
        tampered_token = new_token()
        tampered = tamper(replay, original.token, tampered_token, target)

        with Inbound(target, endpoint, account) as inbound:
            evidence.transcript("inbound replays", inbound.smtp_transcript)
            evidence.transcript("inbound mailbox", inbound.imap_transcript)
            intact = _replay(inbound, TestMessage(original.token, replay), evidence, "intact")
            altered = _replay(inbound, TestMessage(tampered_token, tampered), evidence, "tampered")

    evidence.table(
        "verdicts",
        [["copy", "outcome"], ["intact", intact.note], ["tampered", altered.note]],
    )
    expect("pass" in intact.dkim, f"intact, validly signed copy: {intact.note}")
    expect(altered.rejected or "fail" in altered.dkim, f"tampered copy: {altered.note}")


@dataclass(frozen=True)
class Replay:
    rejected: bool
    dkim: list[str]  # dkim= results in the delivered copy's Authentication-Results
    note: str


def _replay(probe: Inbound, msg: TestMessage, evidence: Evidence, label: str) -> Replay:
    """Send the bytes as they are, with the null sender (its SPF identity never fails)."""
    tx = probe.send(msg, sender="")
    if not tx.accepted:
        note = f"refused at {tx.refused_at}: {tx.last.code} {tx.last.text!r}"
        return Replay(is_permanent(tx.last.code), [], note)
    found = probe.find(msg.token, ("INBOX", JUNK))
    if found is None:
        return Replay(False, [], "accepted but never delivered to INBOX or Junk")
    evidence.text(f"{label} copy as delivered", found.header_block())
    results = auth_results(found.header("Authentication-Results"), "dkim")
    return Replay(False, results, f"delivered to {found.folder}, dkim={results or 'absent'}")
