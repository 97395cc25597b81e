"""Webmail load (seed S2): per arrival a browser session — log in, list INBOX, open the newest
message, every fifth session send one to another test account, log out.

maildrill load --target .maildrill-stack/target.toml --scenario webmail --rate 5
"""

from locust import task

import maildrill.load.listeners  # noqa: F401 - registers the measurement listeners
from maildrill.load.webmail_user import WebmailSession


class Webmail(WebmailSession):
    @task
    def session(self) -> None:
        super().session()
