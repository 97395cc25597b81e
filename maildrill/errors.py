"""The errors maildrill raises, as one small tree.

::

    MaildrillError                  anything maildrill reports to the user on one line
    ├── ConfigError                 a wrong target, waiver or command-line value (exit 2)
    ├── TargetError                 the target misbehaved or could not be reached
    │   ├── TargetUnreachable       refused, no route, DNS name not found (exit 3)
    │   ├── TargetTimeout           no answer within the deadline
    │   ├── ProtocolError           an answer that breaks the protocol
    │   ├── TLSFailure              the TLS handshake or certificate failed
    │   └── Blocked                 an earlier finding on this endpoint stops the check
    ├── NotApplicable               what a check asks about does not arise on this target
    └── PolicyViolation             a safety rule refused the action (e.g. load outside
                                    the allowed networks)

Checks do not raise these for a weak server: a weakness is a failed control with evidence.
These are for the harness's own failures and the user's mistakes; a TargetError escaping a
conformance check makes its verdict ``error`` (the check could not find out), a
NotApplicable makes it ``not-applicable``.
"""

from __future__ import annotations

__all__ = [
    "Blocked",
    "ConfigError",
    "MaildrillError",
    "NotApplicable",
    "PolicyViolation",
    "ProtocolError",
    "TLSFailure",
    "TargetError",
    "TargetTimeout",
    "TargetUnreachable",
]


class MaildrillError(Exception):
    """Base of every error maildrill reports to the user as one line."""

    exit_code = 1


class ConfigError(MaildrillError):
    """A target file, waiver file or option is wrong; the message names the field."""

    exit_code = 2


class NotApplicable(MaildrillError):
    """What a check needs does not exist on this target (no mailbox to read delivered mail
    from, no submission port). The probes raise it, free of pytest; the control layer
    (:mod:`maildrill.controls.pytest_plugin`) makes it the check's verdict
    ``not-applicable``, with the message as the reason."""


class PolicyViolation(MaildrillError):
    """A safety rule of the target file forbids what was asked."""

    exit_code = 2


class TargetError(MaildrillError):
    """The target did not behave as a mail server should."""

    exit_code = 3


class TargetUnreachable(TargetError):
    """Connection refused, no route, or the host name does not resolve."""


class TargetTimeout(TargetError):
    """The target accepted the connection but did not answer in time."""


class ProtocolError(TargetError):
    """The target answered something the protocol does not allow."""


class TLSFailure(TargetError):
    """The TLS handshake or the certificate verification failed."""


class Blocked(TargetError):
    """A check needs an endpoint that an earlier finding showed cannot carry it; the message
    names the control that owns the cause ("blocked by GREET-SMTP[smtp]: …")."""
