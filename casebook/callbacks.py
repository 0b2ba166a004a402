"""Callbacks: the casebook asks for a call to the customer (after a resolution, or after an
abandoned call); the scheduler assigns due callbacks to eligible agents; an agent places the
call and its result decides what happens next. The rules live here, the scheduler only runs
``assign_due_callbacks`` on a timer.

A case has at most one open follow-up callback (a partial unique index holds it under
concurrent requests too): a second request while one is open keeps that one, its due time
unchanged, so the caller is asked once. It lives while the case waits for the caller's verdict
(resolved, follow-up); ``cases.move`` cancels it on any other move (closed, back to work,
escalated, reopened), keeping the row with the reason and auditing it.

Concurrency (casebook.concurrency): dialling is a person's change and claims the callback, so
of two people dialling one callback at once one call is placed and the other is refused. An
attempt's result, the assignments and the overdue marks report what happened and are never
refused: they lock their rows and apply to the latest state; an assignment run passes over
callbacks someone holds at that moment (SKIP LOCKED) and takes them on its next run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import Table, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from casebook import audit, operations, pg_locks
from casebook.access import Actor
from casebook.batch import chunked, ids_by, insert_rows
from casebook.clock import utcnow
from casebook.concurrency import claim, locked
from casebook.errors import CasebookError, NotFound, RuleViolation
from casebook.models import (
    OPEN_CALLBACK_STATUSES,
    Agent,
    AttemptResult,
    Callback,
    CallbackAttempt,
    CallbackReason,
    CallbackStatus,
    Case,
    Role,
)
from casebook.paging import Page, take_page
from casebook.phone import dialable
from casebook.settings import WEEKDAYS, BusinessHours, CallbackSettings, CasebookConfig

_CALLBACKS: Table = Callback.__table__  # type: ignore[attr-defined]

NEVER = datetime.min.replace(tzinfo=UTC)


def _new_callback(
    settings: CasebookConfig,
    *,
    phone: str,
    reason: CallbackReason,
    due: datetime,
    department: str | None,
    skill: str | None,
    owner: int | None,
    case_id: int | None = None,
    call_id: int | None = None,
) -> Callback:
    return Callback(
        case_id=case_id,
        call_id=call_id,
        phone_number=phone,
        reason=reason.value,
        department=department,
        skill=skill,
        due_from=due,
        overdue_at=due + timedelta(hours=settings.callbacks.overdue_hours),
        owner_agent_id=owner,
    )


def _requested(session: Session, actor: Actor, callback: Callback, about: str | None) -> Callback:
    session.add(callback)
    session.flush()
    audit.record(
        session,
        actor,
        "callback.request",
        "callback",
        callback.id,
        {"about": about, "reason": callback.reason, "due_from": callback.due_from.isoformat()},
    )
    return callback


def _open_followups(session: Session, case: Case, *, lock: bool = False) -> list[Callback]:
    query = (
        select(Callback)
        .where(
            Callback.case_id == case.id,
            Callback.reason == CallbackReason.FOLLOW_UP.value,
            col(Callback.status).in_(OPEN_CALLBACK_STATUSES),
        )
        .order_by(col(Callback.id))
    )
    if lock:
        # The latest state, not a copy this session read before.
        query = query.with_for_update().execution_options(populate_existing=True)
    return list(session.exec(query))


def _keep_open(session: Session, actor: Actor, case: Case) -> Callback | None:
    """The case's open follow-up callback, if it has one: kept instead of asking for another."""
    kept = next(iter(_open_followups(session, case)), None)
    if kept is not None:
        audit.record(
            session,
            actor,
            "callback.kept",
            "callback",
            kept.id,
            {"about": case.reference, "status": kept.status, "due_from": kept.due_from.isoformat()},
        )
    return kept


def request_followup_callback(
    session: Session, settings: CasebookConfig, actor: Actor, case: Case, now: datetime
) -> Callback | None:
    """After a resolution (or a partial answer), call the customer back to ask whether they are
    satisfied; if the case has an open follow-up callback already, that one is kept. No number
    on the case (or one that is not a phone number, stored before numbers were normalised)
    means no callback: the follow-up goes by letter instead."""
    if not dialable(case.caller_number, settings.phone):
        why = "no number" if not case.caller_number else "not a number to dial"
        audit.record(session, actor, "callback.skipped", "case", case.reference, {"why": why})
        return None
    assert case.caller_number is not None  # dialable
    kept = _keep_open(session, actor, case)
    if kept is not None:
        return kept
    callback = _new_callback(
        settings,
        phone=case.caller_number,
        reason=CallbackReason.FOLLOW_UP,
        due=now + timedelta(hours=settings.callbacks.followup_delay_hours),
        department=case.department,
        skill=case.category,
        owner=case.assigned_agent_id,
        case_id=case.id,
    )
    try:
        # A savepoint: a concurrent request that won the unique index undoes only this insert.
        with session.begin_nested():
            requested = _requested(session, actor, callback, case.reference)
    except IntegrityError:
        winner = _keep_open(session, actor, case)
        if winner is None:
            raise
        return winner
    return requested


def cancel_followup_callbacks(
    session: Session, actor: Actor, case: Case, reason: str, now: datetime
) -> list[Callback]:
    """Cancel the case's open follow-up callbacks (the case no longer waits for the caller's
    verdict); each keeps its row and attempts, with the reason, and is audited. Locked: a dial
    at the same moment waits and then finds it cancelled; an assignment run passes over it
    (SKIP LOCKED) and finds it cancelled the next time."""
    cancelled = _open_followups(session, case, lock=True)
    for callback in cancelled:
        previous = callback.status
        callback.status = CallbackStatus.CANCELLED.value
        callback.cancel_reason = reason
        callback.cancelled_at = now
        session.add(callback)
        audit.record(
            session,
            actor,
            "callback.cancel",
            "callback",
            callback.id,
            {"case": case.reference, "reason": reason, "from": previous},
        )
    return cancelled


class FinishedCall(Protocol):
    """What the abandoned-call rule reads of a call just stored."""

    @property
    def id(self) -> int | None: ...
    @property
    def abandoned(self) -> bool: ...
    @property
    def caller_number(self) -> str | None: ...
    @property
    def ended_at(self) -> datetime | None: ...


def request_abandoned_callbacks(
    session: Session, settings: CasebookConfig, finished: Sequence[FinishedCall]
) -> list[dict[str, Any] | None]:
    """Calls just finished (stored, with an id) whose caller hung up before registering a
    complaint: call them back, once per number while a callback for them is still waiting;
    two abandoned calls of one number in ``finished`` ask once. For each call, the row of the
    callback it asked for (unaudited: the caller audits it), or None."""
    asking = [
        c
        for c in finished
        if c.abandoned and dialable(c.caller_number, settings.phone) and c.ended_at is not None
    ]
    if not asking:
        return [None] * len(finished)
    waiting: set[str] = set()
    columns = _CALLBACKS.c
    for keys in chunked(c.caller_number for c in asking):
        # Core rows, not the ORM's scalars: those rebuild result metadata for every query.
        query = sa.select(columns.phone_number).where(
            columns.phone_number.in_(keys),
            columns.reason == CallbackReason.ABANDONED.value,
            columns.status.in_(OPEN_CALLBACK_STATUSES),
        )
        waiting |= {number for (number,) in session.connection().execute(query)}
    # One callback made the one way callbacks are made; the others differ only in who is
    # called, from when, and about which call (inserted in one go, not built one by one).
    model = _new_callback(
        settings,
        phone="",
        reason=CallbackReason.ABANDONED,
        due=asking[0].ended_at or utcnow(),
        department=settings.cases.intake_department,
        skill=None,
        owner=None,
    )
    overdue_after = model.overdue_at - model.due_from
    shape = model.model_dump(exclude={"id", "created_at"})
    requested: dict[int, dict[str, Any]] = {}
    for call in asking:
        number, now = call.caller_number, call.ended_at
        assert number is not None and now is not None and call.id is not None  # see above
        if number in waiting:
            continue
        waiting.add(number)
        requested[call.id] = shape | {
            "phone_number": number,
            "due_from": now,
            "overdue_at": now + overdue_after,
            "call_id": call.id,
        }
    insert_rows(session, Callback, list(requested.values()))
    abandoned = _CALLBACKS.c.reason == CallbackReason.ABANDONED.value
    ids = ids_by(session.connection(), _CALLBACKS.c.call_id, requested, abandoned)
    for call_id, row in requested.items():
        row["id"] = ids[call_id]
    return [requested.get(call.id) if call.id is not None else None for call in finished]


# --- who may take a callback now ---------------------------------------------------------------


def _within(moment: time, start: time, end: time) -> bool:
    return start <= moment < end


@dataclass(frozen=True)
class Shift:
    """When an agent works, in site time."""

    days: list[str]
    start: time
    end: time


def shift_of(agent: Agent, hours: BusinessHours) -> Shift:
    """An agent's own shift, or the site's business hours when they have none."""
    return Shift(
        days=agent.shift_days or list(hours.days),
        start=agent.shift_start or hours.start,
        end=agent.shift_end or hours.end,
    )


def on_shift(agent: Agent, now: datetime, hours: BusinessHours) -> bool:
    """On their shift (``shift_of``) and not on a holiday."""
    local = now.astimezone(hours.zone)
    if local.date().isoformat() in hours.holidays:
        return False
    shift = shift_of(agent, hours)
    return WEEKDAYS[local.weekday()] in shift.days and _within(local.time(), shift.start, shift.end)


def in_call_window(
    callback: Callback, now: datetime, policy: CallbackSettings, hours: BusinessHours
) -> bool:
    local = now.astimezone(hours.zone).time()
    start = callback.window_start or policy.call_window_start
    end = callback.window_end or policy.call_window_end
    return _within(local, start, end)


def can_handle(agent: Agent, callback: Callback) -> bool:
    """Speaks the customer's language, and belongs to the department or has the skill."""
    if callback.language not in agent.languages:
        return False
    if callback.department is None:
        return True
    return agent.department == callback.department or (
        callback.skill is not None and callback.skill in agent.skills
    )


@dataclass
class _Desk:
    agent: Agent
    capacity: int
    load: int

    @property
    def free(self) -> bool:
        return self.load < self.capacity

    def order(self) -> tuple[int, datetime, str]:
        # Least loaded first; then whoever was given one longest ago; then by name (stable).
        waited = self.agent.last_assigned_at or NEVER
        return (self.load, waited, self.agent.username)


@dataclass
class AssignmentRun:
    assigned: list[tuple[int, str]] = field(default_factory=list)  # (callback id, username)
    escalated: list[int] = field(default_factory=list)
    waiting: int = 0  # due callbacks nobody eligible could take now


def _choose(
    callback: Callback, desks: list[_Desk], owner_wait_until: datetime, now: datetime
) -> _Desk | None:
    able = [desk for desk in desks if can_handle(desk.agent, callback)]
    if callback.owner_agent_id is not None:
        owner = next((d for d in able if d.agent.id == callback.owner_agent_id), None)
        if owner is not None and owner.free:
            return owner
        if now < owner_wait_until:
            return None  # the agent who handled the case gets the first chance
    free = [desk for desk in able if desk.free]
    return min(free, key=_Desk.order) if free else None


def _lock_assignment(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # Two schedulers against one database take turns; SQLite is serialised by BEGIN IMMEDIATE.
        pg_locks.lock_in_this_schema(session, pg_locks.CALLBACK_ASSIGNMENT)


def agent_loads(session: Session) -> Counter[int | None]:
    """Callbacks each agent holds now (assigned, not yet finished), by agent id."""
    return Counter(
        dict(
            session.exec(
                select(Callback.assigned_agent_id, func.count())
                .where(Callback.status == CallbackStatus.ASSIGNED.value)
                .group_by(col(Callback.assigned_agent_id))
            ).all()
        )
    )


def assign_due_callbacks(
    session: Session, settings: CasebookConfig, actor: Actor, now: datetime, *, batch: int = 5000
) -> AssignmentRun:
    """Give due callbacks to agents on shift who can handle them, least loaded first, never past
    an agent's capacity and never one callback to two agents; escalate overdue ones."""
    _lock_assignment(session)
    policy, hours = settings.callbacks, settings.business_hours
    run = AssignmentRun()
    agents = [
        agent
        for agent in session.exec(select(Agent).where(col(Agent.active)))
        if Role.AGENT.value in agent.roles and on_shift(agent, now, hours)
    ]
    loads = agent_loads(session)
    desks = [_Desk(a, a.capacity or policy.agent_capacity, loads.get(a.id, 0)) for a in agents]
    due = session.exec(
        select(Callback)
        .where(Callback.status == CallbackStatus.PENDING.value, col(Callback.due_from) <= now)
        .order_by(col(Callback.due_from), col(Callback.id))
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    owner_delay = timedelta(minutes=policy.owner_preference_minutes)
    for callback in due:
        if not in_call_window(callback, now, policy, hours):
            run.waiting += 1
            continue
        desk = _choose(callback, desks, callback.due_from + owner_delay, now)
        if desk is None:
            run.waiting += 1
            continue
        callback.status = CallbackStatus.ASSIGNED.value
        callback.assigned_agent_id = desk.agent.id
        callback.assigned_at = now
        desk.load += 1
        desk.agent.last_assigned_at = now
        session.add(callback)
        session.add(desk.agent)
        run.assigned.append((callback.id or 0, desk.agent.username))
    run.escalated = _escalate_overdue(session, actor, now)
    session.flush()
    for callback_id, username in run.assigned:
        audit.record(
            session, actor, "callback.assign", "callback", callback_id, {"agent": username}
        )
    return run


def _escalate_overdue(session: Session, actor: Actor, now: datetime) -> list[int]:
    overdue = session.exec(
        select(Callback)
        .where(
            col(Callback.status).in_(OPEN_CALLBACK_STATUSES),
            col(Callback.overdue_at) < now,
            col(Callback.escalated_at).is_(None),
        )
        .order_by(col(Callback.id))
        .with_for_update(skip_locked=True)
    ).all()
    for callback in overdue:
        callback.escalated_at = now
        session.add(callback)
        audit.record(
            session, actor, "callback.overdue", "callback", callback.id, {"status": callback.status}
        )
    return [callback.id or 0 for callback in overdue]


# --- placing the call and its result ----------------------------------------------------------


def _held_by(session: Session, actor: Actor, callback_id: int, action: str) -> Callback:
    callback = session.get(Callback, callback_id)
    if callback is None:
        raise NotFound(f"no callback {callback_id}")
    if callback.assigned_agent_id != actor.agent_id and not actor.can("see_all_cases"):
        raise audit.denial(
            actor,
            action,
            "callback",
            callback_id,
            f"callback {callback_id} is not assigned to {actor.username}",
        )
    return callback


def _check_assigned(callback: Callback) -> None:
    if callback.status != CallbackStatus.ASSIGNED.value:
        why = f" ({callback.cancel_reason})" if callback.cancel_reason else ""
        raise RuleViolation(
            f"callback {callback.id} is {callback.status}{why}: only an assigned one is dialled"
        )


@dataclass(frozen=True)
class DialTarget:
    callback: Callback
    extension: str  # the agent's phone, rung first


def ready_to_dial(
    session: Session, settings: CasebookConfig, actor: Actor, callback_id: int, now: datetime
) -> DialTarget:
    """Everything a dial needs that the casebook knows, checked before anyone talks to the PBX:
    the agent has an extension, the callback is theirs, still assigned, and the customer is in
    their call window now. Changes nothing; ``start_attempt`` claims it."""
    agent = session.get(Agent, actor.agent_id) if actor.agent_id is not None else None
    if agent is None or not agent.extension:
        raise RuleViolation(
            f"{actor.username} has no phone extension to ring (agents add --extension)"
        )
    callback = _held_by(session, actor, callback_id, "callback.dial")
    _check_assigned(callback)
    policy, hours = settings.callbacks, settings.business_hours
    if not in_call_window(callback, now, policy, hours):
        start = callback.window_start or policy.call_window_start
        end = callback.window_end or policy.call_window_end
        raise RuleViolation(
            f"callback {callback_id}: the customer is called only between {start:%H:%M} and "
            f"{end:%H:%M} ({hours.timezone})"
        )
    return DialTarget(callback, agent.extension)


def start_attempt(
    session: Session,
    actor: Actor,
    callback_id: int,
    action_id: str,
    now: datetime,
    *,
    seen_version: int | None = None,
) -> tuple[Callback, CallbackAttempt]:
    """Dial a callback: claimed, so two people dialling it at once place one call.
    ``seen_version``: the version of the callback the person was shown, if any."""
    callback = _held_by(session, actor, callback_id, "callback.dial")
    claim(session, callback, seen_version)
    _check_assigned(callback)
    attempt = CallbackAttempt(
        callback_id=callback_id, agent_id=actor.agent_id, action_id=action_id, started_at=now
    )
    session.add(attempt)
    session.flush()
    audit.record(
        session,
        actor,
        "callback.dial",
        "callback",
        callback_id,
        {"action_id": action_id, "phone": callback.phone_number},
    )
    return callback, attempt


def record_attempt_result(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    action_id: str,
    result: AttemptResult,
    now: datetime,
    detail: str | None = None,
) -> Callback:
    """What came of a dialled callback. Answered: done (the agent logs the follow-up). Otherwise
    retried after the configured delay, up to the attempts allowed; then a letter or SMS is due
    and a supervisor sees it. A second report for the same attempt changes nothing."""
    # Locked: of two reports of one attempt, the second waits and finds it reported.
    attempt = session.exec(
        select(CallbackAttempt)
        .where(CallbackAttempt.action_id == action_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if attempt is None:
        raise NotFound(f"no callback attempt with ActionID {action_id}")
    callback = locked(session, Callback, attempt.callback_id)
    assert callback is not None  # foreign key
    if attempt.result is not None:
        return callback
    attempt.result = result.value
    attempt.ended_at = now
    attempt.detail = detail
    callback.attempts += 1
    callback.last_result = result.value
    policy = settings.callbacks
    if callback.status == CallbackStatus.CANCELLED.value:
        pass  # cancelled while it rang (the case moved on): the attempt is kept, nothing is due
    elif result is AttemptResult.ANSWERED:
        callback.status = CallbackStatus.DONE.value
    elif callback.attempts >= policy.max_attempts:
        callback.status = CallbackStatus.WRITTEN.value
    else:
        callback.status = CallbackStatus.PENDING.value
        callback.due_from = now + timedelta(minutes=policy.retry_delay_minutes)
        # The same agent is preferred for the retry; anyone may take it after the delay.
        callback.owner_agent_id = callback.assigned_agent_id
        callback.assigned_agent_id = None
    session.add(attempt)
    session.add(callback)
    audit.record(
        session,
        actor,
        "callback.result",
        "callback",
        callback.id,
        {"result": result.value, "attempts": callback.attempts, "status": callback.status},
    )
    return callback


# --- what agents see ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reminder:
    due: int
    overdue: int


def reminders(session: Session, actor: Actor, now: datetime) -> Reminder:
    """How many callbacks the agent holds that are due now, and how many are overdue."""
    mine = (
        select(func.count())
        .select_from(Callback)
        .where(
            Callback.assigned_agent_id == actor.agent_id,
            Callback.status == CallbackStatus.ASSIGNED.value,
        )
    )
    due = session.exec(mine.where(col(Callback.due_from) <= now)).one()
    overdue = session.exec(mine.where(col(Callback.overdue_at) < now)).one()
    return Reminder(due=due, overdue=overdue)


def list_callbacks(
    session: Session,
    actor: Actor,
    *,
    mine: bool,
    statuses: tuple[str, ...] = (*OPEN_CALLBACK_STATUSES, CallbackStatus.WRITTEN.value),
    limit: int | None = 100,
) -> Page[Callback]:
    """An agent sees their own callbacks; supervisors see all, including those that need a
    written follow-up. Customer numbers are personal data: the listing is audited."""
    query = select(Callback).where(col(Callback.status).in_(statuses))
    if mine or not actor.can("see_all_cases"):
        if actor.agent_id is None:
            raise CasebookError(f"{actor.username} holds no callbacks")
        query = query.where(Callback.assigned_agent_id == actor.agent_id)
    page = take_page(session, query.order_by(col(Callback.due_from), col(Callback.id)), limit)
    audit.record(
        session, actor, "callback.list", "callback", None, {"rows": len(page.items), "mine": mine}
    )
    return page


class Idle(StrEnum):
    """Why an agent is offered no callback."""

    NOT_AN_AGENT = "not_an_agent"  # not someone callbacks are given to
    NO_SCHEDULER = "no_scheduler"  # nothing assigns callbacks: no scheduler reports running
    OFF_SHIFT = "off_shift"  # the scheduler gives callbacks only to agents on shift
    NONE_ASSIGNED = "none_assigned"  # it runs and they are on shift: nothing for them now


@dataclass(frozen=True)
class NextCallback:
    """The callback to make now, or why there is none (``reasons``, most pressing first)."""

    callback: Callback | None
    reasons: list[Idle]
    # Due callbacks nobody holds.
    waiting: int
    # The last report of any scheduler (or its clean stop), None if none ever reported.
    scheduler_seen_at: datetime | None
    shift: Shift | None  # the agent's, when they are one


def next_callback(
    session: Session, settings: CasebookConfig, actor: Actor, now: datetime
) -> NextCallback:
    """The agent's oldest assigned callback: the one to call now; or, when there is none, why."""
    agent = session.get(Agent, actor.agent_id) if actor.agent_id is not None else None
    callback = None
    if agent is not None:
        callback = session.exec(
            select(Callback)
            .where(
                Callback.assigned_agent_id == agent.id,
                Callback.status == CallbackStatus.ASSIGNED.value,
            )
            .order_by(col(Callback.due_from), col(Callback.id))
        ).first()
    hours = settings.business_hours
    shift = None if agent is None else shift_of(agent, hours)
    scheduler = operations.component_seen(session, operations.SCHEDULER, now)
    waiting = session.exec(
        select(func.count())
        .select_from(Callback)
        .where(Callback.status == CallbackStatus.PENDING.value, col(Callback.due_from) <= now)
    ).one()
    reasons: list[Idle] = []
    if callback is None:
        given_callbacks = agent is not None and agent.active and Role.AGENT.value in agent.roles
        if not given_callbacks:
            reasons.append(Idle.NOT_AN_AGENT)
        if not scheduler.running:
            reasons.append(Idle.NO_SCHEDULER)
        if agent is not None and given_callbacks and not on_shift(agent, now, hours):
            reasons.append(Idle.OFF_SHIFT)
        if not reasons:
            reasons.append(Idle.NONE_ASSIGNED)
    return NextCallback(callback, reasons, waiting, scheduler.seen_at, shift)


def agent_usernames(session: Session, listed: Sequence[Callback]) -> dict[int, str]:
    """The user name of the agent holding each listed callback, by callback id (those nobody
    holds have none); the listing was audited."""
    agent_ids = {c.assigned_agent_id for c in listed if c.assigned_agent_id is not None}
    names: dict[int, str] = {}
    for keys in chunked(sorted(agent_ids)):
        query = select(Agent.id, Agent.username).where(col(Agent.id).in_(keys))
        names |= {agent_id: name for agent_id, name in session.exec(query) if agent_id is not None}
    return {
        callback.id: names[callback.assigned_agent_id]
        for callback in listed
        if callback.id is not None and callback.assigned_agent_id in names
    }


def case_references(session: Session, listed: Sequence[Callback]) -> dict[int, str]:
    """The reference of each listed callback's case, by callback id (callbacks for abandoned
    calls have none); the listing was audited."""
    case_ids = {callback.case_id for callback in listed if callback.case_id is not None}
    references: dict[int, str] = {}
    for keys in chunked(sorted(case_ids)):
        query = select(Case.id, Case.reference).where(col(Case.id).in_(keys))
        references |= {
            case_id: ref
            for case_id, ref in session.exec(query)
            if case_id is not None and ref is not None
        }
    by_callback: dict[int, str] = {}
    for callback in listed:
        if callback.id is not None and callback.case_id in references:
            by_callback[callback.id] = references[callback.case_id]
    return by_callback
