"""Outages with calls up, on the real PBX: Asterisk restarts, the listener is SIGKILLed. Every
call is stored once, ended. These run after test_calls.py's traffic is over."""

from __future__ import annotations

import subprocess

import pytest

from tests.pbx.site import PATIENCE, Site
from tests.pbx.traffic import COMPLAINT_STEPS, Caller, Traffic, in_ivr, place, wait_hung_up

pytestmark = pytest.mark.pbx


def test_core_restart_now_with_calls_up_stores_each_call_once(traffic: Traffic, site: Site) -> None:
    assert traffic.all_over()
    driver = site.driver()
    try:
        placed = [place(driver, Caller(f"09130000{n:02d}", COMPLAINT_STEPS)) for n in range(3)]
        for call in placed:
            in_ivr(driver, call.linkedid)
        mark = site.serve_log.stat().st_size
        # The CLI's own connection goes down with Asterisk: its exit status says nothing.
        subprocess.run(
            [str(site.asterisk / "asterisk-cli"), "core restart now"],
            capture_output=True,
            timeout=PATIENCE,
            check=False,
        )
    finally:
        driver.close()
    assert site.wait_log(site.serve_log, "AMI: logged in", after=mark), "no reconnect"
    for call in placed:
        stored = traffic.stored_call(call.linkedid)
        assert stored.caller_number == call.caller.number


def test_a_listener_killed_mid_call_stores_each_call_once_when_back(
    traffic: Traffic, site: Site
) -> None:
    assert traffic.all_over()
    driver = site.driver()
    try:
        placed = [place(driver, Caller(f"09140000{n:02d}", COMPLAINT_STEPS)) for n in range(2)]
        for call in placed:
            in_ivr(driver, call.linkedid)
        site.kill_serve()
        # Without its FastAGI server the dialplan ends the calls while nobody listens.
        for call in placed:
            wait_hung_up(driver, call.linkedid)
    finally:
        driver.close()
    site.start_serve()
    for call in placed:
        stored = traffic.stored_call(call.linkedid)
        assert stored.caller_number == call.caller.number
