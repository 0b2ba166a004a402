"""The server's settings section (config.yaml's ``server:``): where the HTTP API listens.

People on the server host reach it through a Unix socket in the site folder (mode 0660, so the
socket's group decides who may connect); agents' own machines through TCP, which off loopback
must be HTTPS unless the operator explicitly allows plain HTTP (a private network behind a TLS
proxy, say). Passwords and session tokens cross that connection.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, model_validator

from casebook.settings import Section


def is_loopback(host: str) -> bool:
    """Whether ``host`` only ever names this machine. A host name other than localhost may
    resolve anywhere, so it counts as reachable from other machines."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServerSettings(Section):
    # The Unix socket the CLI connects to on the server host; created mode 0660.
    socket: Path = Path("var/hotline.sock")
    # The group whose members may use the socket (the people who may run the CLI here);
    # None keeps the server account's primary group.
    socket_group: str | None = None
    # TCP for agents' own machines: off unless a host is set.
    tcp_host: str | None = None
    tcp_port: int = Field(8443, ge=1, le=65535)
    # PEM files; with both, TCP is HTTPS (TLS 1.2 or later).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # TCP without TLS off loopback carries passwords in clear: refused unless set.
    allow_plain_http: bool = False

    @model_validator(mode="after")
    def _no_clear_passwords(self) -> ServerSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both (HTTPS) or neither")
        if (
            self.tcp_host is not None
            and self.tls_cert is None
            and not self.allow_plain_http
            and not is_loopback(self.tcp_host)
        ):
            raise ValueError(
                f"tcp_host {self.tcp_host} is reachable from other machines and would carry "
                "passwords in clear: set tls_cert and tls_key (HTTPS), or allow_plain_http: true"
            )
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None
