"""AMI over TLS (ami.tls): the adapter against the project's AMI test peers wrapped in TLS with a
certificate made for the test, as Asterisk serves AMI with manager.conf tlsenable."""

from __future__ import annotations

import json
import re
import socket
import threading

import pytest

from hotline.ami import AmiClient
from hotline.ami_protocol import AmiMessage
from hotline.app.checks import check_ami
from hotline.app.config import Settings
from hotline.runners import build_client
from ivr_flows.dialplan import render_manager
from tests.hotline.conftest import (
    FIXTURES,
    CollectingSink,
    RecordingHandler,
    ReplayServer,
    ScriptedAmiServer,
    TlsFiles,
    answer_login,
    fast_settings,
    reply,
    running,
    wait_until,
)

META = json.loads((FIXTURES / "one-call.meta.json").read_text())


def tls_settings(tls_files: TlsFiles, **overrides: object) -> dict[str, object]:
    return {
        "tls": True,
        "tls_ca_file": tls_files.certificate,
        "tls_server_name": "asterisk.test",
        **overrides,
    }


def test_the_real_call_replayed_over_tls_is_one_call(
    tls_files: TlsFiles, sink: CollectingSink
) -> None:
    recording = (FIXTURES / "one-call.server.raw").read_bytes()
    with ReplayServer(recording, META["login_offset"], 7, tls=tls_files.server()) as server:
        settings = fast_settings(server.port, **tls_settings(tls_files, action_timeout=0.2))
        client, _ = build_client(settings, sink)
        with running(client):
            assert wait_until(lambda: client.stats.messages >= META["messages"])
    [call] = sink.calls
    assert call.caller_number == "0510000001"


def test_actions_from_other_threads_while_events_stream_in(tls_files: TlsFiles) -> None:
    # The reader thread reads while other threads send: one TLS connection, no corruption.
    def respond(action: AmiMessage, client: socket.socket) -> None:
        if not answer_login(action, client) and action.name == "Ping":
            for n in range(20):
                reply(client, "Event: UserEvent", f"UserEvent: Noise{n}", "Body: " + "x" * 500)
            reply(client, "Response: Success", f"ActionID: {action.action_id}", "Ping: Pong")

    handler = RecordingHandler()
    with ScriptedAmiServer(respond, tls=tls_files.server()) as server:
        client = AmiClient(fast_settings(server.port, **tls_settings(tls_files)), handler)
        with running(client):
            assert wait_until(lambda: client.connected)
            answers: list[str] = []

            def ping() -> None:
                for _ in range(10):
                    answers.append(client.action("Ping").response["Ping"] or "")

            threads = [threading.Thread(target=ping) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert answers == ["Pong"] * 40
        assert client.stats.connections == 1 and client.stats.warnings == 0
    assert sum(e.name == "UserEvent" for e in handler.events) == 40 * 20


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({}, None),
        ({"tls_server_name": None}, "TLS with AMI at 127.0.0.1:.* failed: .*(mismatch|match)"),
        ({"tls_ca_file": "other"}, "TLS with AMI at 127.0.0.1:.* failed: .*certificate verify"),
        ({"tls_ca_file": "missing"}, "ami.tls_ca_file .*missing.pem: cannot load"),
    ],
)
def test_the_start_up_check_verifies_the_server(
    tls_files: TlsFiles, overrides: dict[str, object], error: str | None
) -> None:
    files = {"other": tls_files.other_ca, "missing": tls_files.key.with_name("missing.pem")}
    settings = Settings()
    values = tls_settings(tls_files) | overrides
    if isinstance(values["tls_ca_file"], str):
        values["tls_ca_file"] = files[values["tls_ca_file"]]
    with ScriptedAmiServer(answer_login_only, tls=tls_files.server()) as server:
        settings.ami = fast_settings(server.port, **values)
        check = check_ami(settings)
    if error is None:
        assert check.ok, check.message
        assert "logged in as hotline" in check.message
    else:
        assert not check.ok
        assert re.search(error, check.message), check.message


def answer_login_only(action: AmiMessage, client: socket.socket) -> None:
    if not answer_login(action, client):
        reply(client, "Response: Goodbye", f"ActionID: {action.action_id}")


def test_the_generated_manager_conf_serves_ami_over_tls_only_when_asked() -> None:
    # Checked once on Asterisk 22.10.1 (shared/asterisk): with these lines `manager show
    # settings` says "TCP Bindaddress: Disabled" and the listener logs in over TLS.
    settings = Settings()
    assert "tls" not in render_manager(settings)
    settings.ami.tls, settings.ami.port = True, 5039
    lines = render_manager(settings).splitlines()
    general = lines[: lines.index("[hotline]")]
    assert general.index("enabled = no") > general.index("enabled = yes")  # the later one wins
    for line in (
        "tlsenable = yes",
        "tlsbindaddr = 127.0.0.1:5039",
        "tlscertfile = /etc/asterisk/keys/manager.pem",
        "tlsprivatekey = /etc/asterisk/keys/manager.key",
    ):
        assert line in general
