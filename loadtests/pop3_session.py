"""POP3 session load (seed S1): connect, STLS, login, STAT, UIDL, RETR one, QUIT.

maildrill load --target targets/lab.toml --scenario pop3_session --rate 20
"""

from locust import task

import maildrill.load.listeners  # noqa: F401 - registers the measurement listeners
from maildrill.load.users import MailboxReader


class Pop3Session(MailboxReader):
    @task
    def session(self) -> None:
        super().session()
