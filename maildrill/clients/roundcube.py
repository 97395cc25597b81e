"""Roundcube's browser protocol, as a webmail flavour (see :mod:`maildrill.clients.webmail`).

What a browser does, request by request (Roundcube 1.6):

- login: GET ``?_task=login`` (a session cookie and the form's ``_token``), POST the
  credentials with that token (302 on success, 401 on a failed login), GET the mailbox page,
  whose ``rcmail.set_env`` carries the ``request_token`` every AJAX call must send;
- list: GET ``?_task=mail&_action=list&_remote=1`` with ``X-Roundcube-Request: <token>``; a
  JSON reply whose ``exec`` script adds one ``add_message_row(UID, …)`` per message;
- show: GET ``?_task=mail&_action=show&_uid=UID``, the message page;
- send: GET ``?_task=mail&_action=compose`` (302 to a compose ``_id``), GET that page (the
  sender identity), POST ``_action=send``; the answer calls ``sent_successfully``;
- logout: GET ``?_task=logout&_token=…``.

Usage::

    rc = Roundcube(http)
    rc.login("user0001", pw); uids = rc.list("INBOX"); rc.show("INBOX", uids[-1]); rc.logout()
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from urllib.parse import quote, urlsplit

from maildrill.clients.events import BadReply
from maildrill.clients.http import HttpClient

__all__ = ["Roundcube"]

_TOKEN = re.compile(r'<input type="hidden" name="_token" value="([^"]+)"')
_ENV = r'"{}":"([^"]+)"'
_ROW = re.compile(r"add_message_row\((\d+),")
_IDENTITY = re.compile(r'<select name="_from"[^>]*>\s*<option value="(\d+)"')
_SENT = "sent_successfully("
_MESSAGE = re.compile(r'display_message\("((?:[^"\\]|\\.)*)"')


def _env(text: str, name: str) -> str:
    found = re.search(_ENV.format(name), text)
    if found is None:
        raise BadReply(f"no {name} in the page (not Roundcube, or not logged in?)")
    return found.group(1)


class Roundcube:
    name = "roundcube"

    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self._token = ""

    def login(self, user: str, password: str) -> None:
        page = self.http.request("GET", "?_task=login")
        form = _TOKEN.search(page.text)
        if form is None:
            raise BadReply("login page has no _token field (not Roundcube?)")
        self.http.request(
            "POST",
            "?_task=login",
            data={
                "_token": form.group(1), "_task": "login", "_action": "login",
                "_timezone": "UTC", "_url": "", "_user": user, "_pass": password,
            },
            ok=(HTTPStatus.FOUND,),  # a failed login is 401: a ReplyError, counted as "401"
        )  # fmt: skip
        self._token = _env(
            self.http.request("GET", "?_task=mail&_mbox=INBOX").text, "request_token"
        )

    def list(self, mailbox: str) -> list[int]:
        reply = self.http.request(
            "GET",
            f"?_task=mail&_action=list&_mbox={quote(mailbox)}&_page=1&_remote=1",
            headers={"X-Roundcube-Request": self._token, "X-Requested-With": "XMLHttpRequest"},
        )
        try:
            data = json.loads(reply.text)
        except ValueError:
            raise BadReply(f"list: not JSON: {reply.text[:80]!r}") from None
        if not isinstance(data, dict) or data.get("action") != "list":
            raise BadReply(f"list: unexpected reply {reply.text[:80]!r}")
        return [int(uid) for uid in _ROW.findall(str(data.get("exec", "")))]

    def show(self, mailbox: str, uid: int) -> int:
        page = self.http.request(
            "GET", f"?_task=mail&_action=show&_uid={uid}&_mbox={quote(mailbox)}"
        )
        if 'id="messagebody"' not in page.text:
            raise BadReply(f"show: message {uid} has no message body on its page")
        return len(page.text)

    def send(self, to: str, subject: str, body: str) -> None:
        start = self.http.request("GET", "?_task=mail&_action=compose", ok=(HTTPStatus.FOUND,))
        location = start.headers.get("location", "")
        query = urlsplit(location).query
        if "_id=" not in query:
            raise BadReply(f"compose: redirected to {location!r}, no compose _id")
        page = self.http.request("GET", "?" + query)
        identity = _IDENTITY.search(page.text)
        if identity is None:
            raise BadReply("compose: no sender identity offered")
        reply = self.http.request(
            "POST",
            "?_task=mail&_action=send",
            data={
                "_token": self._token, "_task": "mail", "_action": "send",
                "_id": _env(page.text, "compose_id"), "_from": identity.group(1),
                "_to": to, "_subject": subject, "_message": body,
                "_is_html": "0", "_framed": "1",
            },
        )  # fmt: skip
        if _SENT not in reply.text:
            said = _MESSAGE.search(reply.text)
            raise BadReply(f"send not confirmed: {said.group(1) if said else reply.text[:80]!r}")

    def logout(self) -> None:
        done = (HTTPStatus.OK, HTTPStatus.FOUND)
        self.http.request("GET", f"?_task=logout&_token={self._token}", ok=done)
        self._token = ""
