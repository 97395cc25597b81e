"""Inbound MX load (seed S1, S6): unauthenticated SMTP to every local test account.

maildrill load --target targets/lab.toml --scenario smtp_inbound --rate 50 --duration 30
"""

from locust import task

import maildrill.load.listeners  # noqa: F401 - registers the measurement listeners
from maildrill.load.users import SmtpSender


class InboundSender(SmtpSender):
    only_watched = False

    @task
    def send(self) -> None:
        self.send_one()
