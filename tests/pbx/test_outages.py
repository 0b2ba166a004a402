"""Outages with calls up, on the real PBX: Asterisk restarts, the listener is SIGKILLed. Every
call is stored once, ended. These run after test_calls.py's traffic is over."""

from __future__ import annotations

import subprocess

import pytest

from tests.pbx.site import PATIENCE, Site
from tests.pbx.traffic import (
    COMPLAINT_STEPS,
    Caller,
    Placed,
    Traffic,
    capture_folder,
    in_ivr,
    place,
    segment,
    wait_hung_up,
)

pytestmark = pytest.mark.pbx


def callers(prefix: str, count: int) -> list[Caller]:
    return [Caller(f"{prefix}{n:02d}", COMPLAINT_STEPS) for n in range(count)]


def assert_stored_once(traffic: Traffic, placed: list[Placed]) -> None:
    for call in placed:
        assert traffic.stored_call(call.linkedid).caller_number == call.caller.number


def test_core_restart_now_with_calls_up_stores_each_call_once(traffic: Traffic, site: Site) -> None:
    assert traffic.all_over()
    before = site.driver()
    try:
        placed = [place(before, caller) for caller in callers("09130000", 3)]
        for call in placed:
            in_ivr(before, call.linkedid)
        mark = site.serve_log.stat().st_size
        # The CLI's own connection goes down with Asterisk: its exit status says nothing.
        subprocess.run(
            [str(site.asterisk / "asterisk-cli"), "core restart now"],
            capture_output=True,
            timeout=PATIENCE,
            check=False,
        )
    finally:
        before.close()
    assert site.wait_log(site.serve_log, "AMI: logged in", after=mark), "no reconnect"
    after = site.driver()
    try:
        snapshot = after.snapshot()
        assert_stored_once(traffic, placed)
        folder = capture_folder()
        if folder is not None:
            linkedids = [call.linkedid for call in placed]
            traffic.write_scenario(
                folder / "core-restart",
                [segment(before, linkedids), segment(after, linkedids, snapshot=snapshot)],
                linkedids,
                callers=[call.caller.number for call in placed],
            )
    finally:
        after.close()


def test_a_listener_killed_mid_call_stores_each_call_once_when_back(
    traffic: Traffic, site: Site
) -> None:
    assert traffic.all_over()
    driver = site.driver()
    try:
        placed = [place(driver, caller) for caller in callers("09140000", 2)]
        for call in placed:
            in_ivr(driver, call.linkedid)
        killed_at = len(driver.blocks)
        site.kill_serve()
        # Without its FastAGI server the dialplan ends the calls while nobody listens.
        for call in placed:
            wait_hung_up(driver, call.linkedid)
        back_at = len(driver.blocks)
        site.start_serve()
        snapshot = driver.snapshot()
        assert_stored_once(traffic, placed)
        folder = capture_folder()
        if folder is not None:
            linkedids = [call.linkedid for call in placed]
            # What the listener saw before it died, then what the new one saw.
            traffic.write_scenario(
                folder / "listener-sigkill",
                [
                    segment(driver, linkedids, until=killed_at),
                    segment(driver, linkedids, start=back_at, snapshot=snapshot),
                ],
                linkedids,
                callers=[call.caller.number for call in placed],
                listener_restarted=True,
            )
    finally:
        driver.close()
