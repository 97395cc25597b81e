"""Shared machinery of the behavioural checks: send real traffic, then look at the outcome.

- :mod:`maildrill.probes.messages`: test messages (clean, GTUBE, EICAR, spoofed), each
  carrying a unique token in its Subject and Message-ID so a check finds exactly its own;
- :mod:`maildrill.probes.smtp`: SMTP sessions and transactions on :class:`~maildrill.wire.Wire`,
  every line kept in the transcript;
- :mod:`maildrill.probes.mailbox`: an IMAP probe that waits for a message by token, reads
  it, and deletes it afterwards;
- :mod:`maildrill.probes.auth`: SPF/DKIM/DMARC helpers through the target's own resolver;
- :mod:`maildrill.probes.smuggling`: the SMTP-smuggling end-of-data probe.

``conformance/`` only declares checks; everything they share lives here.
"""

from __future__ import annotations
