"""SMTP smuggling (CVE-2023-51764, -51765, -51766): only <CRLF>.<CRLF> ends DATA."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from maildrill.controls.api import Evidence, control, expect
from maildrill.probes.mailbox import Mailbox
from maildrill.probes.smtp import delivery_timeout, foreign_sender
from maildrill.probes.smuggling import VARIANTS, SmugglingOutcome, probe
from maildrill.target import Endpoint, Role, Target


@control(
    "HYG-SMUGGLING",
    "A bare LF or CR around the end-of-data dot is not taken as the end of the message",
    severity="high",
    reference="RFC 5321 §2.3.8, §4.1.1.4; CVE-2023-51764 (Postfix), CVE-2023-51765, "
    "CVE-2023-51766; seed S18",
    roles=[Role.SMTP],
)
def test_no_smtp_smuggling(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    account = target.account(0)
    sender = foreign_sender(target)
    # one session per variant: a server may drop the session at the first bare LF;
    # run at once so the 5-s waits for an early reply overlap
    with ThreadPoolExecutor(max_workers=len(VARIANTS)) as pool:
        outcomes: list[SmugglingOutcome] = list(
            pool.map(
                lambda v: probe(
                    target, endpoint, variant=v, sender=sender, recipient=account.address
                ),
                VARIANTS,
            )
        )
    rows = [["sequence", "outcome", "detail"]]
    for outcome in outcomes:
        rows.append([outcome.variant, outcome.verdict, outcome.note])
        evidence.transcript(f"session {outcome.variant}", outcome.transcript)
    evidence.table("end-of-data variants", rows)
    accepted = [o for o in outcomes if o.delivered]
    if accepted:  # remove the probe messages the server stored
        with Mailbox(target, account) as box:
            evidence.transcript("mailbox cleanup", box.transcript)
            for o in accepted:
                box.find(o.token, within=min(10.0, delivery_timeout(target)))
    early = [f"{o.variant}: {o.note}" for o in outcomes if o.verdict == "ended-early"]
    expect(not early, f"non-standard end of data accepted (smuggling possible): {early}")
    untested = [o.variant for o in outcomes if o.verdict == "not-tested"]
    expect(not untested, f"could not reach DATA for {untested}")
