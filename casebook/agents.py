"""Agents: adding them (with a one-time password), disabling, enabling, resetting passwords,
and the actor an agent's row gives. Signing in is casebook.signin's.

Concurrency (casebook.concurrency): every change reads the agent ``FOR UPDATE`` before deciding
(SQLite's BEGIN IMMEDIATE locks the whole database anyway), so of two admins changing one agent
at once the second waits and decides on what the first wrote; disabling also locks every active
agent first, so two admins cannot each disable the other and leave the site without one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, time
from typing import Any, Protocol

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


class DescribedAgent(Protocol):
    """What describes an agent with the agent's own field names (an API request body)."""

    @property
    def display_name(self) -> str: ...
    @property
    def roles(self) -> Sequence[str]: ...
    @property
    def department(self) -> str | None: ...
    @property
    def languages(self) -> Sequence[str]: ...
    @property
    def skills(self) -> Sequence[str]: ...
    @property
    def extension(self) -> str | None: ...
    @property
    def shift_days(self) -> Sequence[str]: ...
    @property
    def shift_start(self) -> time | None: ...
    @property
    def shift_end(self) -> time | None: ...
    @property
    def capacity(self) -> int | None: ...


@dataclass(frozen=True)
class AgentDetails:
    """What an admin says about an agent, when adding one and when editing one: checked in one
    place (``checked``), so an edit can never store what an add would refuse."""

    display_name: str
    roles: tuple[str, ...]
    department: str | None = None
    languages: tuple[str, ...] = ("ar",)
    skills: tuple[str, ...] = ()
    extension: str | None = None
    # Empty days and no times: the site's business hours apply.
    shift_days: tuple[str, ...] = ()
    shift_start: time | None = None
    shift_end: time | None = None
    # Open callbacks at once; None: the site's callbacks.agent_capacity.
    capacity: int | None = None

    @classmethod
    def of(cls, source: Agent | DescribedAgent) -> AgentDetails:
        """The details as a stored agent, or a request describing one, holds them."""
        return cls(
            display_name=source.display_name,
            roles=tuple(source.roles),
            department=source.department,
            languages=tuple(source.languages),
            skills=tuple(source.skills),
            extension=source.extension,
            shift_days=tuple(source.shift_days),
            shift_start=source.shift_start,
            shift_end=source.shift_end,
            capacity=source.capacity,
        )

    def checked(self, settings: CasebookConfig, username: str) -> AgentDetails:
        """These details cleaned (lists sorted, lower-case, without repeats; blanks as none),
        or ``CasebookError`` naming the first thing wrong."""
        role_names = _clean_list(self.roles, "role", [role.value for role in Role])
        if not role_names:
            raise CasebookError("an agent needs at least one role")
        if self.department is not None and self.department not in settings.cases.departments:
            options = ", ".join(settings.cases.departments)
            raise CasebookError(f"unknown department {self.department!r} (choose from {options})")
        if (self.shift_start is None) != (self.shift_end is None):
            raise CasebookError("give both the shift start and end, or neither")
        start, end = self.shift_start, self.shift_end
        if start is not None and end is not None and start >= end:
            raise CasebookError("the shift must start before it ends")
        if self.capacity is not None and self.capacity < 1:
            raise CasebookError("capacity must be at least one callback")
        extension = (self.extension or "").strip()
        return replace(
            self,
            display_name=self.display_name.strip() or username,
            roles=tuple(role_names),
            languages=tuple(_clean_list(self.languages, "language")),
            skills=tuple(_clean_list(self.skills, "skill")),
            extension=extension or None,
            shift_days=tuple(_clean_list(self.shift_days, "shift day", WEEKDAYS)),
        )

    def write_to(self, agent: Agent) -> dict[str, list[Any]]:
        """Set ``agent``'s fields to these (checked) details; what changed, {field: [was, is]}."""
        changed: dict[str, list[Any]] = {}
        for name in _DETAIL_FIELDS:
            value = getattr(self, name)
            stored = list(value) if isinstance(value, tuple) else value
            was = getattr(agent, name)
            if was != stored:
                changed[name] = [_audited(was), _audited(stored)]
                setattr(agent, name, stored)
        return changed


_DETAIL_FIELDS = tuple(field.name for field in fields(AgentDetails))


def _audited(value: Any) -> Any:
    """A detail as the audit log's JSON holds it."""
    return value.isoformat(timespec="minutes") if isinstance(value, time) else value


@dataclass(frozen=True)
class NewAgent:
    agent: Agent
    # Shown once to the admin, who hands it over; only its hash is stored. The agent must
    # replace it at the first sign-in (casebook.signin), within signin.one_time_password_hours.
    one_time_password: str


def build_agent(
    session: Session, settings: CasebookConfig, username: str, details: AgentDetails
) -> Agent:
    """A checked, unsaved agent without a password. Who may add one is the caller's rule:
    ``add_agent`` (an admin) and ``casebook.signin.bootstrap_admin`` (the site's first)."""
    if not _USERNAME.match(username):
        raise CasebookError(f"{username!r} is not a valid user name (lower-case login name)")
    checked = details.checked(settings, username)
    if session.exec(select(Agent).where(Agent.username == username)).first() is not None:
        raise CasebookError(f"agent {username} already exists")
    agent = Agent(username=username, display_name=checked.display_name)
    checked.write_to(agent)
    return agent


def add_agent(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    username: str,
    details: AgentDetails,
    *,
    now: datetime | None = None,
) -> NewAgent:
    """Add an agent with a one-time password (admins: ``manage_agents``). A site's first
    admin is made by ``casebook.signin.bootstrap_admin`` instead."""
    _require_manager(actor, "agent.add", username, "add agents")
    agent = build_agent(session, settings, username, details)
    one_time_password = _give_one_time_password(agent, ensure_aware(now or utcnow()))
    session.add(agent)
    session.flush()
    audit.record(session, actor, "agent.add", "agent", username, {"roles": agent.roles})
    return NewAgent(agent, one_time_password)


@dataclass(frozen=True)
class EditedAgent:
    agent: Agent
    # {field: [was, is]}; empty when the agent already had every detail given.
    changed: dict[str, list[Any]]


def edit_agent(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    username: str,
    changes: dict[str, Any],
) -> EditedAgent:
    """Change an agent's details (admins: ``manage_agents``): ``changes`` names only the fields
    to change (``AgentDetails``'s names; None clears one), the rest stay as they are.

    No version to compare: an edit sets the values the admin typed, decided on nothing they
    were shown, so it does not depend on what changed meanwhile; the row is locked for the
    change (two admins' edits apply one after the other, each field the last one typed) and
    the audit entry keeps every field's old and new value, so nothing is lost unseen."""
    _require_manager(actor, "agent.edit", username, "edit agents")
    unknown = set(changes) - set(_DETAIL_FIELDS)
    if unknown:
        raise CasebookError(f"agents have no {', '.join(sorted(unknown))}")
    if not changes:
        raise CasebookError("nothing to change: name at least one detail")
    if "roles" in changes:
        _lock_active_agents(session)
    agent = _managed_agent(session, actor, "agent.edit", username, "edit agents")
    details = replace(AgentDetails.of(agent), **changes).checked(settings, username)
    if Role.ADMIN.value not in details.roles:
        _keep_an_admin(session, agent)
    changed = details.write_to(agent)
    if changed:
        session.add(agent)
        audit.record(session, actor, "agent.edit", "agent", username, {"changed": changed})
    return EditedAgent(agent, changed)


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


def _lock_active_agents(session: Session) -> None:
    """Every active agent, in one order, before the one changed: the last-admin rule reads them
    all, and two admins disabling each other (or taking each other's admin role) must not both
    find the other still there."""
    everyone = select(Agent.id).where(col(Agent.active)).order_by(col(Agent.id))
    session.exec(everyone.with_for_update()).all()


def _keep_an_admin(session: Session, agent: Agent) -> None:
    """``agent`` may stop being a usable admin only if another remains."""
    if _is_usable_admin(agent) and [a.id for a in usable_admins(session)] == [agent.id]:
        raise RuleViolation(
            f"{agent.username} is the site's last active admin: add or enable another admin first"
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


@dataclass(frozen=True)
class DisabledAgent:
    agent: Agent
    sessions_ended: int


def disable_agent(session: Session, actor: Actor, username: str, *, now: datetime) -> DisabledAgent:
    """Disable an agent: they can no longer sign in, and every session of theirs ends now."""
    _require_manager(actor, "agent.disable", username, "disable agents")
    _lock_active_agents(session)
    agent = _managed_agent(session, actor, "agent.disable", username, "disable agents")
    if not agent.active:
        raise CasebookError(f"agent {username} is already disabled{_by_whom(session, username)}")
    _keep_an_admin(session, agent)
    agent.active = False
    assert agent.id is not None  # a loaded row
    ended = credentials.end_sessions(session, agent.id, "disabled", ensure_aware(now))
    session.add(agent)
    audit.record(session, actor, "agent.disable", "agent", username, {"sessions_ended": ended})
    return DisabledAgent(agent, ended)


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
