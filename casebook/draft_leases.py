"""Who has a draft open, and until when: the lease that opening a draft takes (casebook.drafts).

A lease is two columns of the case (the agent, the moment it runs out). Past that moment the
draft is free again, whatever the columns still say: nothing has to run to expire a lease, so an
agent who crashed, lost the network or walked away holds nothing for long. Every change of a
draft (open, renew, release, confirm, reject) refuses a draft another agent holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from casebook.access import Actor
from casebook.clock import ensure_aware
from casebook.errors import Taken
from casebook.models import Agent, Case


@dataclass(frozen=True)
class Lease:
    agent_id: int
    holder: str  # the agent's user name, as people call them
    until: datetime
    live: bool  # False: it ran out, the draft is free


def lease_of(session: Session, case: Case, now: datetime) -> Lease | None:
    """The case's lease as the columns have it (run out or not); None: nobody took it."""
    if case.draft_lease_agent_id is None or case.draft_lease_until is None:
        return None
    with session.no_autoflush:  # a read: a change being made to the case is not written yet
        agent = session.get(Agent, case.draft_lease_agent_id)
    holder = agent.username if agent is not None else f"agent {case.draft_lease_agent_id}"
    until = ensure_aware(case.draft_lease_until)
    return Lease(case.draft_lease_agent_id, holder, until, until > now)


def held_by_another(session: Session, actor: Actor, case: Case, now: datetime) -> Lease | None:
    """The live lease of someone other than ``actor``, if there is one."""
    lease = lease_of(session, case, now)
    if lease is None or not lease.live or lease.agent_id == actor.agent_id:
        return None
    return lease


def refuse_if_taken(session: Session, actor: Actor, case: Case, now: datetime) -> None:
    """``Taken`` (naming who and until when) while another agent holds the draft."""
    lease = held_by_another(session, actor, case, now)
    if lease is not None:
        raise Taken(str(case.reference), lease.holder, lease.until)


def has_open(actor: Actor, case: Case, now: datetime) -> bool:
    """The actor holds the draft's live lease (they are reviewing it)."""
    return (
        actor.agent_id is not None
        and case.draft_lease_agent_id == actor.agent_id
        and case.draft_lease_until is not None
        and ensure_aware(case.draft_lease_until) > now
    )


def end_lease(case: Case) -> None:
    """The draft is nobody's (released, or no longer a draft)."""
    case.draft_lease_agent_id = None
    case.draft_lease_until = None
