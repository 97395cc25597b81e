"""Full chain (seed S3): SMTP in, seen over IMAP or POP3; every message accounted for.

Senders deliver unique messages (Message-ID, body hash) to the watched test accounts over
the inbound MX (or authenticated submission if the target has no ``smtp`` endpoint);
watchers in the master process (IMAP IDLE sessions, or POP3 polling with ``--watch pop3``)
see each one arrive. Delivery latency is the time seen minus the time of the SMTP 250.

    maildrill load --target targets/lab.toml --scenario full_chain --rate 20 --duration 20
    maildrill load --target targets/lab.toml --scenario full_chain --watch pop3 --rate 20
    locust -f loadtests/full_chain.py --headless -u 5 -t 30s --maildrill-target lab.toml
"""

from locust import task

import maildrill.load.listeners  # noqa: F401 - registers the measurement listeners
from maildrill.load.users import SmtpSender


class FullChainSender(SmtpSender):
    only_watched = True

    @task
    def send(self) -> None:
        self.send_one()
