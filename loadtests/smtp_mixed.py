"""Mixed SMTP traffic (seed S8): inbound relay and authenticated submission side by side.

Half the users relay unauthenticated over the inbound MX, half submit with STARTTLS and AUTH;
results break transactions down per traffic class (``by_class``) so a QoS policy that
favours one class shows under saturation.

maildrill load --target targets/lab.toml --scenario smtp_mixed --rate 40 --shape step
"""

from locust import task

import maildrill.load.listeners  # noqa: F401 - registers the measurement listeners
from maildrill.load.users import SmtpSender


class InboundRelay(SmtpSender):
    only_watched = False

    @task
    def send(self) -> None:
        self.send_one()


class Submission(SmtpSender):
    only_watched = False
    purpose = "submit"

    @task
    def send(self) -> None:
        self.send_one()
