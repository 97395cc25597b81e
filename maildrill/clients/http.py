"""An instrumented HTTP(S) client over Locust's FastHttpSession (geventhttpclient).

Only locustfiles import it (it pulls in Locust and gevent). One :class:`HttpClient` plays one
browser at a time against one endpoint: :meth:`HttpClient.open` starts a fresh session (new
cookies, the next node of the endpoint, seed S4) and each :meth:`HttpClient.request` is one
HTTP exchange. Timing is the caller's: a phase of several requests (a webmail login is three)
is one :class:`~maildrill.clients.events.Meter` phase, so FastHttpSession's own per-request
events are silenced and nothing is reported twice::

    http = HttpClient(fire, nodes, tls_context=ctx, base_path="/", request_type="webmail")
    http.open()
    with http.meter.phase("login"):
        page = http.request("GET", "?_task=login")
        http.request("POST", "?_task=login", data={...}, ok=(HTTPStatus.FOUND,))

Failures become what :func:`~maildrill.clients.events.classify` already sorts: an unexpected
status is a :class:`~maildrill.clients.events.ReplyError` (kind ``"401"``, ``"500"``), a
response that is not HTTP a :class:`~maildrill.clients.events.BadReply` (``protocol``), a
closed connection ``reset``; timeouts, refusals and TLS failures keep their own kinds.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError
from geventhttpclient.useragent import BadStatusCode, EmptyResponse
from locust.contrib.fasthttp import FastHttpSession, LocustBadStatusCode

from maildrill.clients.events import BadReply, Fire, Meter, ReplyError
from maildrill.clients.nodes import NodeCycle, node_name

__all__ = ["HttpClient", "HttpReply"]


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]  # lower-case names
    text: str


_STATUS_ERRORS = (BadStatusCode, LocustBadStatusCode)


class _Silent:
    """The request event FastHttpSession fires per request: phases are timed by the Meter."""

    def fire(self, **_: Any) -> None:
        return None


def _unwrap(exc: BaseException) -> BaseException:
    """geventhttpclient wraps the cause of a failed request in RetriesExceeded."""
    original = getattr(exc, "original", None)
    return original if isinstance(original, BaseException) else exc


def _translate(exc: BaseException) -> BaseException:
    exc = _unwrap(exc)
    if isinstance(exc, HTTPConnectionClosed | EmptyResponse):
        return ConnectionResetError(f"connection closed: {exc}")
    if isinstance(exc, HTTPParseError):
        return BadReply(f"not an HTTP response: {exc}")
    return exc


class HttpClient:
    """A browser-like HTTP(S) session against the nodes of one endpoint."""

    def __init__(
        self,
        fire: Fire,
        nodes: NodeCycle,
        *,
        tls_context: ssl.SSLContext | None,
        scheme: str = "https",
        base_path: str = "/",
        request_type: str = "webmail",
        timeout: float = 10.0,
    ) -> None:
        self._fire = fire
        self._nodes = nodes
        self._tls = tls_context
        self._scheme = scheme
        self.base_path = base_path if base_path.endswith("/") else base_path + "/"
        self.request_type = request_type
        self._timeout = timeout
        self.meter = Meter(fire, request_type)
        self._session: FastHttpSession | None = None
        self._host_header = ""

    def open(self) -> None:
        """A fresh session: no cookies, the next node. Connecting waits for a request."""
        self.close()
        address = self._nodes.next()
        self.meter = Meter(self._fire, self.request_type, node=node_name(address))
        ip, port = address
        default = 443 if self._scheme == "https" else 80
        self._host_header = self._nodes.host if port == default else f"{self._nodes.host}:{port}"
        options: dict[str, Any] = {}
        if self._scheme == "https":
            tls = self._tls or ssl.create_default_context()
            # the certificate names the endpoint's host, not the node's address we dial
            options = {
                "ssl_context_factory": lambda **_: tls,
                "ssl_options": {"server_hostname": self._nodes.host},
            }
        self._session = FastHttpSession(
            f"{self._scheme}://{'[' + ip + ']' if ':' in ip else ip}:{port}",
            _Silent(),
            None,
            insecure=False,
            # a retried request would hide the failure and double its time
            max_retries=0,
            connection_timeout=self._timeout,
            network_timeout=self._timeout,
            **options,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (HTTPStatus.OK,),
    ) -> HttpReply:
        """One exchange; ``path`` is relative to the endpoint's path. Redirects are returned,
        not followed: a webmail's redirects are part of what a flavour checks."""
        if self._session is None:
            raise ConnectionResetError("no HTTP session open")
        sent = {"Host": self._host_header, **(headers or {})}
        if data is not None:
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        body = None if data is None else urlencode(dict(data))
        response = self._session.request(
            method, self.base_path + path, data=body, headers=sent, allow_redirects=False
        )
        error = getattr(response, "error", None)
        # a status outside Locust's "valid" ones comes back as an error holding the response
        if error is not None and not isinstance(_unwrap(error), _STATUS_ERRORS):
            raise _translate(error) from error
        status = int(response.status_code or 0)
        if status not in ok:
            raise ReplyError(status, f"{method} {path}")
        try:
            text = response.text or ""
        except Exception as exc:  # a body cut short or not decodable
            raise _translate(exc) from exc
        found = {str(k).lower(): str(v) for k, v in (response.headers or {}).items()}
        return HttpReply(status, found, text)

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.client.close()
