"""asterisk-ami 0.1.7's measured defects: each shown on the bare package, then shown harmless
through hotline.ami. (The tests import asterisk.ami to exhibit the defects; the product code
imports it only in hotline/ami.py.)"""

from __future__ import annotations

import socket
import threading

import pytest
from asterisk.ami import AMIClient, Event, SimpleAction
from asterisk.ami.response import FutureResponse, Response

from hotline.ami import AmiClient, AmiListError, AmiSession, ConnectionStats
from hotline.ami_protocol import AmiMessage
from hotline.runners import build_client
from hotline.simulator import PbxSimulator, SimulatedCall
from tests.hotline.conftest import (
    PATIENCE,
    CollectingSink,
    RecordingHandler,
    ScriptedAmiServer,
    answer_login,
    fast_settings,
    reply,
    running,
)


def bare_client(port: int, timeout: float) -> tuple[AMIClient, list[object], threading.Event]:
    errors: list[object] = []
    gone = threading.Event()

    def on_disconnect(source: object, error: object = None) -> None:
        errors.append(error)
        gone.set()

    client = AMIClient(address="127.0.0.1", port=port, timeout=timeout)
    client.add_listener(on_disconnect=on_disconnect)
    return client, errors, gone


# 1. The action timeout doubles as the socket read timeout ------------------------------------


def test_defect_1_bare_client_dies_after_a_silence_as_long_as_its_timeout() -> None:
    with ScriptedAmiServer(lambda action, client: None) as server:
        client, errors, gone = bare_client(server.port, timeout=0.2)
        client.connect()
        assert gone.wait(PATIENCE)
        assert isinstance(errors[0], TimeoutError)
        client._thread.join(PATIENCE)
        assert not client._thread.is_alive()


def test_defect_1_fixed_silence_longer_than_the_action_timeout_is_harmless() -> None:
    def respond(action: AmiMessage, client: socket.socket) -> None:
        if answer_login(action, client):
            threading.Event().wait(0.6)  # three action timeouts of silence
            reply(client, "Event: Newexten", "Uniqueid: 1.1")

    handler = RecordingHandler()
    with ScriptedAmiServer(respond) as server:
        client = AmiClient(fast_settings(server.port, action_timeout=0.2), handler)
        with running(client):
            assert handler.wait_event("Newexten") is not None
        assert client.stats.connections == 1
        assert server.connections == 1


# 2. After a server stall AutoReconnect never recovers ----------------------------------------


def test_defect_2_fixed_a_stalled_server_is_detected_and_replaced(sink: CollectingSink) -> None:
    with PbxSimulator(seed=2) as sim:
        settings = fast_settings(sim.port, keepalive_interval=0.1, action_timeout=0.3)
        client, _tracker = build_client(settings, sink)
        with running(client):
            sim.place_calls([SimulatedCall("0910000001")])
            assert len(sink.wait_for(1)) == 1
            sim.stall()  # the connection stays open; nothing answers, nothing arrives
            sim.place_calls([SimulatedCall("0910000002"), SimulatedCall("0910000003")])
            calls = sink.wait_for(3)
        assert {c.caller_number for c in calls} == {"0910000001", "0910000002", "0910000003"}
        assert client.stats.stalls >= 1
        assert sim.stats.logins >= 2


# 3. An exception in a user callback kills the listener thread --------------------------------


def events_then_idle(action: AmiMessage, client: socket.socket) -> None:
    if action.name in ("Login", "Ping") or action.action_id in ("0",):
        reply(client, "Response: Success", f"ActionID: {action.action_id}")
        reply(client, "Event: First", "Uniqueid: 1.1")
        reply(client, "Event: Second", "Uniqueid: 1.2")


def test_defect_3_bare_client_thread_dies_when_a_callback_raises() -> None:
    with ScriptedAmiServer(events_then_idle) as server:
        client, errors, gone = bare_client(server.port, timeout=5)
        seen: list[str] = []

        def fragile(event: Event, source: object) -> None:
            seen.append(event.name)
            raise ValueError("a bug in the application")

        client.add_event_listener(fragile)
        client.login("hotline", "hotline-secret")
        assert gone.wait(PATIENCE)
        assert isinstance(errors[0], ValueError)
        assert seen == ["First"]  # "Second" was never delivered


def test_defect_3_fixed_a_raising_handler_costs_one_event_only() -> None:
    seen: list[str] = []

    def fragile(message: AmiMessage, received_at: object) -> None:
        seen.append(message.name)
        if message.name == "First":
            raise ValueError("a bug in the application")

    with ScriptedAmiServer(events_then_idle) as server:
        session = AmiSession("127.0.0.1", server.port, fragile)
        session.open()
        session.login("hotline", "hotline-secret", timeout=PATIENCE)
        stats = session.stats
        result = session.request("Ping", timeout=PATIENCE)  # the connection still works
        session.close()
        session.join(PATIENCE)
    assert result.response.name == "Success"
    assert seen[:2] == ["First", "Second"]
    assert stats.handler_errors == 2  # once after Login, once after Ping


# 4. List results never reach the response ----------------------------------------------------


def list_server(announced: int, items: int) -> ScriptedAmiServer:
    def respond(action: AmiMessage, client: socket.socket) -> None:
        action_id = action.action_id
        if action.name == "CoreShowChannels":
            reply(client, "Response: Success", f"ActionID: {action_id}", "EventList: start")
            for n in range(items):
                reply(
                    client, "Event: CoreShowChannel", f"ActionID: {action_id}", f"Uniqueid: 1.{n}"
                )
            reply(
                client,
                "Event: CoreShowChannelsComplete",
                f"ActionID: {action_id}",
                "EventList: Complete",
                f"ListItems: {announced}",
            )
        else:
            reply(client, "Response: Success", f"ActionID: {action_id}")

    return ScriptedAmiServer(respond)


def test_defect_4_bare_client_list_response_holds_no_items() -> None:
    with list_server(announced=2, items=2) as server:
        client, _errors, _gone = bare_client(server.port, timeout=5)
        client.connect()
        response = client.send_action(SimpleAction("CoreShowChannels")).response
        client.disconnect()
    assert response.keys["EventList"] == "start"
    assert not hasattr(response, "items")


def test_defect_4_fixed_list_items_are_collected_and_counted() -> None:
    with list_server(announced=2, items=2) as server:
        session = AmiSession("127.0.0.1", server.port, lambda message, at: None)
        session.open()
        result = session.request("CoreShowChannels", timeout=PATIENCE)
        session.close()
    assert [item["Uniqueid"] for item in result.items] == ["1.0", "1.1"]


def test_defect_4_fixed_a_list_shorter_than_announced_is_an_error() -> None:
    with list_server(announced=3, items=2) as server:
        stats = ConnectionStats()
        session = AmiSession("127.0.0.1", server.port, lambda message, at: None, stats=stats)
        session.open()
        with pytest.raises(AmiListError, match="announced 3 items, 2 arrived"):
            session.request("CoreShowChannels", timeout=PATIENCE)
        session.close()
    assert stats.list_mismatches == 1


# 5. traceback is used without being imported -------------------------------------------------


def test_defect_5_bare_future_turns_a_callback_error_into_name_error() -> None:
    def fragile(response: Response) -> None:
        raise ValueError("a bug in the application")

    future = FutureResponse(callback=fragile, timeout=1)
    with pytest.raises(NameError, match="traceback"):
        future.set_response(Response("Success", {}))


def test_defect_5_fixed_a_raising_action_callback_is_contained() -> None:
    def fragile(future: object) -> None:
        raise ValueError("a bug in the application")

    with list_server(announced=0, items=0) as server:
        session = AmiSession("127.0.0.1", server.port, lambda message, at: None)
        session.open()
        session.send_action("Ping", on_done=fragile)
        assert session.request("Ping", timeout=PATIENCE).response.name == "Success"
        session.close()
    assert session.stats.handler_errors == 1


# Also: Event.read keeps one value per key -----------------------------------------------------


def test_bare_event_parser_loses_repeated_keys() -> None:
    text = (
        "Event: OriginateResponse\r\n"
        "ChanVariable(Local/15654@hotline-00000002;1): HOTLINE_CASE=HL-1\r\n"
        "ChanVariable(Local/15654@hotline-00000002;1): MIXMONITOR_FILENAME=/r.wav"
    )
    bare = Event.read(text)
    assert list(bare.keys.values()) == ["MIXMONITOR_FILENAME=/r.wav"]
    ours = AmiMessage(
        (
            ("Event", "OriginateResponse"),
            ("ChanVariable(Local/15654@hotline-00000002;1)", "HOTLINE_CASE=HL-1"),
            ("ChanVariable(Local/15654@hotline-00000002;1)", "MIXMONITOR_FILENAME=/r.wav"),
        )
    )
    assert ours.variables() == {"HOTLINE_CASE": "HL-1", "MIXMONITOR_FILENAME": "/r.wav"}
