"""hotline asterisk config: the dialplan context and the AMI user, from settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from casebook import agents
from casebook.db import Database
from casebook.models import Agent
from hotline.app.config import Settings
from ivr_flows.dialplan import (
    render_asterisk_config,
    render_extensions,
    render_manager,
    render_queues,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings()
    settings.database.url = f"sqlite:///{tmp_path / 'hotline.db'}"
    settings.recordings.root = tmp_path / "rec"
    settings.agi.host = "10.1.2.3"
    settings.agi.port = 4600
    settings.ami.username = "listener"
    settings.ami.secret = "s3cret"
    return settings


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_the_hotline_context(settings: Settings, tmp_path: Path) -> None:
    text = lines(render_extensions(settings))
    assert "[hotline]" in text
    first = "exten => 15654,1,NoOp(Complaints hotline call from ${CALLERID(num)} uid=${UNIQUEID})"
    assert first in text
    expected = [
        " same => n,Set(CHANNEL(language)=ar)",
        " same => n,Set(CHANNEL(hangup_handler_push)=hotline-hangup,s,1)",
        " same => n,Answer()",
        f" same => n,MixMonitor({tmp_path / 'rec'}/hotline-${{CHANNEL(linkedid)}}-${{UNIQUEID}}"
        ".wav)",
        " same => n,AGI(agi://10.1.2.3:4600/hotline,${CHANNEL(linkedid)})",
        ' same => n,GotoIf($["${HOTLINE_NEXT}" = "agent"]?agent,1)',
        ' same => n,ExecIf($["${AGISTATUS}" = "FAILURE"]?Set(HOTLINE_OUTCOME=agent))',
        ' same => n,GotoIf($["${AGISTATUS}" = "FAILURE"]?agent,1)',
        " same => n,Hangup()",
        "exten => agent,1,Queue(hotline-agents,r,,,120)",
        "[hotline-hangup]",
        " same => n,Return()",
    ]
    positions = [text.index(line) for line in expected]
    assert positions == sorted(positions)
    assert any(line.startswith("exten => s,1,UserEvent(HotlineCallEnded,") for line in text)
    # The queue waits at most ivr.queue_wait_seconds, then a polite goodbye.
    queue = text.index("exten => agent,1,Queue(hotline-agents,r,,,120)")
    assert text[queue + 1 : queue + 3] == [
        " same => n,Playback(hotline/agents_busy)",
        " same => n,Hangup()",
    ]


def test_the_manager_user_and_channel_variables(settings: Settings) -> None:
    text = lines(render_manager(settings))
    for line in (
        "channelvars = HOTLINE_CASE,MIXMONITOR_FILENAME,HOTLINE_CHOICES,HOTLINE_OUTCOME",
        "[listener]",
        "secret = s3cret",
        "permit = 127.0.0.1/255.255.255.255",
        "bindaddr = 127.0.0.1",
        "port = 5038",
    ):
        assert line in text


def test_a_wildcard_agi_bind_needs_the_public_host(settings: Settings) -> None:
    settings.agi.host = "0.0.0.0"
    with pytest.raises(ValueError, match=r"ivr\.agi_public_host"):
        render_extensions(settings)
    settings.ivr.agi_public_host = "192.0.2.7"
    assert "AGI(agi://192.0.2.7:4600/hotline," in render_extensions(settings)


def test_a_line_break_in_a_setting_cannot_add_config_lines(settings: Settings) -> None:
    settings.ami.secret = "x\n[evil]"
    with pytest.raises(ValueError, match="line break"):
        render_manager(settings)


def test_every_file_in_one_output(settings: Settings) -> None:
    text = render_asterisk_config(settings, ["201"])
    headers = [line for line in lines(text) if line.startswith(";;; ---- ")]
    assert headers == [
        ";;; ---- extensions.conf ----",
        ";;; ---- queues.conf ----",
        ";;; ---- manager.conf ----",
    ]
    assert "member => Local/201@hotline-agents,0,201,PJSIP/201" in lines(text)


def test_the_manager_user_gets_only_the_classes_it_uses(settings: Settings) -> None:
    text = lines(render_manager(settings))
    assert "read = call,dialplan,user,cdr,agent" in text
    assert "write = originate,reporting" in text
    assert [line for line in text if line.startswith(("read", "write"))] == [
        "read = call,dialplan,user,cdr,agent",
        "write = originate,reporting",
    ]
    # Filter needs system: the listener's and the dialer's filters are set on the user.
    filters = [line.removeprefix("eventfilter = ") for line in text if "eventfilter" in line]
    assert filters == [*settings.ami.event_filters, "Event: DialEnd"]


def test_the_queue_and_its_members(settings: Settings) -> None:
    settings.ivr.queue_members = ["300", "201"]
    text = lines(render_queues(settings, ["201", "202"]))
    assert text.index("[hotline-agents]") < text.index("strategy = rrmemory")
    for line in (
        "timeout = 15",
        "ringinuse = no",
        "announce-frequency = 0",
        "periodic-announce-frequency = 0",
        "announce-position = no",
        "announce-holdtime = no",
        "joinempty = paused,penalty,invalid,unavailable",
        "leavewhenempty = paused,penalty,invalid,unavailable",
    ):
        assert line in text
    assert [line for line in text if line.startswith("member")] == [
        "member => Local/300@hotline-agents,0,300,PJSIP/300",
        "member => Local/201@hotline-agents,0,201,PJSIP/201",
        "member => Local/202@hotline-agents,0,202,PJSIP/202",
    ]


def test_no_members_is_said_not_left_blank(settings: Settings) -> None:
    text = render_queues(settings, [])
    assert not any(line.startswith("member") for line in lines(text))
    assert "; no members: no active agent has an extension" in lines(text)


def test_the_configured_agent_channel_and_device_are_used_everywhere(settings: Settings) -> None:
    settings.callbacks.agent_channel = "IAX2/{extension}"
    settings.callbacks.agent_device = "SIP/{extension}"
    settings.ivr.queue_wait_seconds = 45
    text = render_asterisk_config(settings, ["201"])
    assert "PJSIP/${EXTEN}" not in text and "PJSIP/201" not in text
    assert "member => IAX2/201,0,201,SIP/201" in lines(text)
    assert "exten => _X.,1,Dial(SIP/${EXTEN},30)" in lines(text)
    assert "exten => agent,1,Queue(hotline-agents,r,,,45)" in lines(text)


@pytest.mark.parametrize("extension", ["20&1", "Local/1@x", "", "1" * 33, "12\n[evil]"])
def test_an_extension_that_is_not_digits_is_refused(settings: Settings, extension: str) -> None:
    with pytest.raises(ValueError, match="is not 1-32 digits"):
        render_queues(settings, [extension])


def test_queue_members_are_the_active_agents_with_an_extension(db: Database) -> None:
    def staff(session: Session) -> None:
        session.add_all(
            [
                Agent(username="amal", display_name="أمل", extension="202"),
                Agent(username="badr", display_name="بدر"),  # no phone
                Agent(username="chadi", display_name="شادي", extension="203", active=False),
                Agent(username="dina", display_name="دينا", extension="201"),
                Agent(username="ezz", display_name="عز", extension="201"),  # a shared phone
            ]
        )

    db.run(staff)
    assert db.run(agents.queue_extensions) == ["201", "202"]


def test_a_busy_agent_phone_is_busy_to_whoever_rang_it(settings: Settings) -> None:
    # Asterisk 22.10.1: Originate of Local/201@hotline-agents to a busy phone answered Reason 0
    # (read as no answer) when the context just hung up, Reason 5 (busy) with Busy().
    text = render_extensions(settings)
    agents_context = text[text.index("[hotline-agents]") :]
    assert [line for line in lines(agents_context) if not line.lstrip().startswith(";")] == [
        "[hotline-agents]",
        "exten => _X.,1,Dial(PJSIP/${EXTEN},30)",
        ' same => n,GotoIf($["${DIALSTATUS}" = "BUSY"]?busy)',
        " same => n,Hangup()",
        " same => n(busy),Busy(1)",
    ]
