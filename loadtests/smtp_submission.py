"""Authenticated submission load (seed S8): STARTTLS (or implicit TLS) and AUTH, then send.

maildrill load --target targets/lab.toml --scenario smtp_submission --rate 20
"""

from locust import task

import maildrill.load.listeners  # noqa: F401 - registers the measurement listeners
from maildrill.load.users import SmtpSender


class SubmissionSender(SmtpSender):
    only_watched = False

    @task
    def send(self) -> None:
        self.send_one()
