"""Agents and who is acting: an OS user name maps to an Agent row and its roles."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import time

from sqlalchemy import func
from sqlmodel import Session, select

from casebook import audit
from casebook.access import Actor
from casebook.errors import CasebookError, UnknownUser
from casebook.models import Agent, Role
from casebook.settings import WEEKDAYS, CasebookConfig, RolesSettings

_USERNAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,63}$")


def resolve_actor(session: Session, username: str, roles_table: RolesSettings) -> Actor:
    agent = session.exec(select(Agent).where(Agent.username == username)).first()
    if agent is None or not agent.active:
        state = "is not active" if agent is not None else "is not a registered agent"
        raise UnknownUser(
            f"{username} {state}; an admin can add them with: hotline agents add {username} ..."
        )
    return Actor.for_roles(
        agent.username,
        frozenset(agent.roles),
        roles_table,
        agent_id=agent.id,
        department=agent.department,
    )


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


def add_agent(
    session: Session,
    settings: CasebookConfig,
    acting_username: str,
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
    """Add an agent. Only an admin may, except for the very first agent (who must be an admin):
    that is how a new site bootstraps."""
    role_names = _clean_list(roles, "role", [role.value for role in Role])
    if not role_names:
        raise CasebookError("an agent needs at least one role")
    existing = session.exec(select(func.count()).select_from(Agent)).one()
    if existing == 0:
        if Role.ADMIN.value not in role_names:
            raise CasebookError("the first agent of a site must have the admin role")
        actor_name = acting_username
    else:
        actor = resolve_actor(session, acting_username, settings.roles)
        if not actor.can("manage_agents"):
            raise audit.denial(
                actor, "agent.add", "agent", username, f"{actor.username} may not add agents"
            )
        actor_name = actor.username
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
    agent = Agent(
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
    session.add(agent)
    session.flush()
    audit.record(session, actor_name, "agent.add", "agent", username, {"roles": role_names})
    return agent


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
