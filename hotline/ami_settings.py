"""The AMI adapter's settings section: config.yaml's ami."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from casebook.settings import Section


class AmiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "hotline"
    secret: str = "hotline-secret"
    connect_timeout: float = Field(5.0, gt=0)
    action_timeout: float = Field(10.0, gt=0)
    keepalive_interval: float = Field(20.0, gt=0)
    reconnect_initial_delay: float = Field(0.5, gt=0)
    reconnect_max_delay: float = Field(30.0, gt=0)
    hotline_exten: str = "15654"
    # Server-side AMI filters (regexes on the event text): only what the call tracker reads.
    event_filters: list[str] = Field(
        default_factory=lambda: [
            "Event: Newchannel",
            "Event: NewCallerid",
            "Event: Newstate",
            "Event: Newexten",
            "Event: VarSet",
            "Event: UserEvent",
            "Event: Hangup",
            "Event: Cdr",
            "Event: OriginateResponse",
            "Event: AgentConnect",
        ]
    )
    # Channel variables the dialplan / IVR sets: the case reference and the MixMonitor file.
    case_variable: str = "HOTLINE_CASE"
    recording_variable: str = "MIXMONITOR_FILENAME"
    # UserEvents whose Choice header is an IVR menu choice; VarSets of these are choices too.
    menu_user_events: list[str] = Field(default_factory=lambda: ["HotlineMenu"])
    # Channel variables holding IVR choices (the IVR sets HOTLINE_CHOICES on every choice, so
    # choices made while the listener was down reach it with the channel's next event).
    choice_variables: list[str] = Field(default_factory=lambda: ["HOTLINE_CHOICES"])
    # The UserEvent whose File header names the caller's Record()ed message.
    message_user_event: str = "HotlineMessage"
    # The channel variable the IVR sets once the caller is served (registered, status, agent).
    outcome_variable: str = "HOTLINE_OUTCOME"
    # Calls followed at once; beyond it new calls are refused (see hotline.tracker).
    max_live_calls: int = Field(5000, ge=1)
    # AMI over TLS (manager.conf tlsenable): verify the server against tls_ca_file (None: the
    # system's CAs); tls_server_name: the name its certificate carries, when not ``host``.
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_server_name: str | None = None
