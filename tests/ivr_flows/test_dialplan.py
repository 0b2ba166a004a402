"""hotline asterisk config: the dialplan context and the AMI user, from settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.config import Settings
from ivr_flows.dialplan import render_asterisk_config, render_extensions, render_manager


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings()
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
        " same => n,Hangup()",
        "exten => agent,1,Queue(hotline-agents)",
        "[hotline-hangup]",
        " same => n,Return()",
    ]
    positions = [text.index(line) for line in expected]
    assert positions == sorted(positions)
    assert any(line.startswith("exten => s,1,UserEvent(HotlineCallEnded,") for line in text)


def test_the_manager_user_and_channel_variables(settings: Settings) -> None:
    text = lines(render_manager(settings))
    for line in (
        "channelvars = HOTLINE_CASE,MIXMONITOR_FILENAME",
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


def test_both_files_in_one_output(settings: Settings) -> None:
    text = render_asterisk_config(settings)
    assert text.index(";;; ---- extensions.conf ----") < text.index(";;; ---- manager.conf ----")
