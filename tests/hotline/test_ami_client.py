"""The AMI client end to end over loopback TCP: replay, login, actions, timeouts, backoff."""

from __future__ import annotations

import json
import logging
import random
import re
import socket
import threading

import pytest

from hotline.ami import AmiActionTimeout, AmiClient, AmiLoginError, AmiSession
from hotline.ami_protocol import AmiMessage
from hotline.ami_settings import AmiSettings
from hotline.runners import build_client
from hotline.simulator import PbxSimulator
from tests.hotline.conftest import (
    FIXTURES,
    PATIENCE,
    CollectingSink,
    RecordingHandler,
    ReplayServer,
    Responder,
    ScriptedAmiServer,
    answer_login,
    fast_settings,
    reply,
    running,
    wait_until,
)

META = json.loads((FIXTURES / "one-call.meta.json").read_text())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replaying_the_real_call_over_tcp_yields_exactly_one_call(
    seed: int, sink: CollectingSink
) -> None:
    recording = (FIXTURES / "one-call.server.raw").read_bytes()
    with ReplayServer(recording, META["login_offset"], seed) as server:
        # The replay answers nothing after Login: short timeouts keep the unanswered
        # resync and Logoff from slowing the test.
        client, tracker = build_client(fast_settings(server.port, action_timeout=0.2), sink)
        with running(client):
            # Every message of the recording parsed (the login answer is one of them).
            assert wait_until(lambda: client.stats.messages >= META["messages"])
    [call] = sink.calls
    assert call.caller_number == "0510000001"
    assert call.recording_path == "/var/spool/asterisk-test/recordings/hotline-1795370976.9.wav"
    assert client.stats.warnings == 0
    assert client.stats.connections == 1
    assert tracker.live_calls() == []


def run_unstopped(client: AmiClient) -> BaseException | None:
    """Run a client nobody stops: it must end by itself (or the safety net fails the test)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            client.run(threading.Event())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(PATIENCE)
    assert not thread.is_alive(), "the client kept retrying a refused login"
    return errors[0] if errors else None


def test_a_wrong_secret_is_one_clear_error_and_no_retry(sink: CollectingSink) -> None:
    refusal = (FIXTURES / "bad-login.server.raw").read_bytes()
    with ReplayServer(refusal, META["login_offset"], seed=0) as server:
        client, _ = build_client(fast_settings(server.port, secret="wrong-secret"), sink)
        error = run_unstopped(client)
        assert server.connections == 1
    assert isinstance(error, AmiLoginError)
    assert "Authentication failed" in str(error)


def test_the_simulator_refuses_a_wrong_secret_the_same_way(sink: CollectingSink) -> None:
    with PbxSimulator() as sim:
        client, _ = build_client(fast_settings(sim.port, secret="nope"), sink)
        assert isinstance(run_unstopped(client), AmiLoginError)
        assert sim.stats.failed_logins == 1
        assert sim.stats.connections == 1


def test_an_unanswered_action_times_out_and_the_connection_stays() -> None:
    def respond(action: AmiMessage, client: socket.socket) -> None:
        if not answer_login(action, client) and action.name == "Ping":
            reply(client, "Response: Success", f"ActionID: {action.action_id}", "Ping: Pong")

    with ScriptedAmiServer(respond) as server:
        client = AmiClient(fast_settings(server.port, action_timeout=0.2), RecordingHandler())
        with running(client):
            assert wait_until(lambda: client.connected)
            with pytest.raises(AmiActionTimeout, match="Command: no answer"):
                client.action("Command", {"Command": "core show version"})
            assert client.action("Ping").response["Ping"] == "Pong"
        assert client.stats.connections == 1


def test_answers_are_matched_to_actions_by_action_id() -> None:
    held: list[AmiMessage] = []

    def respond(action: AmiMessage, client: socket.socket) -> None:
        if answer_login(action, client):
            return
        held.append(action)
        if len(held) == 2:  # answer the second first
            for ping in reversed(held):
                reply(
                    client,
                    "Response: Success",
                    f"ActionID: {ping.action_id}",
                    f"Echo: {ping['Data']}",
                )

    with ScriptedAmiServer(respond) as server:
        session = AmiSession("127.0.0.1", server.port, lambda message, at: None)
        session.open()
        first = session.send_action("Ping", {"Data": "first"})
        second = session.send_action("Ping", {"Data": "second"})
        assert first.result(PATIENCE).response["Echo"] == "first"
        assert second.result(PATIENCE).response["Echo"] == "second"
        session.close()


def test_actions_are_written_byte_for_byte_as_asterisk_expects() -> None:
    with ScriptedAmiServer(lambda action, client: None) as server:
        session = AmiSession("127.0.0.1", server.port, lambda message, at: None)
        session.open()
        session.send_action("Originate", {"Channel": "Local/15654@hotline"}, {"A": "1"})
        assert wait_until(lambda: len(server.actions) == 1)
        session.close()
    (action,) = server.actions
    assert re.fullmatch(r"originate-[0-9a-f]{8}-1", action.action_id or "")
    assert action.headers == (
        ("Action", "Originate"),
        ("Channel", "Local/15654@hotline"),
        ("ActionID", action.action_id),
        ("Variable", "A=1"),
    )


def test_two_sessions_never_share_an_action_id() -> None:
    # An async Originate's OriginateResponse reaches every session that reads call events,
    # with the Originate's ActionID: two diallers must be able to tell theirs apart.
    with ScriptedAmiServer(lambda action, client: None) as server:
        sessions = [AmiSession("127.0.0.1", server.port, lambda m, at: None) for _ in range(2)]
        for session in sessions:
            session.open()
            session.send_action("Originate", {"Channel": "Local/15654@hotline"})
        assert wait_until(lambda: len(server.actions) == 2)
        for session in sessions:
            session.close()
    first, second = (action.action_id for action in server.actions)
    assert first != second


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    settings = fast_settings(1, reconnect_initial_delay=0.5, reconnect_max_delay=30.0)
    client = AmiClient(settings, RecordingHandler(), rng=random.Random(7))
    for failures, step in [(0, 0.5), (1, 1.0), (3, 4.0), (6, 30.0), (60, 30.0)]:
        delays = {client.backoff_delay(failures) for _ in range(50)}
        assert all(step / 2 <= delay <= step for delay in delays)
        assert len(delays) > 1  # jitter: reconnecting clients do not stampede together


def test_a_refused_connection_is_retried_until_the_server_appears() -> None:
    placeholder = socket.create_server(("127.0.0.1", 0))
    port = placeholder.getsockname()[1]
    placeholder.close()
    handler = RecordingHandler()
    client = AmiClient(fast_settings(port), handler)
    with running(client):
        assert wait_until(lambda: client.stats.connections == 0)
        with PbxSimulator(port=port) as sim:
            assert wait_until(lambda: client.connected)
            assert sim.stats.logins == 1


def test_originate_and_command_on_the_simulator() -> None:
    handler = RecordingHandler()
    with PbxSimulator() as sim:
        client = AmiClient(fast_settings(sim.port), handler)
        with running(client):
            assert wait_until(lambda: client.connected)
            answer = client.action(
                "Originate",
                {
                    "Channel": "Local/0510000001@callbacks",
                    "Context": "agents",
                    "Exten": "s",
                    "Priority": "1",
                    "Async": "true",
                },
            )
            assert answer.response["Message"] == "Originate successfully queued"
            response = handler.wait_event("OriginateResponse")
            assert response is not None
            assert response.action_id == answer.response.action_id
            assert response["Response"] == "Success"
            output = client.action("Command", {"Command": "core show version"}).response
            assert output["Output"].startswith("Asterisk 22")


def test_events_start_only_after_every_filter_is_in() -> None:
    def respond(action: AmiMessage, client: socket.socket) -> None:
        if not answer_login(action, client):
            reply(client, "Response: Success", f"ActionID: {action.action_id}")

    with ScriptedAmiServer(respond) as server:
        client = AmiClient(fast_settings(server.port), RecordingHandler())
        filters = len(client.settings.event_filters)
        with running(client):
            assert wait_until(lambda: len(server.actions) >= filters + 3)
    login, *rest = server.actions[: filters + 3]
    assert (login.name, login["Events"]) == ("Login", "off")
    assert [a.name for a in rest] == ["Filter"] * filters + ["Events", "CoreShowChannels"]
    assert [a["Filter"] for a in rest[:filters]] == client.settings.event_filters
    assert rest[filters]["EventMask"] == "on"


def answer_filters_with(message: str) -> Responder:
    """Answer every Filter with ``Response: Error`` and ``message``; the rest as Asterisk 22
    does (CoreShowChannels an empty list), so a test can wait for the resync."""

    def respond(action: AmiMessage, client: socket.socket) -> None:
        if answer_login(action, client):
            return
        action_id = f"ActionID: {action.action_id}"
        if action.name == "Filter":
            reply(client, "Response: Error", action_id, f"Message: {message}")
        elif action.name == "CoreShowChannels":
            reply(client, "Response: Success", action_id, "EventList: start")
            reply(
                client,
                "Event: CoreShowChannelsComplete",
                action_id,
                "EventList: Complete",
                "ListItems: 0",
            )
        else:
            reply(client, "Response: Success", action_id)

    return respond


def filter_log_after_login(
    message: str, caplog: pytest.LogCaptureFixture
) -> list[logging.LogRecord]:
    handler = RecordingHandler()
    with (
        ScriptedAmiServer(answer_filters_with(message)) as server,
        caplog.at_level(logging.INFO, "hotline.ami"),
    ):
        client = AmiClient(fast_settings(server.port), handler)
        with running(client):
            assert wait_until(lambda: len(handler.snapshots) == 1)
    return [r for r in caplog.records if "filter" in r.getMessage()]


def test_filters_refused_for_want_of_the_system_class_are_told_once_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The generated manager.conf gives the user no `system` write class (Filter needs it) and
    # eventfilter lines of its own instead; Asterisk 22 then answers each Filter like this.
    told = filter_log_after_login("Permission denied", caplog)
    assert [(r.levelname, "no 'system' write class" in r.getMessage()) for r in told] == [
        ("INFO", True)
    ]


def test_a_filter_refused_for_another_reason_is_a_warning_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    told = filter_log_after_login("Bad filter", caplog)
    assert [r.levelname for r in told] == ["WARNING"] * len(AmiSettings().event_filters)
    assert all("Bad filter" in r.getMessage() for r in told)
