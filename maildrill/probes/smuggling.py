"""The SMTP-smuggling probe (CVE-2023-51764 family): is a non-standard end-of-data sequence
taken as the end of the message?

RFC 5321 §4.1.1.4 ends DATA with <CRLF>.<CRLF> only. A server that also ends it at
``<LF>.<LF>`` (or ``<LF>.<CRLF>``, ``<CRLF>.<LF>``, ``<CR>.<CR>``) lets a sender smuggle a
second message past an outbound relay that reads the same bytes as content. The probe sends
a message containing one such sequence and then **waits**: a reply before the real
<CRLF>.<CRLF> means the server ended the message there. Nothing follows the sequence, so a
vulnerable server is shown vulnerable without any smuggled command being run.

Usage::

    outcome = probe(target, endpoint, variant="LF.LF", sender=..., recipient=...)
    outcome.verdict      # "ended-early" (vulnerable), "rejected" or "content" (safe)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from maildrill.errors import TargetError
from maildrill.probes.messages import build
from maildrill.probes.smtp import open_session, transaction
from maildrill.smtp_protocol import START_MAIL_INPUT, is_positive
from maildrill.target import Endpoint, Target
from maildrill.wire import SMTPReply, Wire

__all__ = ["VARIANTS", "SmugglingOutcome", "probe"]

# name -> the bytes sent after a line of text, in place of <CRLF>.<CRLF>
VARIANTS: dict[str, bytes] = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CR": b"\r.\r",
}

Outcome = Literal["ended-early", "rejected", "content", "not-tested"]
EARLY_REPLY_WAIT_S = 5.0  # a server ending DATA runs its filters first; give them time


@dataclass
class SmugglingOutcome:
    variant: str
    verdict: Outcome
    token: str
    reply: SMTPReply | None
    note: str
    transcript: list[str] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        """Whether a message may have been stored (and needs cleaning up)."""
        return self.reply is not None and is_positive(self.reply.code)


def probe(
    target: Target,
    endpoint: Endpoint,
    *,
    variant: str,
    sender: str,
    recipient: str,
    wait: float = EARLY_REPLY_WAIT_S,
) -> SmugglingOutcome:
    """One session: a message whose body holds ``VARIANTS[variant]``, then the verdict."""
    sequence = VARIANTS[variant]
    msg = build("plain", sender=sender, recipient=recipient)
    transcript: list[str] = []
    sent = False
    try:
        with Wire.open(target, endpoint, timeout=30.0) as wire:
            transcript = wire.transcript
            open_session(wire, target)
            tx = transaction(wire, sender, [recipient], None)
            if tx.refused_at is not None:
                last = tx.last
                return SmugglingOutcome(
                    variant,
                    "not-tested",
                    msg.token,
                    last,
                    f"{tx.refused_at} refused: {last.code}",
                    transcript,
                )
            data = wire.smtp("DATA")
            if data.code != START_MAIL_INPUT:
                return SmugglingOutcome(
                    variant, "not-tested", msg.token, data, f"DATA refused: {data.code}", transcript
                )
            shown = repr(sequence)[2:-1]
            wire.send_raw(
                msg.data + b"smuggling probe line" + sequence,
                shown=f"[message {msg.token}] + 'smuggling probe line' + {shown}",
            )
            sent = True
            if wire.pending(wait):
                reply = wire.read_smtp()
                if is_positive(reply.code):
                    return SmugglingOutcome(
                        variant,
                        "ended-early",
                        msg.token,
                        reply,
                        f"{shown} ended the message: {reply.code}",
                        transcript,
                    )
                return SmugglingOutcome(
                    variant,
                    "rejected",
                    msg.token,
                    reply,
                    f"refused at {shown}: {reply.code}",
                    transcript,
                )
            wire.transcript.append(f"*: no reply within {wait:g} s: {shown} was not end of data")
            wire.send_raw(b"\r\n.\r\n", shown=".")
            reply = wire.read_smtp()
            verdict: Outcome = "content" if is_positive(reply.code) else "rejected"
            wire.smtp("QUIT")
            return SmugglingOutcome(
                variant,
                verdict,
                msg.token,
                reply,
                f"only <CRLF>.<CRLF> ended it: {reply.code}",
                transcript,
            )
    except TargetError as exc:
        if not sent:
            raise
        # a server that drops the connection on a bare LF (Postfix 521) is safe
        transcript.append(f"!: {exc}")
        return SmugglingOutcome(
            variant, "rejected", msg.token, None, f"connection ended: {exc}", transcript
        )
