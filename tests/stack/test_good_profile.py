"""The good profile's mail policies, shown with plain clients (what the weak one lacks is in
test_weaknesses.py): DKIM signing and verifying, the size limit, STARTTLS before mail on
submission, and the raw-throughput port without milters."""

from __future__ import annotations

import json
import re
import smtplib
import ssl
import subprocess
import time
import uuid

from maildrill.target import load_target
from tests.stack.conftest import RunningStack
from tests.stack.test_lifecycle import wait_imap
from tests.stack.test_weaknesses import GTUBE


def _tls(stack: RunningStack) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(stack.target.ca_path))
    ctx.check_hostname = False  # we connect by address; the chain is still verified
    return ctx


def test_submission_signs_with_dkim_and_inbound_verifies(good_stack: RunningStack) -> None:
    stack = good_stack
    sender, first, second = (stack.target.account(i) for i in (0, 1, 2))
    token = uuid.uuid4().hex
    message = (
        f"From: {sender.address}\r\nTo: {first.address}\r\nSubject: dkim {token}\r\n"
        f"Message-ID: <{token}@example.test>\r\n\r\nsigned {token}\r\n"
    )
    port = stack.target.endpoints["submission"].port
    with smtplib.SMTP(stack.host, port, local_hostname="client.example.org") as smtp:
        smtp.starttls(context=_tls(stack))
        smtp.login(sender.local, sender.password)
        assert smtp.sendmail(sender.address, [first.address], message) == {}
    signed = wait_imap(stack, first.local, token)
    signature = re.search(rb"DKIM-Signature:(.*?)\r\n(?=\S)", signed, re.S)
    assert signature, signed[:800]
    assert b"d=example.test" in signature.group(1) and b"s=mail" in signature.group(1)

    # the signed message, sent again to the inbound MX, verifies (RFC 8601 header); it comes
    # from mx1's own address, which example.test's SPF record authorises
    port = stack.target.endpoints["smtp"].port
    with smtplib.SMTP(stack.host, port, source_address=(stack.host, 0)) as smtp:
        smtp.starttls(context=_tls(stack))
        assert smtp.sendmail(sender.address, [second.address], signed) == {}
    verified = wait_imap(stack, second.local, token)
    header = rb"Authentication-Results: mx1\.example\.test;(.*?)\r\n(?=\S)"
    results = re.search(header, verified, re.S)
    assert results and b"dkim=pass" in results.group(1), verified[:1200]
    # and DMARC passes: the DKIM domain is the From domain (RFC 7489 §3.1)
    assert b"dmarc=pass (p=quarantine) header.from=example.test" in verified, verified[:1500]


def test_size_limit_advertised_and_enforced(good_stack: RunningStack) -> None:
    limit = good_stack.target.expect.max_message_size
    assert limit
    with smtplib.SMTP(good_stack.host, good_stack.target.endpoints["smtp"].port) as smtp:
        smtp.ehlo("client.example.org")
        assert smtp.esmtp_features["size"] == str(limit)
        code, text = smtp.mail("sender@example.org", [f"SIZE={limit + 1}"])  # RFC 1870 §6
    assert code == 552, text


def test_submission_refuses_mail_before_starttls(good_stack: RunningStack) -> None:
    with smtplib.SMTP(good_stack.host, good_stack.target.endpoints["submission"].port) as smtp:
        smtp.ehlo("client.example.org")
        code, text = smtp.mail(good_stack.target.account(0).address)
    assert code == 530, text  # RFC 3207 §4: "Must issue a STARTTLS command first"


def test_raw_port_runs_without_milters(good_stack: RunningStack) -> None:
    raw = load_target(good_stack.root / "target-raw.toml")
    rcpt = raw.account(3).address
    message = f"From: sender@example.org\r\nTo: {rcpt}\r\nSubject: raw\r\n\r\n{GTUBE}\r\n"
    # GTUBE is refused on the MX port (test_weaknesses) but passes here: nothing scans it
    with smtplib.SMTP(good_stack.host, raw.endpoints["smtp"].port) as smtp:
        assert smtp.sendmail("sender@example.org", [rcpt], message) == {}


def _rcpt_from(stack: RunningStack, source: str, sender: str) -> tuple[int, bytes]:
    with smtplib.SMTP(
        stack.host, stack.target.endpoints["smtp"].port, source_address=(source, 0)
    ) as smtp:
        smtp.ehlo("client.example.org")
        smtp.mail(sender)
        return smtp.rcpt(stack.target.account(4).address)


def test_spf_fail_refused_and_pass_accepted(stack: RunningStack) -> None:
    """S12 on both profiles: -all refuses an unauthorised sender, ~all (weak) lets it in."""
    domain_sender = f"someone@{stack.target.domain}"
    code, text = _rcpt_from(stack, "127.0.0.5", domain_sender)
    if stack.profile == "good":
        assert code == 550 and b"5.7.23" in text, (code, text)  # RFC 7372 §3.2
    else:
        assert code == 250, (code, text)  # spf-softfail: ~all does not refuse
    code, text = _rcpt_from(stack, stack.host, domain_sender)  # ip4:mx1 in the record
    assert code == 250, (code, text)


def _held(stack: RunningStack, token: str) -> bool:
    """Whether a message with ``token`` in its Subject waits in Postfix's hold queue."""
    queue = subprocess.run(
        ["postqueue", "-c", str(stack.root / "postfix"), "-j"],
        capture_output=True,
        text=True,
        check=True,
    )
    held = [json.loads(line) for line in queue.stdout.splitlines() if line.strip()]
    for entry in held:
        if entry["queue_name"] != "hold":
            continue
        shown = subprocess.run(
            ["postcat", "-c", str(stack.root / "postfix"), "-hq", entry["queue_id"]],
            capture_output=True,
            text=True,
            check=False,
        )
        if token in shown.stdout:
            return True
    return False


def test_dmarc_failure_quarantined_on_good_recorded_on_weak(stack: RunningStack) -> None:
    """S13: From: ceo@example.test with no DKIM and a null sender fails DMARC. p=quarantine
    (good) holds it (RFC 7489 §6.6.2); p=none (weak, dmarc-none) delivers it, recorded."""
    account = stack.target.account(5)
    token = uuid.uuid4().hex
    message = (
        f"From: ceo@{stack.target.domain}\r\nTo: {account.address}\r\n"
        f"Subject: dmarc {token}\r\n\r\nplease pay {token}\r\n"
    )
    with smtplib.SMTP(stack.host, stack.target.endpoints["smtp"].port) as smtp:
        assert smtp.sendmail("", [account.address], message) == {}
    if stack.profile == "weak":
        delivered = wait_imap(stack, account.local, token)
        assert b"dmarc=fail (p=none)" in delivered, delivered[:1500]
        return
    deadline = time.monotonic() + 10
    while not _held(stack, token):
        assert time.monotonic() < deadline, "DMARC-failing message not in the hold queue"
        time.sleep(0.3)
