"""The watchers' first look reads what the mailbox already held by its header only.

``maildrill.load.watch`` imports Locust (gevent's patch), which the harness's own test process
must not: the watcher runs in a child process here, against a scripted IMAP client."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import json
    from types import SimpleNamespace
    from maildrill.load.ledger import PREPOPULATED_RUN, Ledger
    from maildrill.load.watch import HEADER_ID, _ImapWatcher, _Mailbox

    def message(message_id, size):
        return f"Message-ID: {message_id}\\r\\nSubject: x\\r\\n\\r\\n".encode() + b"x" * size

    box = {
        1: message("<note@example.com>", 3_000_000),  # not maildrill's
        2: message(f"<{PREPOPULATED_RUN}.1@maildrill.test>", 2_000_000),  # --prepopulate
        3: message("<oldrun.7@maildrill.test>", 100),  # left by an interrupted run
        4: message("<thisrun.1@maildrill.test>", 100),  # this run's, already there
    }
    calls = []

    class Client:
        def search(self, criteria):
            return sorted(box)

        def fetch(self, uids, parts):
            calls.append(["fetch", list(uids), parts[0]])
            if parts[0] == HEADER_ID:
                return {
                    u: {b"BODY[HEADER.FIELDS (MESSAGE-ID)]": box[u].split(b"\\r\\n")[0]}
                    for u in uids
                }
            return {u: {b"BODY[]": box[u]} for u in uids}

        def store_deleted(self, uids):
            calls.append(["delete", list(uids)])
            for u in uids:
                del box[u]

    class Seen(Ledger):
        def sighting(self, message_id, *args, **kwargs):
            seen.append(message_id)
            super().sighting(message_id, *args, **kwargs)

    seen = []
    ledger = Seen()
    for n in (1, 2):  # the server accepted both for a@x
        ledger.accepted(f"<thisrun.{n}@maildrill.test>", "h", 0.0, ["a@x"])
    state = SimpleNamespace(plan=SimpleNamespace(run_id="thisrun"), ledger=ledger)
    watcher = _ImapWatcher(Client(), SimpleNamespace(address="a@x"), None, 0.1)
    mailbox = _Mailbox(state, "a@x")
    watcher._collect(mailbox)
    calls.append(["look"])
    box[5] = message("<thisrun.2@maildrill.test>", 100)
    watcher._collect(mailbox)
    print(json.dumps({"calls": calls, "seen": seen, "left": sorted(box)}))
    """
)


def test_first_look_reads_old_mail_by_message_id_only() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    header = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
    assert out["calls"] == [
        ["fetch", [1, 2, 3, 4], header],  # the first look: Message-IDs only
        ["fetch", [4], "BODY.PEEK[]"],  # in full: only this run's messages
        ["delete", [4]],
        ["look"],
        ["fetch", [5], "BODY.PEEK[]"],  # later looks: new mail in full at once
        ["delete", [5]],
    ]
    assert out["seen"] == ["<thisrun.1@maildrill.test>", "<thisrun.2@maildrill.test>"]
    assert out["left"] == [1, 2, 3]  # what is not this run's stays, another run's too


POP3_PROBE = textwrap.dedent(
    """
    import json
    from types import SimpleNamespace
    from maildrill.load.ledger import PREPOPULATED_RUN, Ledger
    from maildrill.load.watch import _Mailbox, _Pop3Watcher

    def message(message_id, size):
        return f"Message-ID: {message_id}\\r\\nSubject: x\\r\\n\\r\\n".encode() + b"x" * size

    drop = {
        "u1": message("<note@example.com>", 3_000_000),
        "u2": message(f"<{PREPOPULATED_RUN}.1@maildrill.test>", 2_000_000),
        "u3": message("<oldrun.7@maildrill.test>", 100),
        "u4": message("<thisrun.1@maildrill.test>", 100),
    }
    calls = []

    class Client:
        def connect(self): pass
        def login(self, user, password): pass
        def quit(self):
            calls.append(["quit"])
        def capa(self):
            return {"TOP", "UIDL"}
        def uidl(self):
            return [(n, uid) for n, uid in enumerate(sorted(drop), 1)]
        def number(self, n):
            return sorted(drop)[n - 1]
        def top(self, n):
            calls.append(["top", self.number(n)])
            return drop[self.number(n)].split(b"\\r\\n\\r\\n")[0]
        def retr(self, n):
            calls.append(["retr", self.number(n)])
            return drop[self.number(n)]
        def dele(self, n):
            calls.append(["dele", self.number(n)])

    class Seen(Ledger):
        def sighting(self, message_id, *args, **kwargs):
            seen.append(message_id)
            super().sighting(message_id, *args, **kwargs)

    seen = []
    ledger = Seen()
    for n in (1, 2):  # the server accepted both for a@x
        ledger.accepted(f"<thisrun.{n}@maildrill.test>", "h", 0.0, ["a@x"])
    state = SimpleNamespace(plan=SimpleNamespace(run_id="thisrun"), ledger=ledger)
    client = Client()
    endpoint = SimpleNamespace(implicit_tls=True)  # nothing to STARTTLS
    watcher = _Pop3Watcher(client, SimpleNamespace(local="u", password="p"), endpoint, 1.0)
    mailbox = _Mailbox(state, "a@x")
    watcher.session(state, mailbox)
    del drop["u4"]  # what QUIT deleted
    drop["u5"] = message("<thisrun.2@maildrill.test>", 100)
    watcher.session(state, mailbox)
    print(json.dumps({"calls": calls, "seen": seen}))
    """
)


def test_pop3_first_look_reads_old_mail_by_header_only() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", POP3_PROBE], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["calls"] == [
        ["top", "u1"],  # the first look: headers only (TOP n 0)
        ["top", "u2"],
        ["top", "u3"],  # a message of another run: not read in full, not deleted
        ["top", "u4"],
        ["retr", "u4"],
        ["dele", "u4"],
        ["quit"],
        ["retr", "u5"],  # later looks: new mail in full at once
        ["dele", "u5"],
        ["quit"],
    ]
    assert out["seen"] == ["<thisrun.1@maildrill.test>", "<thisrun.2@maildrill.test>"]
