"""Agents: adding them (with a one-time password), disabling, enabling, resetting passwords,
and the actor an agent's row gives. Signing in is casebook.signin's.

Concurrency (casebook.concurrency): every change reads the agent ``FOR UPDATE`` before deciding
(SQLite's BEGIN IMMEDIATE locks the whole database anyway), so of two admins changing one agent
at once the second waits and decides on what the first wrote; disabling also locks every active
agent first, so two admins cannot each disable the other and leave the site without one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time

from sqlmodel import Session, col, select

from casebook import audit, credentials
from casebook.access import Actor
from casebook.clock import ensure_aware, utcnow
from casebook.concurrency import CHANGES, last_change
from casebook.errors import CasebookError, NotFound, RuleViolation, UnknownUser
from casebook.models import Agent, Role
from casebook.settings import WEEKDAYS, CasebookConfig, RolesSettings

_USERNAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,63}$")


def resolve_actor(session: Session, username: str, roles_table: RolesSettings) -> Actor:
    """The actor of an active agent by user name (a session's agent; system processes acting
    for someone). Who is signed in is casebook.signin's: this trusts the name it is given."""
    agent = session.exec(select(Agent).where(Agent.username == username)).first()
    if agent is None or not agent.active:
        state = "is not active" if agent is not None else "is not a registered agent"
        raise UnknownUser(
            f"{username} {state}; an admin can add them with: hotline agents add {username} ..."
        )
    return Actor.for_agent(agent, roles_table)


def _clean_list(
    values: Iterable[str], what: str, allowed: Iterable[str] | None = None
) -> list[str]:
    cleaned = sorted({value.strip().lower() for value in values if value.strip()})
    if allowed is not None:
        unknown = set(cleaned) - set(allowed)
        if unknown:
            options = ", ".join(allowed)
            raise CasebookError(
                f"unknown {what}: {', '.join(sorted(unknown))} (choose from {options})"
            )
    return cleaned


@dataclass(frozen=True)
class NewAgent:
    agent: Agent
    # Shown once to the admin, who hands it over; only its hash is stored. The agent must
    # replace it at the first sign-in (casebook.signin), within signin.one_time_password_hours.
    one_time_password: str


def build_agent(
    session: Session,
    settings: CasebookConfig,
    *,
    username: str,
    display_name: str,
    roles: Iterable[str],
    department: str | None = None,
    languages: Iterable[str] = ("ar",),
    skills: Iterable[str] = (),
    extension: str | None = None,
    shift_days: Iterable[str] = (),
    shift_start: time | None = None,
    shift_end: time | None = None,
    capacity: int | None = None,
) -> Agent:
    """A checked, unsaved agent without a password. Who may add one is the caller's rule:
    ``add_agent`` (an admin) and ``casebook.signin.bootstrap_admin`` (the site's first)."""
    role_names = _clean_list(roles, "role", [role.value for role in Role])
    if not role_names:
        raise CasebookError("an agent needs at least one role")
    if not _USERNAME.match(username):
        raise CasebookError(f"{username!r} is not a valid user name (lower-case login name)")
    if department is not None and department not in settings.cases.departments:
        options = ", ".join(settings.cases.departments)
        raise CasebookError(f"unknown department {department!r} (choose from {options})")
    if session.exec(select(Agent).where(Agent.username == username)).first() is not None:
        raise CasebookError(f"agent {username} already exists")
    if (shift_start is None) != (shift_end is None):
        raise CasebookError("give both the shift start and end, or neither")
    if shift_start is not None and shift_end is not None and shift_start >= shift_end:
        raise CasebookError("the shift must start before it ends")
    if capacity is not None and capacity < 1:
        raise CasebookError("capacity must be at least one callback")
    return Agent(
        username=username,
        display_name=display_name.strip() or username,
        roles=role_names,
        department=department,
        languages=_clean_list(languages, "language"),
        skills=_clean_list(skills, "skill"),
        extension=extension,
        shift_days=_clean_list(shift_days, "shift day", WEEKDAYS),
        shift_start=shift_start,
        shift_end=shift_end,
        capacity=capacity,
    )


def add_agent(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    roles: Iterable[str],
    department: str | None = None,
    languages: Iterable[str] = ("ar",),
    skills: Iterable[str] = (),
    extension: str | None = None,
    shift_days: Iterable[str] = (),
    shift_start: time | None = None,
    shift_end: time | None = None,
    capacity: int | None = None,
    now: datetime | None = None,
) -> NewAgent:
    """Add an agent with a one-time password (admins: ``manage_agents``). A site's first
    admin is made by ``casebook.signin.bootstrap_admin`` instead."""
    _require_manager(actor, "agent.add", username, "add agents")
    agent = build_agent(
        session,
        settings,
        username=username,
        display_name=display_name,
        roles=roles,
        department=department,
        languages=languages,
        skills=skills,
        extension=extension,
        shift_days=shift_days,
        shift_start=shift_start,
        shift_end=shift_end,
        capacity=capacity,
    )
    one_time_password = _give_one_time_password(agent, ensure_aware(now or utcnow()))
    session.add(agent)
    session.flush()
    audit.record(session, actor, "agent.add", "agent", username, {"roles": agent.roles})
    return NewAgent(agent, one_time_password)


def _require_manager(actor: Actor, action: str, username: str, what: str) -> None:
    if not actor.can("manage_agents"):
        raise audit.denial(actor, action, "agent", username, f"{actor.username} may not {what}")


def _give_one_time_password(agent: Agent, now: datetime) -> str:
    password = credentials.new_one_time_password()
    agent.password_hash = credentials.hash_password(password)
    agent.password_must_change = True
    agent.password_set_at = now
    return password


def _managed_agent(session: Session, actor: Actor, action: str, username: str, what: str) -> Agent:
    """The agent ``actor`` manages (``manage_agents``, else an audited denial), locked for
    the change."""
    _require_manager(actor, action, username, what)
    agent = session.exec(select(Agent).where(Agent.username == username).with_for_update()).first()
    if agent is None:
        raise NotFound(f"no agent {username}")
    return agent


def _is_usable_admin(agent: Agent) -> bool:
    return (
        agent.active
        and agent.locked_at is None
        and agent.password_hash is not None
        and Role.ADMIN.value in agent.roles
    )


def usable_admins(session: Session) -> list[Agent]:
    """The admins who can still sign in and manage the site: active, unlocked, with a
    password. None left, and the site's service account may bootstrap one (casebook.signin)."""
    active = session.exec(select(Agent).where(Agent.active).order_by(Agent.username))
    return [agent for agent in active if _is_usable_admin(agent)]


def _by_whom(session: Session, username: str) -> str:
    """Who made the agent's last change and when (UTC), for a refusal: " (disabled by x at ...)"."""
    change = last_change(session, "agent", username)
    if change is None:
        return ""
    return f" ({CHANGES[change.action]} by {change.actor} at {change.at:%Y-%m-%d %H:%M} UTC)"


def disable_agent(session: Session, actor: Actor, username: str, *, now: datetime) -> Agent:
    """Disable an agent: they can no longer sign in, and every session of theirs ends now."""
    _require_manager(actor, "agent.disable", username, "disable agents")
    # Every active agent, in one order, before the one disabled: the last-admin rule below reads
    # them all, and two admins disabling each other must not both find the other still there.
    everyone = select(Agent.id).where(col(Agent.active)).order_by(col(Agent.id))
    session.exec(everyone.with_for_update()).all()
    agent = _managed_agent(session, actor, "agent.disable", username, "disable agents")
    if not agent.active:
        raise CasebookError(f"agent {username} is already disabled{_by_whom(session, username)}")
    if _is_usable_admin(agent) and [a.id for a in usable_admins(session)] == [agent.id]:
        raise RuleViolation(
            f"{username} is the site's last active admin: add or enable another admin first"
        )
    agent.active = False
    assert agent.id is not None  # a loaded row
    ended = credentials.end_sessions(session, agent.id, "disabled", ensure_aware(now))
    session.add(agent)
    audit.record(session, actor, "agent.disable", "agent", username, {"sessions_ended": ended})
    return agent


def enable_agent(session: Session, actor: Actor, username: str) -> Agent:
    """Let a disabled agent sign in again (a locked account stays locked: that is a reset)."""
    agent = _managed_agent(session, actor, "agent.enable", username, "enable agents")
    if agent.active:
        raise CasebookError(f"agent {username} is already active{_by_whom(session, username)}")
    agent.active = True
    session.add(agent)
    audit.record(session, actor, "agent.enable", "agent", username)
    return agent


def reset_password(
    session: Session, settings: CasebookConfig, actor: Actor, username: str, *, now: datetime
) -> str:
    """A new one-time password for ``username``: unlocks the account, ends their sessions
    (whoever held the old password is out) and returns the password to hand over. How long it
    stays valid is ``settings.signin.one_time_password_hours``, checked at sign-in."""
    agent = _managed_agent(session, actor, "agent.password_reset", username, "reset passwords")
    now = ensure_aware(now)
    was_locked = agent.locked_at is not None
    password = _give_one_time_password(agent, now)
    agent.failed_signins = 0
    agent.last_failed_signin_at = None
    agent.locked_at = None
    assert agent.id is not None  # a loaded row
    ended = credentials.end_sessions(session, agent.id, "password_reset", now)
    session.add(agent)
    detail = {
        "unlocked": was_locked,
        "sessions_ended": ended,
        "valid_hours": settings.signin.one_time_password_hours,
    }
    audit.record(session, actor, "agent.password_reset", "agent", username, detail)
    return password


def list_agents(session: Session, actor: Actor) -> list[Agent]:
    agents = list(session.exec(select(Agent).order_by(Agent.username)))
    audit.record(session, actor, "agent.list", "agent", None, {"rows": len(agents)})
    return agents


def queue_extensions(session: Session) -> list[str]:
    """The extensions of active agents who have one: the agent queue's members."""
    rows = session.exec(
        select(Agent.extension).where(Agent.active, Agent.extension.is_not(None))  # type: ignore[union-attr]
    )
    return sorted({extension for extension in rows if extension})


def usernames(session: Session, agent_ids: Iterable[int | None]) -> dict[int, str]:
    """The user name of each of these agents, by id: what people are shown instead of ids."""
    wanted = sorted({agent_id for agent_id in agent_ids if agent_id is not None})
    if not wanted:
        return {}
    rows = session.exec(select(Agent.id, Agent.username).where(col(Agent.id).in_(wanted)))
    return {agent_id: username for agent_id, username in rows if agent_id is not None}


def agent_named(session: Session, actor: Actor, username: str) -> Agent:
    """One agent's row (after a reset, for who-am-I): one's own, or anyone's for those who
    manage agents."""
    if username != actor.username:
        _require_manager(actor, "agent.read", username, "read other agents")
    agent = session.exec(select(Agent).where(Agent.username == username)).first()
    if agent is None:
        raise NotFound(f"no agent {username}")
    return agent
