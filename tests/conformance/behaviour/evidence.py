"""What a behaviour run left to look at: the transcripts in a control's evidence, and the
probe messages still in the test mailbox (every check deletes what it sent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["probe_messages_left", "transcripts"]


def transcripts(control: dict[str, Any]) -> list[list[str]]:
    return [e["data"] for e in control["evidence"] if e["kind"] == "transcript" and e["data"]]


def probe_messages_left(target_file: Path) -> dict[str, list[int]]:
    """UIDs of "maildrill probe" messages still in account 0's INBOX and Junk (expected: none,
    every check deletes what it sent)."""
    from imapclient import IMAPClient

    from maildrill.dnsrecords.resolver import endpoint_addresses
    from maildrill.target import Role, load_target
    from maildrill.tls.context import tls_context

    target = load_target(target_file)
    endpoint = target.endpoint(Role.IMAPS)
    assert endpoint is not None
    address, port = endpoint_addresses(target, endpoint)[0]
    # counting leftovers, not judging the certificate: the weak stack's may be rejected
    ctx = tls_context(target, verify=False)
    account = target.account(0)
    left: dict[str, list[int]] = {}
    with IMAPClient(address, port=port, ssl=True, ssl_context=ctx, timeout=10) as client:
        client.login(account.local, account.password)
        for _, _, name in client.list_folders():
            if str(name).lower() in ("inbox", "junk", "spam"):
                client.select_folder(name, readonly=True)
                left[str(name)] = list(client.search(["SUBJECT", "maildrill probe"]))
    return left
