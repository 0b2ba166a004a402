"""The API's text output is inert (issue 17, item 4): its JSON writes the characters a terminal
acts on as \\u escapes (the values parse back as stored), and its one-line errors, which may
echo what was typed, hold none of them, whatever prints them (curl, a log, another client)."""

from __future__ import annotations

import json

from hotline.app.api import error_reply
from tests.api.conftest import ApiSite

HOSTILE = "شكوى [/x] \x1b]0;title\x07 \x1b[2J \u202eabc \x9b2J"
ACTIVE = ("\x1b", "\x07", "\u202e", "\x9b")


def raw_text(body: bytes) -> str:
    return body.decode("utf-8")


def test_stored_text_goes_out_as_stored_written_inert(api_site: ApiSite) -> None:
    reference = api_site.case(draft_text=HOSTILE)
    answer = api_site.client("supervisor").get(f"/v1/cases/{reference}")
    assert answer.status == 200
    assert answer.json()["draft_text"] == HOSTILE
    written = raw_text(answer.body)
    assert not any(char in written for char in ACTIVE)
    assert "\\u001b]0;title\\u0007" in written and "\\u202e" in written
    assert "شكوى [/x]" in written  # Arabic and brackets as they are


def test_an_error_line_is_one_inert_line_whatever_it_echoes() -> None:
    # A refusal may echo what was typed or stored as it is (a name, a reason): the line is
    # made inert where it is written.
    answer = error_reply(400, f"agent {HOSTILE}\nsecond line", "refused")
    written = raw_text(bytes(answer.body))
    line = json.loads(written)["error"]
    assert not any(char in written for char in ACTIVE)
    assert line == ("agent شكوى [/x] \\x1b]0;title\\x07 \\x1b[2J \\u202eabc \\x9b2J second line")


def test_an_over_long_reason_is_refused_in_one_line_naming_where_it_goes(
    api_site: ApiSite,
) -> None:
    reference = api_site.case()
    long_reason = {"reason": "س" * 5_000 + "\x1b[2J"}
    refused = api_site.client("supervisor").post(f"/v1/cases/{reference}/escalate", long_reason)
    assert refused.status == 400
    assert refused.error["error"] == (
        "نص غير مقبول (text refused): audit_event.detail 'reason' has 5004 characters, at most 4000"
    )
    assert api_site.stored_case(reference).escalation_level == 0
