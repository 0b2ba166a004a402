"""Sign-in (casebook.signin) and the admin's side of it (casebook.agents): passwords, slowing and
locking, sessions, one-time passwords, the site's first admin. On SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from alembic import command
from argon2 import PasswordHasher
from pydantic import ValidationError
from sqlalchemy import text
from sqlmodel import SQLModel, col, select

from casebook import agents, credentials, signin
from casebook.access import Actor
from casebook.db import Database, _alembic_config, owner_settings, upgrade_database
from casebook.errors import AccessDenied, CasebookError, RuleViolation
from casebook.models import Agent, AuditEvent, Case, SigninFailure, SigninSession
from casebook.settings import SigninSettings
from casebook.signin import (
    AccountDisabled,
    AccountLocked,
    BootstrapRefused,
    IssuedSession,
    PasswordChangeRequired,
    SessionInvalid,
    SigninRefused,
    TooManyTries,
    WrongCredentials,
)
from hotline.app.config import Settings
from tests.conftest import BACKENDS, TEST_PASSWORD, add_agent, bootstrap, use_pg_schema

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ADDRESS = "10.0.0.7"
AMAL_PASSWORD = "amal-chosen-password"


@dataclass
class Site:
    db: Database
    settings: Settings

    def sign_in(
        self,
        username: str,
        password: str,
        *,
        now: datetime = T0,
        address: str = ADDRESS,
        new_password: str | None = None,
    ) -> IssuedSession | SigninRefused:
        return self.db.run(
            lambda s: signin.sign_in(
                s,
                self.settings.signin,
                username,
                password,
                address=address,
                now=now,
                new_password=new_password,
            )
        )

    def session_for(self, username: str, password: str, **kwargs: Any) -> IssuedSession:
        issued = self.sign_in(username, password, **kwargs)
        assert isinstance(issued, IssuedSession), issued
        return issued

    def actor(self, token: str, now: datetime = T0) -> Actor:
        return self.db.run(lambda s: signin.actor_for_token(s, token, self.settings.roles, now=now))

    def agent(self, username: str) -> Agent:
        with self.db.session() as s:
            return s.exec(select(Agent).where(Agent.username == username)).one()

    def admin(self) -> Actor:
        return self.db.run(lambda s: agents.resolve_actor(s, "admin", self.settings.roles))

    def reset(self, username: str, now: datetime = T0) -> str:
        admin = self.admin()
        return self.db.run(
            lambda s: agents.reset_password(s, self.settings, admin, username, now=now)
        )

    def audit(self, action: str, allowed: bool | None = None) -> list[AuditEvent]:
        with self.db.session() as s:
            query = select(AuditEvent).where(AuditEvent.action == action)
            if allowed is not None:
                query = query.where(AuditEvent.allowed == allowed)
            return list(s.exec(query.order_by(col(AuditEvent.id))))


@pytest.fixture
def site(db: Database, settings: Settings) -> Site:
    """An admin (bootstrapped) and amal, an agent who has replaced her one-time password."""
    bootstrap(db, settings)
    one_time = add_agent(db, settings, "amal", department="customer-care", now=T0)
    site = Site(db, settings)
    site.session_for("amal", one_time, new_password=AMAL_PASSWORD)
    return site


class CountingHasher(PasswordHasher):
    """The test hasher's parameters, counting verifies: an unknown user must cost one too."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verifies = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifies += 1
        return super().verify(hash, password)


def test_the_right_password_opens_a_session_whose_token_is_the_agent(site: Site) -> None:
    issued = site.session_for("amal", AMAL_PASSWORD)
    assert (issued.username, issued.roles) == ("amal", ["agent"])
    assert issued.expires_at == T0 + timedelta(hours=site.settings.signin.session_hours)
    actor = site.actor(issued.token, T0 + timedelta(minutes=5))
    assert (actor.username, actor.department) == ("amal", "customer-care")
    assert actor.agent_id == site.agent("amal").id
    assert not actor.can("see_all_cases")
    start = site.audit("session.start")[-1]
    assert (start.actor, start.allowed, start.detail["address"]) == ("amal", True, ADDRESS)


def test_a_user_name_is_matched_whatever_its_case_and_spaces(site: Site) -> None:
    assert site.session_for(" Amal ", AMAL_PASSWORD).username == "amal"


def test_an_unknown_user_gets_what_a_wrong_password_gets_at_the_same_cost(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = CountingHasher()
    monkeypatch.setattr(credentials, "hasher", counting)
    wrong = site.sign_in("amal", "not-her-password")
    assert counting.verifies == 1
    unknown = site.sign_in("nobody", "whatever-password")
    assert counting.verifies == 2
    assert type(wrong) is type(unknown) is WrongCredentials
    assert str(wrong) == str(unknown)
    assert (wrong.code, wrong.http_status) == ("wrong_credentials", 401)
    refused = site.audit("session.refused")
    assert [(e.actor, e.object_id, e.allowed) for e in refused] == [
        ("signin:amal", "amal", False),
        ("signin:nobody", "nobody", False),
    ]
    assert refused[1].detail["reason"] == "no such agent"
    assert site.agent("amal").failed_signins == 1


def test_failures_in_a_row_slow_the_account_down_with_the_time_left(site: Site) -> None:
    rules = site.settings.signin  # 5 free failures, then 1 s, doubling
    now = T0
    for _ in range(rules.slow_after_failures):
        assert isinstance(site.sign_in("amal", "wrong-password", now=now), WrongCredentials)
    sixth = site.sign_in("amal", "wrong-password", now=now)
    assert isinstance(sixth, WrongCredentials)
    slowed = site.sign_in("amal", AMAL_PASSWORD, now=now + timedelta(seconds=0.25))
    assert isinstance(slowed, TooManyTries)
    assert (slowed.code, slowed.http_status) == ("slowed", 429)
    assert slowed.retry_after == pytest.approx(0.75)
    assert site.agent("amal").failed_signins == 6  # a slowed try tests no password
    now += timedelta(seconds=1)
    assert isinstance(site.sign_in("amal", "wrong-password", now=now), WrongCredentials)
    slowed = site.sign_in("amal", "wrong-password", now=now)
    assert isinstance(slowed, TooManyTries) and slowed.retry_after == pytest.approx(2.0)
    # Waited out, the right password opens a session and the count starts again.
    site.session_for("amal", AMAL_PASSWORD, now=now + timedelta(seconds=2))
    agent = site.agent("amal")
    assert (agent.failed_signins, agent.last_failed_signin_at) == (0, None)


def test_the_wait_doubles_up_to_the_cap(site: Site) -> None:
    rules = site.settings.signin
    now, waits = T0, []
    for _ in range(rules.lock_after_failures - 1):
        assert isinstance(site.sign_in("amal", "wrong-password", now=now), WrongCredentials)
        waits.append(signin.account_wait(rules, site.agent("amal"), now) or 0)
        now += timedelta(seconds=rules.slow_cap_seconds)
    assert waits == [0] * 5 + [1, 2, 4, 8, 16, 32] + [60] * 8


def test_twenty_wrong_passwords_lock_the_account_until_an_admin_resets_it(site: Site) -> None:
    rules = site.settings.signin
    earlier = site.session_for("amal", AMAL_PASSWORD)
    now = T0
    outcomes = []
    for _ in range(rules.lock_after_failures):
        now += timedelta(seconds=rules.slow_cap_seconds)
        outcomes.append(type(site.sign_in("amal", "wrong-password", now=now)))
    assert outcomes == [WrongCredentials] * 19 + [AccountLocked]
    locked = site.audit("agent.locked")
    assert [(e.actor, e.object_id) for e in locked] == [("signin:amal", "amal")]
    refused = site.sign_in("amal", AMAL_PASSWORD, now=now + timedelta(hours=1))
    assert isinstance(refused, AccountLocked) and refused.http_status == 423
    with pytest.raises(SessionInvalid):
        site.actor(earlier.token, now)

    one_time = site.reset("amal", now=now)
    agent = site.agent("amal")
    assert (agent.locked_at, agent.failed_signins, agent.password_must_change) == (None, 0, True)
    assert site.audit("agent.password_reset")[-1].detail["unlocked"] is True
    assert isinstance(site.sign_in("amal", AMAL_PASSWORD, now=now), WrongCredentials)
    site.session_for("amal", one_time, now=now, new_password="amal-second-password")


def test_failures_from_one_address_refuse_it_whatever_the_user_name(site: Site) -> None:
    site.settings.signin.address_failures = 4
    window = timedelta(minutes=site.settings.signin.address_window_minutes)
    for n in range(4):
        at = T0 + timedelta(minutes=n)
        assert isinstance(site.sign_in(f"guess{n}", "password-1", now=at), WrongCredentials)
    at = T0 + timedelta(minutes=5)
    refused = site.sign_in("amal", AMAL_PASSWORD, now=at)
    assert isinstance(refused, TooManyTries)
    assert refused.retry_after == pytest.approx((T0 + window - at).total_seconds())
    # Another address is not held back, nor is amal's account.
    site.session_for("amal", AMAL_PASSWORD, now=at, address="10.0.0.8")
    assert site.agent("amal").failed_signins == 0
    # Once the oldest failure leaves the window, the address may try again.
    site.session_for("amal", AMAL_PASSWORD, now=T0 + window)
    with site.db.session() as s:
        kept = s.exec(select(SigninFailure.username).order_by(col(SigninFailure.id))).all()
    assert kept == ["guess0", "guess1", "guess2", "guess3"]


def test_failures_at_the_same_moment_are_all_counted(site: Site) -> None:
    site.settings.signin.slow_after_failures = 15  # none of them is slowed
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: site.sign_in("amal", "wrong-password"), range(12)))
    assert {type(outcome) for outcome in outcomes} == {WrongCredentials}
    assert site.agent("amal").failed_signins == 12


def test_a_session_ends_at_its_absolute_end_however_busy(site: Site) -> None:
    issued = site.session_for("amal", AMAL_PASSWORD)
    end = T0 + timedelta(hours=site.settings.signin.session_hours)
    now = T0
    while now + timedelta(minutes=30) < end:
        now += timedelta(minutes=30)
        site.actor(issued.token, now)
    with pytest.raises(SessionInvalid) as refused:
        site.actor(issued.token, end)
    assert (refused.value.code, refused.value.http_status) == ("signin_required", 401)
    assert "hotline login" in str(refused.value)


def test_an_unused_session_ends_after_the_idle_time(site: Site) -> None:
    idle = timedelta(minutes=site.settings.signin.idle_minutes)
    issued = site.session_for("amal", AMAL_PASSWORD)
    site.actor(issued.token, T0 + idle - timedelta(minutes=1))  # used: the idle end moves
    site.actor(issued.token, T0 + 2 * idle - timedelta(minutes=2))
    with pytest.raises(SessionInvalid):
        site.actor(issued.token, T0 + 3 * idle)


def test_the_last_use_is_written_at_most_once_a_minute(site: Site) -> None:
    issued = site.session_for("amal", AMAL_PASSWORD)

    def last_seen() -> datetime:
        digest = credentials.token_digest(issued.token)
        with site.db.session() as s:
            query = select(SigninSession.last_seen_at).where(SigninSession.token_sha256 == digest)
            return s.exec(query).one()

    site.actor(issued.token, T0 + timedelta(seconds=59))
    assert last_seen() == T0
    site.actor(issued.token, T0 + timedelta(seconds=61))
    assert last_seen() == T0 + timedelta(seconds=61)


def test_signing_out_ends_the_session(site: Site) -> None:
    issued = site.session_for("amal", AMAL_PASSWORD)
    other = site.session_for("amal", AMAL_PASSWORD)
    site.db.run(lambda s: signin.end_session(s, issued.token, now=T0))
    with pytest.raises(SessionInvalid):
        site.actor(issued.token)
    with pytest.raises(SessionInvalid):
        site.db.run(lambda s: signin.end_session(s, issued.token, now=T0))
    assert site.actor(other.token).username == "amal"  # only that one
    assert [(e.actor, e.detail) for e in site.audit("session.end")] == [("amal", {"why": "logout"})]
    for token in ("", "not-a-token"):
        with pytest.raises(SessionInvalid):
            site.actor(token)


def test_disabling_an_agent_ends_their_sessions_and_bars_sign_in(site: Site) -> None:
    first = site.session_for("amal", AMAL_PASSWORD)
    second = site.session_for("amal", AMAL_PASSWORD, address="10.0.0.9")
    admin = site.admin()
    site.db.run(lambda s: agents.disable_agent(s, admin, "amal", now=T0))
    for issued in (first, second):
        with pytest.raises(SessionInvalid):
            site.actor(issued.token)
    with site.db.session() as s:
        ended = s.exec(select(SigninSession.ended_why)).all()
    assert ended == ["disabled"] * 3  # with the one she replaced her password in
    assert site.audit("agent.disable")[-1].detail == {"sessions_ended": 3}
    # Disabled is said only to whoever knows the password.
    refused = site.sign_in("amal", AMAL_PASSWORD)
    assert isinstance(refused, AccountDisabled) and refused.http_status == 403
    assert isinstance(site.sign_in("amal", "wrong-password"), WrongCredentials)
    with pytest.raises(CasebookError, match="already disabled"):
        site.db.run(lambda s: agents.disable_agent(s, admin, "amal", now=T0))

    site.db.run(lambda s: agents.enable_agent(s, admin, "amal"))
    assert site.actor(site.session_for("amal", AMAL_PASSWORD).token).username == "amal"
    with pytest.raises(SessionInvalid):  # what disabling ended stays ended
        site.actor(first.token)


def test_the_last_active_admin_cannot_be_disabled(site: Site) -> None:
    admin = site.admin()
    with pytest.raises(RuleViolation, match="last active admin"):
        site.db.run(lambda s: agents.disable_agent(s, admin, "admin", now=T0))
    add_agent(site.db, site.settings, "deputy", ["admin"])
    site.db.run(lambda s: agents.disable_agent(s, admin, "admin", now=T0))
    assert not site.agent("admin").active


def _every_value(site: Site) -> str:
    """Every row of every table, as text."""
    dump: list[str] = []
    with site.db.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            rows = connection.execute(table.select()).all()
            dump.extend(repr(tuple(row)) for row in rows)
    return "\n".join(dump)


def test_a_token_is_stored_only_as_its_hash(site: Site) -> None:
    issued = site.session_for("amal", AMAL_PASSWORD)
    site.actor(issued.token, T0 + timedelta(minutes=2))
    site.db.run(lambda s: signin.end_session(s, issued.token, now=T0 + timedelta(minutes=3)))
    everything = _every_value(site)
    assert issued.token not in everything
    assert credentials.token_digest(issued.token) in everything
    assert len(issued.token) >= 43  # 32 random bytes


def test_a_one_time_password_must_be_replaced_at_the_first_sign_in(site: Site) -> None:
    one_time = add_agent(site.db, site.settings, "omar", now=T0)
    needs = site.sign_in("omar", one_time)
    assert isinstance(needs, PasswordChangeRequired)
    assert (needs.code, needs.http_status) == ("password_change_required", 403)
    short = site.sign_in("omar", one_time, new_password="short")
    assert isinstance(short, PasswordChangeRequired) and "at least 10" in str(short)
    same = site.sign_in("omar", one_time, new_password="OMAR")
    assert isinstance(same, PasswordChangeRequired)
    named = site.sign_in("omar", one_time, new_password=" Omar ".ljust(12))
    assert isinstance(named, PasswordChangeRequired)
    assert site.sign_in("omar", one_time, new_password=one_time).__class__ is (
        PasswordChangeRequired
    )
    issued = site.session_for("omar", one_time, new_password="omar-chosen-password")
    assert issued.username == "omar"
    assert isinstance(site.sign_in("omar", one_time), WrongCredentials)
    site.session_for("omar", "omar-chosen-password")
    agent = site.agent("omar")
    assert (agent.password_must_change, agent.failed_signins) == (False, 0)


def test_a_one_time_password_expires(site: Site) -> None:
    one_time = add_agent(site.db, site.settings, "omar", now=T0)
    valid = timedelta(hours=site.settings.signin.one_time_password_hours)
    expired = site.sign_in("omar", one_time, now=T0 + valid, new_password="omar-password-1")
    assert isinstance(expired, WrongCredentials) and "expired" in str(expired)
    again = site.reset("omar", now=T0 + valid)
    site.session_for("omar", again, now=T0 + valid, new_password="omar-password-1")


def test_the_first_admin_is_bootstrapped_once(db: Database, settings: Settings) -> None:
    site = Site(db, settings)

    def bootstrap_as(username: str, os_user: str) -> Agent:
        return db.run(
            lambda s: signin.bootstrap_admin(
                s,
                settings,
                username=username,
                display_name=username,
                password="first-admin-password",
                os_user=os_user,
                now=T0,
            )
        )

    with pytest.raises(CasebookError, match="at least 10"):
        db.run(
            lambda s: signin.bootstrap_admin(
                s, settings, username="root", display_name="r", password="x", os_user="hl", now=T0
            )
        )
    bootstrap_as("root", "hotline")
    assert not site.agent("root").password_must_change
    site.session_for("root", "first-admin-password")
    with pytest.raises(BootstrapRefused) as refused:
        bootstrap_as("mallory", "hotline")
    assert (refused.value.code, refused.value.http_status) == ("bootstrap_refused", 403)
    entries = site.audit("agent.bootstrap")
    assert [(e.actor, e.object_id, e.allowed) for e in entries] == [
        ("bootstrap:hotline", "root", True),
        ("bootstrap:hotline", "mallory", False),
    ]
    with db.session() as s:
        assert s.exec(select(Agent.username)).all() == ["root"]


def test_a_site_whose_every_admin_is_locked_can_bootstrap_again(site: Site) -> None:
    rules = site.settings.signin
    earlier = site.session_for("admin", TEST_PASSWORD)
    for n in range(rules.lock_after_failures):
        site.sign_in("admin", "wrong-password", now=T0 + n * timedelta(minutes=1))
    assert site.agent("admin").locked_at is not None

    def bootstrap_as(username: str) -> Agent:
        return site.db.run(
            lambda s: signin.bootstrap_admin(
                s,
                site.settings,
                username=username,
                display_name=username,
                password="rescue-password",
                os_user="hotline",
                now=T0,
            )
        )

    assert bootstrap_as("admin").locked_at is None  # the locked admin, with a new password
    with pytest.raises(SessionInvalid):
        site.actor(earlier.token)
    site.session_for("admin", "rescue-password", now=T0 + timedelta(hours=1))
    with pytest.raises(BootstrapRefused):
        bootstrap_as("rescue")
    entries = site.audit("agent.bootstrap")
    assert [(e.object_id, e.allowed, e.detail.get("existing_agent")) for e in entries] == [
        ("admin", True, False),
        ("admin", True, True),
        ("rescue", False, None),
    ]


def test_only_admins_manage_agents_and_each_refusal_is_audited(site: Site) -> None:
    amal = site.actor(site.session_for("amal", AMAL_PASSWORD).token)
    attempts = {
        "agent.add": lambda s: agents.add_agent(
            s, site.settings, amal, "mallory", agents.AgentDetails("M", ("admin",))
        ),
        "agent.disable": lambda s: agents.disable_agent(s, amal, "admin", now=T0),
        "agent.enable": lambda s: agents.enable_agent(s, amal, "amal"),
        "agent.password_reset": lambda s: agents.reset_password(
            s, site.settings, amal, "admin", now=T0
        ),
    }
    for action, attempt in attempts.items():
        with pytest.raises(AccessDenied, match="amal may not"):
            site.db.run(attempt)
        denied = site.audit(action, allowed=False)
        assert [(e.actor, e.allowed) for e in denied] == [("amal", False)], action
    assert site.agent("admin").active
    with site.db.session() as s:
        assert s.exec(select(Agent).where(Agent.username == "mallory")).first() is None


def test_an_added_agent_gets_a_one_time_password_only_its_hash_stored(site: Site) -> None:
    admin = site.admin()
    added = site.db.run(
        lambda s: agents.add_agent(
            s, site.settings, admin, "omar", agents.AgentDetails("Omar", ("agent",)), now=T0
        )
    )
    assert added.agent.username == "omar"
    assert added.agent.password_must_change and added.agent.password_set_at == T0
    assert added.one_time_password not in _every_value(site)
    assert credentials.verify_password(site.agent("omar").password_hash, added.one_time_password)


def test_audit_entries_of_sign_in_never_hold_a_password(site: Site) -> None:
    one_time = add_agent(site.db, site.settings, "omar", now=T0)
    site.sign_in("omar", one_time)
    site.sign_in("omar", one_time, new_password="short")
    site.session_for("omar", one_time, new_password="omar-chosen-password")
    site.sign_in("amal", "amal-wrong-password")
    site.sign_in("nobody", "nobody-password")
    issued = site.session_for("amal", AMAL_PASSWORD)
    amal = site.actor(issued.token)
    site.db.run(
        lambda s: signin.change_password(
            s, site.settings.signin, amal, AMAL_PASSWORD, "amal-newer-password", now=T0
        )
    )
    with site.db.session() as s:
        entries = s.exec(select(AuditEvent)).all()
    actions = {e.action for e in entries}
    assert {"session.start", "session.refused", "agent.password_change"} <= actions
    written = "\n".join(repr(e.model_dump()) for e in entries)
    secrets = (one_time, "omar-chosen-password", "amal-wrong-password", "nobody-password")
    for secret in (*secrets, AMAL_PASSWORD, "amal-newer-password", TEST_PASSWORD, "short"):
        assert secret not in written


def test_changing_the_password_ends_the_other_sessions(site: Site) -> None:
    kept = site.session_for("amal", AMAL_PASSWORD)
    other = site.session_for("amal", AMAL_PASSWORD, address="10.0.0.9")
    amal = site.actor(kept.token)
    site.db.run(
        lambda s: signin.change_password(
            s,
            site.settings.signin,
            amal,
            AMAL_PASSWORD,
            "amal-newer-password",
            now=T0,
            keep_token=kept.token,
        )
    )
    assert site.actor(kept.token).username == "amal"
    with pytest.raises(SessionInvalid):
        site.actor(other.token)
    assert isinstance(site.sign_in("amal", AMAL_PASSWORD), WrongCredentials)
    site.session_for("amal", "amal-newer-password")


def test_a_new_password_given_at_sign_in_replaces_it_and_ends_the_other_sessions(
    site: Site,
) -> None:
    other = site.session_for("amal", AMAL_PASSWORD)
    issued = site.session_for("amal", AMAL_PASSWORD, new_password="amal-newer-password")
    with pytest.raises(SessionInvalid):
        site.actor(other.token)
    assert site.actor(issued.token).username == "amal"
    assert isinstance(site.sign_in("amal", AMAL_PASSWORD), WrongCredentials)
    site.session_for("amal", "amal-newer-password")


def test_a_wrong_current_password_is_refused_and_counted_like_a_sign_in(site: Site) -> None:
    issued = site.session_for("amal", AMAL_PASSWORD)
    amal = site.actor(issued.token)

    def change(current: str, new: str = "amal-newer-password") -> None:
        site.db.run(
            lambda s: signin.change_password(
                s, site.settings.signin, amal, current, new, now=T0, keep_token=issued.token
            )
        )

    for failures in (1, 2):
        with pytest.raises(WrongCredentials, match="current password"):
            change("a-guess-at-it")
        # Written although the refusal rolled its unit of work back.
        assert site.agent("amal").failed_signins == failures
    refused = site.audit("agent.password_change", allowed=False)
    assert [(e.actor, e.allowed, e.detail["failed_signins"]) for e in refused] == [
        ("amal", False, 1),
        ("amal", False, 2),
    ]
    with pytest.raises(CasebookError, match="at least 10"):
        change(AMAL_PASSWORD, "short")
    assert site.agent("amal").password_hash is not None
    change(AMAL_PASSWORD)
    assert site.agent("amal").failed_signins == 0
    # Without keep_token, every session ends, the request's own too.
    site.db.run(
        lambda s: signin.change_password(
            s, site.settings.signin, amal, "amal-newer-password", "amal-third-password", now=T0
        )
    )
    with pytest.raises(SessionInvalid):
        site.actor(issued.token)


def test_a_hash_made_with_older_parameters_is_renewed_at_sign_in(site: Site) -> None:
    older = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(AMAL_PASSWORD)
    with site.db.session() as s:
        s.exec(select(Agent).where(Agent.username == "amal")).one().password_hash = older
    site.session_for("amal", AMAL_PASSWORD)
    renewed = site.agent("amal").password_hash
    assert renewed is not None and renewed != older and not credentials.needs_rehash(renewed)
    site.session_for("amal", AMAL_PASSWORD)
    assert site.agent("amal").password_hash == renewed  # current: left alone


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_0004_keeps_the_agents_who_then_need_a_reset_to_sign_in(
    backend: str, settings: Settings, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        use_pg_schema(settings, request.getfixturevalue("pg_empty_schema"))
    old = Database(owner_settings(settings.database), migrate=False, create=True)
    with old.engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0003")
        connection.execute(
            text(
                "INSERT INTO agent (username, display_name, roles, languages, skills, "
                "shift_days, active, created_at) VALUES ('admin', 'Admin', '[\"admin\"]', "
                "'[]', '[]', '[]', :true, :at), ('sara', 'Sara', '[\"agent\"]', '[]', '[]', "
                "'[]', :true, :at)"
            ),
            {"true": True, "at": T0},
        )
        # A row pointing at an agent: rebuilding the agent table (SQLite's batch copy) fails.
        connection.execute(
            text(
                "INSERT INTO complaint_case (status, priority, escalation_level, "
                "unsatisfied_rounds, created_at, updated_at, assigned_agent_id) "
                "SELECT 'open', 'normal', 0, 0, :at, :at, id FROM agent WHERE username = 'sara'"
            ),
            {"at": T0},
        )
    old.dispose()
    upgrade_database(settings.database)  # `hotline db upgrade`: the owner migrates
    db = Database(settings.database)
    site = Site(db, settings)
    sara = site.agent("sara")
    assert (sara.display_name, sara.roles, sara.active) == ("Sara", ["agent"], True)
    assert (sara.password_hash, sara.password_must_change, sara.failed_signins) == (None, False, 0)
    assert isinstance(site.sign_in("sara", ""), WrongCredentials)
    assert isinstance(site.sign_in("sara", "anything-at-all"), WrongCredentials)

    # Nobody can sign in, so the site's service account may bootstrap: naming an existing
    # admin gives them the password; a name that is no admin's is refused.
    def bootstrap_as(username: str) -> Agent:
        return db.run(
            lambda s: signin.bootstrap_admin(
                s,
                settings,
                username=username,
                display_name=username,
                password="admin-password-1",
                os_user="hotline",
                now=T0,
            )
        )

    with pytest.raises(CasebookError, match="not an active admin"):
        bootstrap_as("sara")
    assert bootstrap_as("admin").display_name == "Admin"
    with pytest.raises(BootstrapRefused):
        bootstrap_as("root")
    one_time = site.reset("sara")
    site.session_for("sara", one_time, new_password="sara-password-1")
    # And back down and up again (by the owner), the agents kept.
    owner = Database(owner_settings(settings.database), migrate=False)
    with owner.engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0003")
    owner.dispose()
    upgrade_database(settings.database)
    sara = site.agent("sara")
    assert sara.password_hash is None
    with db.session() as s:
        assert s.exec(select(Case.assigned_agent_id)).one() == sara.id
    db.dispose()


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"lock_after_failures": 5}, "lock_after_failures must be greater than"),
        ({"slow_after_failures": 0}, "greater than or equal to 1"),
        ({"session_hours": 0}, "greater than 0"),
        ({"idle_minutes": -1}, "greater than 0"),
        ({"slow_base_seconds": 90}, "slow_cap_seconds must be at least slow_base_seconds"),
        ({"min_password_length": 0}, "greater than or equal to 1"),
    ],
)
def test_signin_settings_refuse_what_makes_no_sense(values: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        SigninSettings(**values)
