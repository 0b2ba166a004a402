"""Signing in over the API: sessions, who one is, refused and ended sessions, failed passwords
slowed and then locked out (issue 16's acceptance)."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from casebook.clock import utcnow
from casebook.models import AuditEvent, SigninSession
from tests.api.conftest import PASSWORD, ApiSite, unique
from tests.api.unix_http import Answer


def signin_required(answer_status: int, error: dict[str, object]) -> bool:
    return answer_status == 401 and error["code"] == "signin_required"


def test_a_session_is_issued_names_its_person_and_ends_on_sign_out(api_site: ApiSite) -> None:
    username = api_site.add_agent(["agent"], "billing")
    issued = api_site.sign_in(username)
    assert issued.status == 201
    session = issued.json()
    assert set(session) == {"token", "username", "display_name", "roles", "expires_at"}
    assert (session["username"], session["roles"]) == (username, ["agent"])
    zone = api_site.settings.business_hours.zone
    offset = utcnow().astimezone(zone).isoformat()[-6:]
    assert session["expires_at"].endswith(offset)  # the site's time, with its offset

    me = api_site.anonymous.as_(session["token"])
    who = me.get("/v1/whoami")
    assert who.status == 200
    assert who.json() == {
        "username": username,
        "display_name": username.title(),
        "roles": ["agent"],
        "department": "billing",
        "languages": ["ar"],
        "skills": [],
        "extension": None,
        "shift_days": [],
        "shift_start": None,
        "shift_end": None,
        "capacity": None,
        "effective_capacity": 10,
        "active": True,
        "locked": False,
        "roles_label_ar": "موظف",
        "department_label_ar": "الفواتير",
        "permissions": ["escalate"],
        "session_expires_at": session["expires_at"],
    }
    assert me.delete("/v1/sessions/current").status == 204
    after = me.get("/v1/whoami")
    assert signin_required(after.status, after.error)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token", "Basic YWRtaW46cGFzcw==", "bearer  ", "Token abc"],
    ids=["none", "empty", "unknown", "basic", "blank", "other-scheme"],
)
def test_no_or_garbled_token_is_refused(api_site: ApiSite, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for path in ("/v1/whoami", "/v1/cases", "/v1/status"):
        answer = api_site.anonymous.get(path, headers=headers)
        assert signin_required(answer.status, answer.error), (path, answer.body)
        assert answer.headers["www-authenticate"] == "Bearer"


def test_an_expired_session_is_refused(api_site: ApiSite) -> None:
    username = api_site.add_agent(["agent"], "billing")
    token = api_site.tokens[username]
    digest = hashlib.sha256(token.encode()).hexdigest()

    def expire(session: Session) -> None:
        row = session.exec(select(SigninSession).where(SigninSession.token_sha256 == digest)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)

    api_site.db.run(expire)
    answer = api_site.client(username).get("/v1/cases")
    assert signin_required(answer.status, answer.error)


def test_a_disabled_account_loses_its_sessions_and_cannot_sign_in(api_site: ApiSite) -> None:
    username = api_site.add_agent(["agent"], "billing")
    agent = api_site.client(username)
    assert agent.get("/v1/cases").status == 200
    disabled = api_site.client("admin").post(f"/v1/agents/{username}/disable")
    assert disabled.status == 200
    assert disabled.json()["agent"]["active"] is False
    refused = agent.get("/v1/cases")
    assert signin_required(refused.status, refused.error)
    again = api_site.sign_in(username)
    assert (again.status, again.error["code"]) == (403, "disabled")
    enabled = api_site.client("admin").post(f"/v1/agents/{username}/enable")
    assert enabled.status == 200 and enabled.json()["agent"]["active"] is True
    assert api_site.sign_in(username).status == 201


def test_an_agent_may_not_manage_agents(api_site: ApiSite) -> None:
    body = {"username": unique("x"), "display_name": "X", "roles": ["admin"]}
    refused = api_site.client("carer").post("/v1/agents", body)
    assert (refused.status, refused.error["code"]) == (403, "denied")
    for action in ("disable", "enable", "password-reset"):
        answer = api_site.client("carer").post(f"/v1/agents/biller/{action}")
        assert (answer.status, answer.error["code"]) == (403, "denied"), action


def wrong_passwords(api_site: ApiSite, username: str, count: int) -> list[Answer]:
    """``count`` failed sign-ins: a try refused for waiting (429) is made again after its
    Retry-After, since only a checked password counts as a failure."""
    answers: list[Answer] = []
    while len(answers) < count:
        answer = api_site.sign_in(username, "wrong password!")
        if answer.status == 429:
            threading.Event().wait(answer.json()["retry_after"])
            continue
        answers.append(answer)
    return answers


def test_twenty_wrong_passwords_lock_the_account(api_site: ApiSite) -> None:
    username = api_site.add_agent(["agent"], "billing")
    limit = api_site.settings.signin.lock_after_failures
    assert limit == 20
    answers = wrong_passwords(api_site, username, limit)
    assert {(a.status, a.error["code"]) for a in answers[:-1]} == {(401, "wrong_credentials")}
    assert (answers[-1].status, answers[-1].error["code"]) == (423, "locked")
    locked = api_site.sign_in(username)  # even the right password, once locked
    assert (locked.status, locked.error["code"]) == (423, "locked")
    listed = {a["username"]: a for a in api_site.client("admin").get("/v1/agents").json()}
    assert listed[username]["locked"] is True
    # An admin's reset unlocks it with a new one-time password.
    reset = api_site.client("admin").post(f"/v1/agents/{username}/password-reset")
    assert reset.status == 200
    assert reset.json()["agent"]["locked"] is False
    one_time = reset.json()["one_time_password"]
    must_change = api_site.sign_in(username, one_time)
    assert (must_change.status, must_change.error["code"]) == (403, "password_change_required")
    renewed = api_site.sign_in(username, one_time, new_password="another long passphrase")
    assert renewed.status == 201


def test_a_slowed_account_gets_429_with_retry_after(api_site: ApiSite) -> None:
    username = api_site.add_agent(["agent"], "billing")
    signin_settings = api_site.settings.signin
    # The cap first: each assignment is checked (the cap may not be below the base).
    signin_settings.slow_cap_seconds, signin_settings.slow_base_seconds = 60.0, 30.0
    try:
        failed = wrong_passwords(api_site, username, signin_settings.slow_after_failures + 1)
        slowed = api_site.sign_in(username)  # the right password, but too soon
    finally:
        signin_settings.slow_base_seconds, signin_settings.slow_cap_seconds = 0.001, 0.001
    assert {a.status for a in failed} == {401}
    assert slowed.status == 429
    body = slowed.json()
    assert body["code"] == "slowed" and 0 < body["retry_after"] <= 30
    assert 1 <= int(slowed.headers["retry-after"]) <= 30


def test_unknown_user_and_wrong_password_read_the_same(api_site: ApiSite) -> None:
    unknown = api_site.sign_in(unique("nobody"), "whatever password")
    wrong = api_site.sign_in("biller", "not the password")
    assert unknown.status == wrong.status == 401
    assert unknown.error == wrong.error


def test_changing_ones_password(api_site: ApiSite) -> None:
    username = api_site.add_agent(["agent"], "billing")
    me = api_site.client(username)
    wrong = me.post("/v1/password", {"current_password": "not it at all", "new_password": "x" * 12})
    assert wrong.status in (400, 401, 403) and wrong.error
    changed = me.post(
        "/v1/password", {"current_password": PASSWORD, "new_password": "a brand new passphrase"}
    )
    assert changed.status == 204
    assert api_site.sign_in(username).status == 401
    assert api_site.sign_in(username, "a brand new passphrase").status == 201


def test_sign_ins_over_the_socket_are_audited_from_unix(api_site: ApiSite) -> None:
    username = api_site.add_agent(["agent"], "billing")
    api_site.sign_in(username, "wrong password!")
    with api_site.db.session() as session:
        refused = session.exec(
            select(AuditEvent).where(
                AuditEvent.action == "session.refused", AuditEvent.object_id == username
            )
        ).all()
    assert refused and refused[-1].allowed is False
    assert "wrong password!" not in str(refused[-1].detail)


def test_changing_ones_password_keeps_this_session_and_ends_the_others(api_site: ApiSite) -> None:
    username = api_site.add_agent(["agent"], "billing")
    here = api_site.client(username)
    elsewhere = api_site.anonymous.as_(api_site.sign_in(username).json()["token"])
    new = "another long passphrase"
    wrong = here.post("/v1/password", {"current_password": "not it at all", "new_password": new})
    assert (wrong.status, wrong.error["code"]) == (401, "wrong_credentials")
    changed = here.post("/v1/password", {"current_password": PASSWORD, "new_password": new})
    assert changed.status == 204, changed.body
    assert here.get("/v1/whoami").status == 200
    ended = elsewhere.get("/v1/whoami")
    assert signin_required(ended.status, ended.error)
    assert api_site.sign_in(username).status == 401
    assert api_site.sign_in(username, new).status == 201


def test_the_sites_choices_are_for_signed_in_people(api_site: ApiSite) -> None:
    choices = api_site.client("carer").get("/v1/site")
    assert choices.status == 200
    assert choices.json() == {
        "categories": sorted(api_site.settings.sla.categories),
        "departments": list(api_site.settings.cases.departments),
    }
    refused = api_site.anonymous.get("/v1/site")
    assert signin_required(refused.status, refused.error)
