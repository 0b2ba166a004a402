"""Who is acting, and what their roles allow. The role -> permission table is in config.yaml
(``roles``); this module is the only reader of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, false, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import col

from casebook.errors import AccessDenied
from casebook.models import Agent, Case
from casebook.settings import RolesSettings

Permission = Literal[
    "see_all_cases",
    "close_without_satisfaction",
    "escalate",
    "supervise_cases",
    "manage_agents",
    "view_reports",
    "view_audit",
    "play_recordings",
    "review_recordings",
    "manage_recordings",
]

# Processes (IVR, AMI listener, worker, scheduler) act under these names in the audit log.
SYSTEM_PREFIX = "system:"


@dataclass(frozen=True)
class Actor:
    username: str
    roles: frozenset[str]
    permissions: frozenset[str]
    agent_id: int | None = None
    department: str | None = None

    @classmethod
    def for_roles(
        cls,
        username: str,
        roles: frozenset[str],
        table: RolesSettings,
        *,
        agent_id: int | None = None,
        department: str | None = None,
    ) -> Actor:
        allowed = frozenset(
            name for name, granted in table.model_dump().items() if roles & set(granted)
        )
        return cls(username, roles, allowed, agent_id, department)

    @classmethod
    def for_agent(cls, agent: Agent, table: RolesSettings) -> Actor:
        """The one place an agent's row becomes an Actor (a session's, or resolve_actor's)."""
        return cls.for_roles(
            agent.username,
            frozenset(agent.roles),
            table,
            agent_id=agent.id,
            department=agent.department,
        )

    @classmethod
    def system(cls, process: str) -> Actor:
        """A hotline process; it registers complaints and calls but reads no case for people."""
        return cls(SYSTEM_PREFIX + process, frozenset({"system"}), frozenset())

    @property
    def is_system(self) -> bool:
        return self.username.startswith(SYSTEM_PREFIX)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission, what: str) -> None:
        if not self.can(permission):
            roles = ", ".join(sorted(self.roles)) or "no role"
            raise AccessDenied(f"{self.username} ({roles}) may not {what}")

    def may_see(self, case: Case) -> bool:
        """Only the staff concerned: the assigned agent, the case's department, or a role that
        sees all cases (and the hotline processes that create them)."""
        if self.is_system or self.can("see_all_cases"):
            return True
        if self.agent_id is not None and case.assigned_agent_id == self.agent_id:
            return True
        return self.department is not None and case.department == self.department

    def may_play(self, case: Case | None) -> bool:
        """Who may hear a recording (and see it listed): a role that plays recordings, or the
        agent the recording's case is assigned to. The one rule (recordings.listening plays
        by it, recordings.catalogue and the case's story list by it)."""
        if self.can("play_recordings"):
            return True
        return (
            case is not None
            and self.agent_id is not None
            and case.assigned_agent_id == self.agent_id
        )

    def cases_seen(self) -> ColumnElement[bool] | None:
        """``may_see`` as a query condition, for listings and search: None when every case is
        seen (no condition), a condition that is never true when none is."""
        if self.is_system or self.can("see_all_cases"):
            return None
        mine, theirs = [], []
        if self.agent_id is not None:
            mine = [unindexed(Case.assigned_agent_id) == self.agent_id]
        if self.department is not None:
            theirs = [unindexed(Case.department) == self.department]
        if not mine and not theirs:
            return false()
        return or_(*mine, *theirs)


class unindexed(FunctionElement[Any]):  # noqa: N801 (used as a function, like SQL's)
    """A column SQLite's planner must not look up by index in a listing's access rule: SQLite,
    which has no statistics unless ANALYZE is run, took "agent OR department" through both
    indexes and sorted the department's every case to show the newest 50 (0.14-0.4 s on
    1,000,000 cases), where reading the cases newest first and checking each takes 0.1 ms.
    ``+column`` (SQLite's documented way) keeps the index out; PostgreSQL chooses with its
    statistics and gets the column as it is."""

    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(col(column))


@compiles(unindexed)
def _column(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _column_unindexed(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)
