"""A small HTTP client for the API tests: stdlib http.client over the server's Unix socket (or
TCP with TLS), JSON in and out, the bearer token in the header."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIMEOUT = 60.0  # a safety net: no test waits this long unless something hangs


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float = TIMEOUT) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(self.timeout)
        connection.connect(str(self.socket_path))
        self.sock = connection


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @property
    def error(self) -> dict[str, Any]:
        """The error body, checked to be the contract's shape: one line and a code."""
        data = self.json()
        assert set(data) - {"retry_after"} == {"error", "code"}, data
        assert "\n" not in data["error"], data
        return dict(data)


@dataclass
class Client:
    """Requests as one person (``token``) to the server at ``socket_path`` (or ``tls_port``)."""

    socket_path: Path | None = None
    token: str | None = None
    tls_port: int | None = None
    tls_context: ssl.SSLContext | None = field(default=None, repr=False)

    def connection(self) -> http.client.HTTPConnection:
        if self.tls_port is not None:
            return http.client.HTTPSConnection(
                "127.0.0.1", self.tls_port, timeout=TIMEOUT, context=self.tls_context
            )
        assert self.socket_path is not None
        return UnixHTTPConnection(self.socket_path)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if self.token is not None and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {self.token}"
        payload = raw
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        if payload is not None:
            sent.setdefault("Content-Type", "application/json")
        connection = self.connection()
        try:
            connection.request(method, path, body=payload, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return self.request("POST", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Answer:
        return self.request("DELETE", path, **kwargs)

    def as_(self, token: str | None) -> Client:
        return Client(self.socket_path, token, self.tls_port, self.tls_context)
