"""Signing in: passwords checked, guessing slowed and then locked out, sessions issued, looked up
and ended, and the site's first admin. The server calls these (its HTTP API); who someone is
comes from here, never from the environment.

Guessing is braked three ways. Per address: ``address_failures`` failed sign-ins (any user names)
within ``address_window_minutes`` and the address is refused until the oldest of them leaves the
window. Per account: after ``slow_after_failures`` failures in a row each further try must wait,
doubling up to ``slow_cap_seconds``; at ``lock_after_failures`` the account is locked until an
admin resets its password (casebook.agents.reset_password). A success resets the account's count.

What a refusal gives away: an unknown user name costs the same one argon2 verify as a known one
and gets the same answer as a wrong password. ``AccountDisabled`` is said only after the right
password (said before, it would tell anyone which user names exist); a wrong password for a
disabled account is a wrong password. Slowed and locked are said without checking the password
(checking it would let a guesser go on): they show that an account exists only to someone who
has already failed ``slow_after_failures`` times against it, which the address limit bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlmodel import Session, col, delete, select

from casebook import audit, credentials
from casebook.access import Actor
from casebook.agents import AgentDetails, build_agent, usable_admins
from casebook.clock import ensure_aware
from casebook.errors import CasebookError
from casebook.models import Agent, Role, SigninFailure, SigninSession
from casebook.settings import CasebookConfig, RolesSettings, SigninSettings

# A session's last_seen_at is written at most this often: a request is a read, not a write.
_TOUCH_EVERY = timedelta(minutes=1)
# What the records keep of a typed user name or an address (their columns' lengths).
_TYPED_NAME = 64
_ADDRESS = 128
_ACTOR = 64


class SigninRefused(CasebookError):
    """A refused sign-in or session. ``code``: a short machine word for clients; ``http_status``:
    the status the API answers with; ``retry_after``: seconds to wait, when waiting helps."""

    code: ClassVar[str] = "refused"
    http_status: ClassVar[int] = 401

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WrongCredentials(SigninRefused):
    code = "wrong_credentials"
    http_status = 401


class AccountLocked(SigninRefused):
    code = "locked"
    http_status = 423


class AccountDisabled(SigninRefused):
    code = "disabled"
    http_status = 403


class TooManyTries(SigninRefused):
    code = "slowed"
    http_status = 429


class PasswordChangeRequired(SigninRefused):
    code = "password_change_required"
    http_status = 403


class SessionInvalid(SigninRefused):
    code = "signin_required"
    http_status = 401


class BootstrapRefused(SigninRefused):
    code = "bootstrap_refused"
    http_status = 403


WRONG_CREDENTIALS = "اسم المستخدم أو كلمة المرور غير صحيحة (wrong user name or password)"
LOCKED = (
    "الحساب مقفل بعد محاولات خاطئة كثيرة: اطلب من المسؤول إعادة تعيين كلمة المرور "
    "(the account is locked after too many wrong passwords: ask an admin to reset the password)"
)
DISABLED = "الحساب معطّل: راجع المسؤول (this account is disabled: ask an admin)"
ONE_TIME_EXPIRED = (
    "انتهت صلاحية كلمة المرور المؤقتة: اطلب من المسؤول كلمة جديدة "
    "(the one-time password has expired: ask an admin to reset it)"
)
CHOOSE_NEW_PASSWORD = (
    "هذه كلمة مرور مؤقتة: اختر كلمة مرور جديدة لتسجيل الدخول "
    "(a one-time password: choose a new password to sign in)"
)
SESSION_ENDED = (
    "لا توجد جلسة صالحة: سجّل الدخول بالأمر hotline login "
    "(no valid session (expired, signed out or disabled): sign in with hotline login)"
)


def _wait_message(seconds: float, from_address: bool) -> str:
    wait = math.ceil(seconds)
    if from_address:
        return (
            f"محاولات فاشلة كثيرة من هذا العنوان: انتظر {wait} ثانية "
            f"(too many failed sign-ins from this address: wait {wait} s)"
        )
    return (
        f"محاولات خاطئة كثيرة: انتظر {wait} ثانية ثم حاول مجددًا "
        f"(too many wrong passwords: wait {wait} s and try again)"
    )


@dataclass(frozen=True)
class IssuedSession:
    token: str  # shown to the client once; only its SHA-256 is stored
    username: str
    display_name: str
    roles: list[str]
    expires_at: datetime


def sign_in(
    session: Session,
    settings: SigninSettings,
    username: str,
    password: str,
    *,
    address: str,
    now: datetime,
    new_password: str | None = None,
) -> IssuedSession | SigninRefused:
    """Check a user name and password and open a session.

    A refusal is RETURNED, not raised: the failure counters, the failed sign-in row and the
    audit entry are written in the caller's unit of work, which must commit them; the caller
    raises the refusal after the commit. Every outcome is audited (``session.start`` or
    ``session.refused``); a password never is.

    ``new_password`` replaces the password as the sign-in succeeds: required when the password
    is a one-time one (else ``PasswordChangeRequired``), allowed otherwise.
    """
    now = ensure_aware(now)
    typed = username[:_TYPED_NAME]
    address = address[:_ADDRESS]
    attempt = _Attempt(session, settings, typed, address, now)

    waited = _address_wait(session, settings, address, now)
    if waited is not None:
        return attempt.refuse(TooManyTries(_wait_message(waited, True), retry_after=waited))

    name = username.strip().lower()
    agent = session.exec(select(Agent).where(Agent.username == name).with_for_update()).first()
    if agent is None:
        credentials.verify_password(None, password)  # the same cost as a real account
        attempt.record_failure(None)
        return attempt.refuse(WrongCredentials(WRONG_CREDENTIALS), reason="no such agent")
    if agent.locked_at is not None:
        return attempt.refuse(AccountLocked(LOCKED), agent)
    waited = account_wait(settings, agent, now)
    if waited is not None:
        return attempt.refuse(TooManyTries(_wait_message(waited, False), retry_after=waited), agent)

    if not credentials.verify_password(agent.password_hash, password):
        reason = "wrong password" if agent.password_hash else "no password set"
        if attempt.record_failure(agent):
            return attempt.refuse(AccountLocked(LOCKED), agent, reason=reason)
        return attempt.refuse(WrongCredentials(WRONG_CREDENTIALS), agent, reason=reason)

    # The password is right: from here the answers may be specific.
    assert agent.password_hash is not None and agent.id is not None  # verified, loaded
    if not agent.active:
        return attempt.refuse(AccountDisabled(DISABLED), agent)
    if agent.password_must_change:
        valid_until = _one_time_valid_until(settings, agent)
        if valid_until is None or now >= valid_until:
            return attempt.refuse(
                WrongCredentials(ONE_TIME_EXPIRED), agent, reason="one-time password expired"
            )
        if new_password is None:
            return attempt.refuse(PasswordChangeRequired(CHOOSE_NEW_PASSWORD), agent)
    if new_password is not None:
        problem = _new_password_problem(settings, agent, password, new_password)
        if problem is not None:
            return attempt.refuse(PasswordChangeRequired(problem), agent, reason=problem)
        _set_password(session, agent, new_password, now)
        # As change_password: whoever held the old password is out (the new session is not
        # made yet).
        credentials.end_sessions(session, agent.id, "password_changed", now)
    elif credentials.needs_rehash(agent.password_hash):
        # The library's defaults grew stronger since this hash was made.
        agent.password_hash = credentials.hash_password(password)

    agent.failed_signins = 0
    agent.last_failed_signin_at = None
    token = credentials.new_token()
    row = SigninSession(
        token_sha256=credentials.token_digest(token),
        agent_id=agent.id,
        created_at=now,
        expires_at=now + timedelta(hours=settings.session_hours),
        idle_minutes=settings.idle_minutes,
        last_seen_at=now,
        address=address,
    )
    session.add(agent)
    session.add(row)
    session.flush()
    detail = {"address": address, "expires_at": row.expires_at.isoformat()}
    audit.record(session, agent.username, "session.start", "session", row.id, detail)
    return IssuedSession(token, agent.username, agent.display_name, agent.roles, row.expires_at)


class _Attempt:
    """One sign-in's records: its failure (counted and kept) and its audited refusal."""

    def __init__(
        self, session: Session, settings: SigninSettings, typed: str, address: str, now: datetime
    ) -> None:
        self.session = session
        self.settings = settings
        self.typed = typed
        self.address = address
        self.now = now

    def record_failure(self, agent: Agent | None) -> bool:
        """Keep the failure for the address window and count it against the account; True
        when this failure locked it."""
        self.session.add(SigninFailure(username=self.typed, address=self.address, at=self.now))
        # Rows of this address that left the window are no use any more.
        window_start = self.now - timedelta(minutes=self.settings.address_window_minutes)
        self.session.exec(
            delete(SigninFailure).where(
                col(SigninFailure.address) == self.address, col(SigninFailure.at) <= window_start
            )
        )
        if agent is None:
            return False
        return count_failure(self.session, self.settings, agent, self.now, self.actor)

    @property
    def actor(self) -> str:
        # Nobody is signed in: the entry names what was typed, marked as such.
        return ("signin:" + self.typed)[:_ACTOR]

    def refuse(
        self,
        refusal: SigninRefused,
        agent: Agent | None = None,
        *,
        reason: str | None = None,
    ) -> SigninRefused:
        detail: dict[str, Any] = {"code": refusal.code, "address": self.address}
        if reason is not None:
            detail["reason"] = reason
        if refusal.retry_after is not None:
            detail["retry_after"] = round(refusal.retry_after, 3)
        if agent is not None:
            detail["failed_signins"] = agent.failed_signins
        target = agent.username if agent is not None else self.typed
        audit.record(
            self.session, self.actor, "session.refused", "agent", target, detail, allowed=False
        )
        return refusal


def count_failure(
    session: Session, settings: SigninSettings, agent: Agent, now: datetime, actor: str
) -> bool:
    """One more wrong password for ``agent``; locks it (audited ``agent.locked``) when that
    reaches ``lock_after_failures``. True when this failure locked it."""
    agent.failed_signins += 1
    agent.last_failed_signin_at = now
    session.add(agent)
    if agent.locked_at is None and agent.failed_signins >= settings.lock_after_failures:
        agent.locked_at = now
        detail = {"failed_signins": agent.failed_signins}
        audit.record(session, actor, "agent.locked", "agent", agent.username, detail)
        return True
    return False


def account_wait(settings: SigninSettings, agent: Agent, now: datetime) -> float | None:
    """Seconds ``agent`` must still wait before the next try, or None."""
    past = agent.failed_signins - settings.slow_after_failures
    if past <= 0 or agent.last_failed_signin_at is None:
        return None
    delay = min(settings.slow_cap_seconds, settings.slow_base_seconds * 2 ** (past - 1))
    ready = ensure_aware(agent.last_failed_signin_at) + timedelta(seconds=delay)
    left = (ready - now).total_seconds()
    return left if left > 0 else None


def _address_wait(
    session: Session, settings: SigninSettings, address: str, now: datetime
) -> float | None:
    """Seconds until ``address`` may try again, or None when it is under the limit."""
    window = timedelta(minutes=settings.address_window_minutes)
    recent = session.exec(
        select(SigninFailure.at)
        .where(col(SigninFailure.address) == address, col(SigninFailure.at) > now - window)
        .order_by(col(SigninFailure.at))
    ).all()
    excess = len(recent) - settings.address_failures
    if excess < 0:
        return None
    # Under the limit again once the oldest ``excess + 1`` have left the window.
    return (ensure_aware(recent[excess]) + window - now).total_seconds()


def _one_time_valid_until(settings: SigninSettings, agent: Agent) -> datetime | None:
    if agent.password_set_at is None:
        return None
    hours = timedelta(hours=settings.one_time_password_hours)
    return ensure_aware(agent.password_set_at) + hours


def _new_password_problem(
    settings: SigninSettings, agent: Agent, current: str, new: str
) -> str | None:
    try:
        credentials.check_new_password(new, agent.username, settings.min_password_length)
    except CasebookError as problem:
        return str(problem)
    if new == current:
        return (
            "كلمة المرور الجديدة هي نفسها الحالية (the new password must differ from the "
            "current one)"
        )
    return None


def _set_password(session: Session, agent: Agent, password: str, now: datetime) -> None:
    agent.password_hash = credentials.hash_password(password)
    agent.password_must_change = False
    agent.password_set_at = now
    session.add(agent)
    audit.record(session, agent.username, "agent.password_change", "agent", agent.username)


def actor_for_token(session: Session, token: str, roles: RolesSettings, *, now: datetime) -> Actor:
    """The actor a session token stands for. Refuses (``SessionInvalid``) a token that is
    unknown, past its absolute end, idle too long or ended, and one whose agent is disabled or
    locked. Notes the use (``last_seen_at``) at most once a minute."""
    now = ensure_aware(now)
    row = _open_session(session, token, now)
    agent = session.get(Agent, row.agent_id)
    if agent is None or not agent.active or agent.locked_at is not None:
        raise SessionInvalid(SESSION_ENDED)
    if now - ensure_aware(row.last_seen_at) >= _TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
    return Actor.for_agent(agent, roles)


def session_expires_at(session: Session, token: str, *, now: datetime) -> datetime:
    """When the token's session ends at the latest (its absolute end; unused, it ends sooner)."""
    return ensure_aware(_open_session(session, token, ensure_aware(now)).expires_at)


def _open_session(session: Session, token: str, now: datetime) -> SigninSession:
    row = None
    if token:
        digest = credentials.token_digest(token)
        row = session.exec(
            select(SigninSession).where(SigninSession.token_sha256 == digest)
        ).first()
    if row is None or row.ended_at is not None:
        raise SessionInvalid(SESSION_ENDED)
    idle_until = ensure_aware(row.last_seen_at) + timedelta(minutes=row.idle_minutes)
    if now >= ensure_aware(row.expires_at) or now >= idle_until:
        raise SessionInvalid(SESSION_ENDED)
    return row


def end_session(session: Session, token: str, *, now: datetime) -> None:
    """Sign out: the token's session ends now (``SessionInvalid`` if it is not open)."""
    now = ensure_aware(now)
    row = _open_session(session, token, now)
    row.ended_at = now
    row.ended_why = "logout"
    session.add(row)
    agent = session.get(Agent, row.agent_id)
    who = agent.username if agent is not None else f"agent:{row.agent_id}"
    audit.record(session, who, "session.end", "session", row.id, {"why": "logout"})


def change_password(
    session: Session,
    settings: SigninSettings,
    actor: Actor,
    current: str,
    new: str,
    *,
    now: datetime,
    keep_token: str | None = None,
) -> None:
    """A signed-in agent replaces their password; ``current`` must be right.

    Every other session of theirs ends (whoever else held the old password is out); the one of
    ``keep_token`` (the request's own) stays, and without it all end. A wrong ``current`` is
    refused (``WrongCredentials``) and counts like a failed sign-in (slowed, then locked), so a
    borrowed session cannot be used to guess the password: that count and its audit entry are
    written although the refusal rolls the unit of work back (``survives_rollback``).
    """
    now = ensure_aware(now)
    if actor.agent_id is None:
        raise CasebookError(f"{actor.username} is not a signed-in agent")
    agent = session.exec(select(Agent).where(Agent.id == actor.agent_id).with_for_update()).one()
    waited = account_wait(settings, agent, now)
    if waited is not None:
        raise TooManyTries(_wait_message(waited, False), retry_after=waited)
    if not credentials.verify_password(agent.password_hash, current):
        refusal = WrongCredentials("كلمة المرور الحالية غير صحيحة (the current password is wrong)")
        refusal.survives_rollback = _FailedChange(settings, agent.id, actor.username, now)
        raise refusal
    problem = _new_password_problem(settings, agent, current, new)
    if problem is not None:
        raise CasebookError(problem)
    _set_password(session, agent, new, now)
    agent.failed_signins = 0
    agent.last_failed_signin_at = None
    keep = credentials.token_digest(keep_token) if keep_token else None
    assert agent.id is not None  # a loaded row
    ended = credentials.end_sessions(session, agent.id, "password_changed", now, keep_digest=keep)
    audit.record(
        session, actor, "session.end_others", "agent", agent.username, {"sessions_ended": ended}
    )


@dataclass(frozen=True)
class _FailedChange:
    """A wrong current password's count and record, written after the refusal's rollback."""

    settings: SigninSettings
    agent_id: int | None
    username: str
    now: datetime

    def __call__(self, session: Session) -> None:
        agent = session.exec(
            select(Agent).where(Agent.id == self.agent_id).with_for_update()
        ).first()
        if agent is None:
            return
        count_failure(session, self.settings, agent, self.now, self.username)
        detail = {"code": WrongCredentials.code, "failed_signins": agent.failed_signins}
        audit.record(
            session,
            self.username,
            "agent.password_change",
            "agent",
            agent.username,
            detail,
            allowed=False,
        )


def bootstrap_admin(
    session: Session,
    settings: CasebookConfig,
    *,
    username: str,
    display_name: str,
    password: str,
    os_user: str,
    now: datetime,
    roles: tuple[str, ...] = (Role.ADMIN.value,),
) -> Agent:
    """The site's first admin, with the password given (not a one-time one). Audited as
    ``bootstrap:<os_user>``; the caller lets only the server's own OS account (by uid) get here.

    Refused (``BootstrapRefused``, audited) while an admin can sign in (active, unlocked, with
    a password): that admin adds everyone else. Otherwise it is the way back in, so it also
    serves a site that has admins nobody can sign in as: ``username`` naming an existing admin
    gives that admin this password and unlocks them (a site upgraded from before sign-in, whose
    agents have no passwords; a sole admin locked out). ``roles`` and ``display_name`` apply to
    a new agent only."""
    now = ensure_aware(now)
    actor = f"bootstrap:{os_user}"[:_ACTOR]
    if Role.ADMIN.value not in roles:
        raise CasebookError("the bootstrap agent must have the admin role")
    admins = usable_admins(session)
    if admins:
        names = ", ".join(admin.username for admin in admins)
        refusal = BootstrapRefused(
            f"للموقع مسؤول بالفعل ({names}): يضيف هو الموظفين "
            f"(the site already has an admin ({names}): they add agents with hotline agents add)"
        )
        why = {"reason": str(refusal), "admins": [admin.username for admin in admins]}
        refusal.survives_rollback = lambda s: audit.record(
            s, actor, "agent.bootstrap", "agent", username, why, allowed=False
        )
        raise refusal
    credentials.check_new_password(password, username, settings.signin.min_password_length)
    agent = session.exec(select(Agent).where(Agent.username == username).with_for_update()).first()
    if agent is None:
        agent = build_agent(session, settings, username, AgentDetails(display_name, tuple(roles)))
    elif Role.ADMIN.value not in agent.roles or not agent.active:
        raise CasebookError(
            f"agent {username} exists and is not an active admin: bootstrap a new user name"
        )
    existing = agent.id is not None
    agent.password_hash = credentials.hash_password(password)
    agent.password_must_change = False
    agent.password_set_at = now
    agent.failed_signins = 0
    agent.last_failed_signin_at = None
    agent.locked_at = None
    session.add(agent)
    session.flush()
    if existing:
        assert agent.id is not None  # a loaded row
        credentials.end_sessions(session, agent.id, "bootstrap", now)
    detail: dict[str, Any] = {"roles": agent.roles, "existing_agent": existing}
    audit.record(session, actor, "agent.bootstrap", "agent", username, detail)
    return agent
