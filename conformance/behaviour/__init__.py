"""Behavioural conformance (issue 6): real traffic, then the outcome — the SMTP reply and,
where mail is accepted, what arrives in the mailbox over IMAP. Seed S12, S13, S15, S17, S18."""
