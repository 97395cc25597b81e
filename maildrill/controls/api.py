"""What a conformance check uses: the ``control`` marker, evidence, and verdict helpers.

One check is one pytest test function carrying a control marker::

    from maildrill.controls.api import Evidence, control, expect
    from maildrill.smtp_protocol import SERVICE_READY
    from maildrill.target import Role

    @control("SMTP-BANNER", "SMTP greets with 220", severity="high",
             reference="RFC 5321 §4.2; seed S9", roles=[Role.SMTP, Role.SUBMISSION])
    def test_smtp_banner(target, endpoint, evidence: Evidence):
        with Wire.open(target, endpoint) as wire:
            evidence.transcript("session", wire.transcript)
            reply = wire.read_smtp()
            expect(reply.code == SERVICE_READY, f"greeting was {reply.code} {reply.text}")

The plugin (:mod:`maildrill.controls.pytest_plugin`) turns the outcome into a
:class:`~maildrill.results.ControlResult`: a passed test is ``pass``; a failed assertion
(:func:`expect`) is ``fail`` — the server was seen doing the wrong thing;
:func:`not_applicable` (or a :class:`~maildrill.errors.NotApplicable` from the probes) is
``not-applicable``; and anything else is ``error`` — the check
could not find out: a :class:`~maildrill.errors.TargetError` on the way to what it tests
(refused, timed out, not the protocol, TLS failed), :func:`blocked` by another control's
finding, or a bug in the check. A check whose *subject* is such a failure (reachability,
greeting, capabilities) catches it and turns it into an :func:`expect` itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import pytest

from maildrill.errors import Blocked, NotApplicable, TargetError
from maildrill.results import EvidenceItem, Severity
from maildrill.target import Role

__all__ = ["Evidence", "blocked", "control", "expect", "not_applicable", "subject"]


def control(
    id: str,
    title: str,
    *,
    severity: Severity | str,
    reference: str,
    roles: Iterable[Role] | None = None,
) -> pytest.MarkDecorator:
    """Mark a test function as the check of one control.

    ``roles`` makes the check run once per endpoint role (fixture ``endpoint``); a role the
    target does not configure is reported not-applicable.
    """
    return pytest.mark.control(
        id=id,
        title=title,
        severity=Severity(severity),
        reference=reference,
        roles=tuple(Role(r) for r in roles) if roles is not None else None,
    )


def not_applicable(reason: str) -> NoReturn:
    """End the check with verdict not-applicable; the reason goes into the report.

    The same as raising :class:`~maildrill.errors.NotApplicable`, which code outside the
    checks (the probes) does: the plugin turns either into the verdict.
    """
    raise NotApplicable(reason)


def blocked(reason: str) -> NoReturn:
    """End the check with verdict error, naming the control that owns the cause.

    Example: ``blocked("blocked by CERT-SAN[submission]: certificate rejected")``
    """
    raise Blocked(reason)


def expect(condition: object, message: str) -> None:
    """Assert with the evidence in the message, hiding this frame from tracebacks."""
    __tracebackhide__ = True
    if not condition:
        pytest.fail(message, pytrace=False)


@contextmanager
def subject(what: str) -> Iterator[None]:
    """Inside, a :class:`~maildrill.errors.TargetError` is the very thing the check tests
    (a greeting that never comes, an EHLO answered with garbage): a failed control with
    the reason, not an error.

    Example::

        with subject("greeting"):
            reply = wire.read_smtp()     # a timeout fails GREET-SMTP: "greeting: no reply…"
    """
    __tracebackhide__ = True
    try:
        yield
    except TargetError as exc:
        pytest.fail(f"{what}: {exc}", pytrace=False)


class Evidence:
    """The evidence a check collects; live lists (transcripts) are read at report time."""

    def __init__(self) -> None:
        self._items: list[tuple[str, str, Any]] = []
        self._warnings: list[str] = []

    def warn(self, message: str) -> None:
        """Something that passes but needs attention soon: the control keeps its verdict
        and carries the warning (``ControlResult.warnings``) into every report."""
        self._warnings.append(message)

    def warnings(self) -> list[str]:
        return list(self._warnings)

    def add(self, label: str, kind: str, data: Any) -> None:
        self._items.append((label, kind, data))

    def transcript(self, label: str, lines: list[str]) -> None:
        """Record a transcript; pass the live list so lines added later are kept too."""
        self.add(label, "transcript", lines)

    def table(self, label: str, rows: list[list[str]]) -> None:
        """Record a table; the first row is the header."""
        self.add(label, "table", rows)

    def text(self, label: str, text: str) -> None:
        self.add(label, "text", text)

    def dns(self, label: str, records: list[str]) -> None:
        self.add(label, "dns", records)

    def json(self, label: str, data: Any) -> None:
        self.add(label, "json", data)

    def items(self) -> list[EvidenceItem]:
        return [
            EvidenceItem(label=label, kind=kind, data=list(data) if kind == "transcript" else data)
            for label, kind, data in self._items
        ]
