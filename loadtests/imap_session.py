"""IMAP session load (seed S1, S22): connect, login, select, search, fetch one, logout.

maildrill load --target targets/lab.toml --scenario imap_session --rate 20
"""

from locust import task

import maildrill.load.listeners  # noqa: F401 - registers the measurement listeners
from maildrill.load.users import MailboxReader


class ImapSession(MailboxReader):
    @task
    def session(self) -> None:
        super().session()
