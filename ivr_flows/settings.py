"""The IVR's settings sections: config.yaml's agi (the FastAGI server) and ivr (flow, prompts,
agent queue), and which addresses count as this machine's loopback."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field, field_validator

from casebook.settings import CasebookConfig, Section, StatusByPhoneSettings
from recordings.settings import RecordingsConfig

LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1")
QueueStrategy = Literal[
    "ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom", "rrordered"
]


def is_loopback(host: str) -> bool:
    """Whether an address (or ``localhost``) is this machine's loopback."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class AgiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(4573, ge=1, le=65535)
    # Seconds to wait for Asterisk to answer one AGI command before the session is dropped.
    command_timeout: float = Field(30.0, gt=0)
    # Calls served at once (one thread each); a connection beyond it is closed at once.
    max_connections: int = Field(200, ge=1, le=10_000)
    # The longest one FastAGI session may last, whatever trickles in (longest message plus menus).
    session_seconds: float = Field(900.0, gt=0)
    # Addresses or networks (CIDR) allowed to connect; None: loopback only. Bound off loopback
    # (host 0.0.0.0 or a LAN address), list the Asterisk hosts here.
    allowed_peers: list[str] | None = None

    @field_validator("allowed_peers")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        for peer in value or []:
            try:
                ipaddress.ip_network(peer, strict=False)
            except ValueError as exc:
                raise ValueError(f"{peer!r} is not an IP address or network") from exc
        return value

    def peer_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Who may connect: allowed_peers, or loopback (IPv4 and IPv6) by default."""
        peers = self.allowed_peers if self.allowed_peers is not None else LOOPBACK_NETWORKS
        return [ipaddress.ip_network(peer, strict=False) for peer in peers]


class IvrSettings(Section):
    # The flow file the FastAGI server runs; None means the built-in ivr_flows/flows/hotline.yaml.
    flow_file: Path | None = None
    # Asterisk's sounds directory (e.g. /var/lib/asterisk/sounds, or a folder it links to):
    # prompts go to <sounds_dir>/ar/hotline/, Arabic digits to <sounds_dir>/ar/digits/.
    sounds_dir: Path = Path("var/sounds")
    # The channel language the dialplan sets: prompts and digits live in <sounds_dir>/<language>/.
    language: str = "ar"
    # auto: MBROLA ar1 when installed (non-commercial licence: fine for tests and demos, replace
    # with studio recordings in production), else espeak-ng's own Arabic voice.
    voice: Literal["auto", "espeak-ng", "mbrola-ar1", "mbrola-ar2"] = "auto"
    # Where the dialplan sends "0 speak to an agent" (queues.conf from `hotline asterisk config`).
    agent_queue: str = "hotline-agents"
    # How the queue rings its members (queues.conf strategy).
    queue_strategy: QueueStrategy = "rrmemory"
    # Seconds one member's phone rings before the queue tries the next.
    queue_ring_seconds: int = Field(15, ge=5, le=120)
    # The longest a caller waits in the queue; then the agents_busy prompt and goodbye.
    queue_wait_seconds: int = Field(120, ge=10, le=3600)
    # Agent extensions always in the queue, besides the agents table's (active, with extension).
    queue_members: list[str] = Field(default_factory=list)
    # The address Asterisk dials for FastAGI when agi.host is a wildcard bind (0.0.0.0 / ::).
    agi_public_host: str | None = None


class IvrConfig(CasebookConfig, RecordingsConfig, Protocol):
    """The sections the FastAGI server and its casebook backend read (hotline.app.config.Settings
    has them all)."""

    @property
    def ivr(self) -> IvrSettings: ...
    @property
    def agi(self) -> AgiSettings: ...
    @property
    def status_by_phone(self) -> StatusByPhoneSettings: ...
