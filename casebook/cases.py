"""The complaint workflow: register, read, confirm, work, resolve, escalate, close.

Every function takes a session and plain values, enforces its rule with a clear error, writes
what it did to the audit log and leaves committing to the unit of work (``Database.run``).
Every change claims its case first (casebook.concurrency): of two changes decided on the same
version one wins and the other is refused with ``Conflict``. ``seen_version`` is the version
the person was shown, when the change was decided in an earlier request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from casebook import audit, site_secrets
from casebook.access import Actor
from casebook.agents import usernames
from casebook.callbacks import cancel_followup_callbacks, request_followup_callback
from casebook.case_terms import index_complaint
from casebook.clock import ensure_aware, utcnow
from casebook.concurrency import claim
from casebook.draft_leases import end_lease, refuse_if_taken
from casebook.errors import CasebookError, NotFound, RuleViolation
from casebook.models import Agent, Case, CaseStatus, FollowUp, FollowUpResult, Priority
from casebook.phone import last_digits, normalise, same_number
from casebook.phone_lookups import LOOKUP, lookups_in_window
from casebook.reference import InvalidReference, normalise_reference, reference_for_id
from casebook.settings import CasebookConfig, PhoneSettings, StatusByPhoneSettings
from casebook.sla import promised_by
from casebook.workflow import AWAITING_VERDICT, MOVE_PERMISSIONS, check_move

S = CaseStatus


def moment_or_now(now: datetime | None) -> datetime:
    return utcnow() if now is None else ensure_aware(now)


def _check_category(settings: CasebookConfig, category: str | None) -> None:
    if category is not None and category not in settings.sla.categories:
        options = ", ".join(sorted(settings.sla.categories))
        raise CasebookError(f"unknown category {category!r} (choose from {options})")


def check_department(settings: CasebookConfig, department: str | None) -> None:
    if department is not None and department not in settings.cases.departments:
        options = ", ".join(settings.cases.departments)
        raise CasebookError(f"unknown department {department!r} (choose from {options})")


def case_for_call(session: Session, uniqueid: str) -> Case | None:
    """The case registered from this Asterisk channel, if any (a channel registers at most one)."""
    return session.exec(select(Case).where(Case.call_uniqueid == uniqueid)).first()


def register_complaint(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    *,
    caller_number: str | None,
    uniqueid: str | None = None,
    linkedid: str | None = None,
    category: str | None = None,
    keypad_number: str | None = None,
    draft_text: str | None = None,
    now: datetime | None = None,
) -> Case:
    """Create the draft case the moment a complaint is registered, with its reference number
    and promised resolution time, and the account or line number the caller keyed (digits, at
    most ``KEYPAD_DIGITS``: checked by casebook.limits before the database). A repeat for the
    same Asterisk channel (an AGI retry) returns the case already registered instead of a
    second one."""
    _check_category(settings, category)
    if uniqueid is not None:
        existing = case_for_call(session, uniqueid)
        if existing is not None:
            return existing
    created = moment_or_now(now)
    caller = normalise(caller_number, settings.phone)
    case = Case(
        caller_number=caller.number,
        call_uniqueid=uniqueid,
        call_linkedid=linkedid,
        category=category,
        keypad_number=keypad_number,
        department=settings.cases.intake_department,
        draft_text=draft_text,
        promised_by=promised_by(created, category, settings.sla, settings.business_hours),
        created_at=created,
        updated_at=created,
    )
    try:
        # A savepoint, so a concurrent registration of the same channel (PostgreSQL) only
        # undoes this insert and we can return the winner's case.
        with session.begin_nested():
            session.add(case)
            session.flush()
    except IntegrityError:
        winner = None if uniqueid is None else case_for_call(session, uniqueid)
        if winner is None:
            raise
        return winner
    give_reference(session, settings, case)
    audit.record(
        session,
        actor,
        "case.register",
        "case",
        case.reference,
        {"uniqueid": uniqueid, "linkedid": linkedid, "category": category}
        | ({"keypad_number": keypad_number} if keypad_number else {})
        | caller.audit_detail(),
    )
    return case


# Candidates tried before giving up: one is taken only when a reference issued before the site
# had its key (or an earlier candidate) landed on it, about one case in 10^8 / issued.
_REFERENCE_ATTEMPTS = 20


def give_reference(session: Session, settings: CasebookConfig, case: Case) -> None:
    """The case's reference: its id through the site's keyed permutation. A site upgraded from
    the unkeyed numbering may hold that reference already (issued then, kept as stored): the
    unique column refuses it in a savepoint and the next candidate (another permutation of
    the same id) is taken."""
    assert case.id is not None  # assigned by the flush
    key = site_secrets.load_key(settings.secrets, site_secrets.REFERENCE_KEY)
    for attempt in range(_REFERENCE_ATTEMPTS):
        try:
            with session.begin_nested():
                case.reference = reference_for_id(case.id, key, attempt)
                session.flush()
            return
        except IntegrityError:
            continue
    raise CasebookError(
        f"no free reference number for case {case.id} after {_REFERENCE_ATTEMPTS} tries: "
        "the reference space is nearly full"
    )


def _find(session: Session, reference: str) -> Case:
    try:
        canonical = normalise_reference(reference)
    except InvalidReference as exc:
        raise NotFound(f"{reference!r} is not a valid reference number: {exc}") from exc
    case = session.exec(select(Case).where(Case.reference == canonical)).first()
    if case is None:
        raise NotFound(f"no case with reference number {canonical}")
    return case


def load_for(session: Session, actor: Actor, reference: str, action: str) -> Case:
    """The case, if the actor is among the staff concerned; a refusal is audited."""
    case = _find(session, reference)
    if not actor.may_see(case):
        raise audit.denial(
            actor,
            action,
            "case",
            case.reference,
            f"{actor.username} is not concerned by case {case.reference}",
        )
    return case


def _is_callers_case(
    case: Case, caller_number: str | None, last4: str | None, phone: PhoneSettings
) -> bool:
    if same_number(caller_number, case.caller_number, phone):
        return True
    keyed = (last4 or "").strip()
    return (
        len(keyed) == 4
        and bool(case.caller_number)
        and keyed == last_digits(case.caller_number, phone)
    )


@dataclass(frozen=True)
class CallerStatus:
    """What a caller may hear about a case on the phone."""

    found: bool
    identity_confirmed: bool
    status: str | None = None
    promised_by: datetime | None = None
    # Refused unlooked: the number asked too often in the window (``limits``).
    limited: bool = False


def status_for_caller(
    session: Session,
    actor: Actor,
    *,
    reference: str,
    caller_number: str | None,
    last4: str | None,
    phone: PhoneSettings,
    limits: StatusByPhoneSettings,
    now: datetime | None = None,
) -> CallerStatus:
    """A caller asks about a case by its reference number. They hear its status only when they
    call from the case's number or key the last 4 digits of it; otherwise they learn nothing,
    not even whether the case exists. A number that asked ``limits.per_number`` times in the
    window is refused without a look (casebook.phone_lookups). Every lookup is audited, with
    the caller's number. ``phone``: settings.phone; ``limits``: settings.status_by_phone."""
    caller = normalise(caller_number, phone)
    asked = lookups_in_window(session, caller.number, limits, moment_or_now(now))
    if asked >= limits.per_number:
        why = f"{asked} lookups in {limits.window_minutes:g} minutes (at most {limits.per_number})"
        audit.record(
            session,
            actor,
            LOOKUP,
            "case",
            reference[:16],
            {"caller": caller.number, "refused": why, "last4_keyed": bool(last4)}
            | caller.audit_detail(),
            allowed=False,
        )
        return CallerStatus(found=False, identity_confirmed=False, limited=True)
    try:
        case: Case | None = _find(session, reference)
    except NotFound:
        case = None
    confirmed = case is not None and _is_callers_case(case, caller.number, last4, phone)
    audit.record(
        session,
        actor,
        LOOKUP,
        "case",
        case.reference if case is not None else reference[:16],
        {"caller": caller.number, "found": case is not None, "last4_keyed": bool(last4)}
        | caller.audit_detail(),
        allowed=confirmed,
    )
    if case is None:
        return CallerStatus(found=False, identity_confirmed=False)
    if not confirmed:
        return CallerStatus(found=True, identity_confirmed=False)
    return CallerStatus(True, True, case.status, case.promised_by)


def get_case(session: Session, actor: Actor, reference: str) -> Case:
    case = load_for(session, actor, reference, "case.read")
    audit.record(session, actor, "case.read", "case", case.reference)
    return case


def case_followups(session: Session, case: Case) -> list[FollowUp]:
    """The follow-ups of a case already read through ``get_case`` (that read was audited)."""
    query = select(FollowUp).where(FollowUp.case_id == case.id).order_by(col(FollowUp.at))
    return list(session.exec(query))


def check_mover(actor: Actor, case: Case, target: CaseStatus) -> None:
    """The actor holds the permission the move needs, if it needs one (MOVE_PERMISSIONS); a
    refusal is audited."""
    needed = MOVE_PERMISSIONS.get((CaseStatus(case.status), target))
    if needed is not None and not actor.can(needed):
        raise audit.denial(
            actor,
            f"case.{target.value}",
            "case",
            case.reference,
            f"{actor.username} may not move a {case.status} case to {target.value}",
        )


def move(
    session: Session,
    actor: Actor,
    case: Case,
    target: CaseStatus,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Move a case the caller has claimed (casebook.concurrency) and audit the move. Every
    change of status comes through here: a move away from waiting for the caller's verdict
    (closed, back to work, escalated, reopened) cancels the open follow-up callback."""
    check_move(case.status, target)
    check_mover(actor, case, target)
    previous = case.status
    case.status = target.value
    case.updated_at = now
    session.add(case)
    audit.record(
        session,
        actor,
        f"case.{target.value}",
        "case",
        case.reference,
        {"from": previous, **(detail or {})},
    )
    if target not in AWAITING_VERDICT:
        cancel_followup_callbacks(session, actor, case, f"case {target.value}", now)


def confirm_draft(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    reference: str,
    *,
    text: str,
    category: str,
    department: str | None = None,
    priority: Priority = Priority.NORMAL,
    now: datetime | None = None,
    seen_version: int | None = None,
) -> Case:
    """An agent confirms the transcribed draft: the confirmed text is kept beside the draft, the
    case is routed and opened. The promise is from the category's SLA, counted from when the
    complaint was registered, and never later than what the caller was already told. A draft
    another agent has open is refused (casebook.draft_leases)."""
    moment = moment_or_now(now)
    case = load_for(session, actor, reference, "case.open")
    claim(session, case, seen_version)
    refuse_if_taken(session, actor, case, moment)
    _check_category(settings, category)
    check_department(settings, department)
    if not text.strip():
        raise RuleViolation("the confirmed complaint text is empty")
    check_move(case.status, S.OPEN)
    promise = promised_by(case.created_at, category, settings.sla, settings.business_hours)
    if case.promised_by is not None:
        promise = min(promise, case.promised_by)
    case.confirmed_text = text.strip()
    case.confirmed_by_id = actor.agent_id
    case.confirmed_at = moment
    case.category = category
    case.priority = priority.value
    case.department = department or case.department
    case.promised_by = promise
    end_lease(case)
    index_complaint(session, case)
    move(
        session,
        actor,
        case,
        S.OPEN,
        moment,
        {"category": category, "department": case.department, "edited": text != case.draft_text},
    )
    return case


def reject_draft(
    session: Session,
    actor: Actor,
    reference: str,
    *,
    reason: str,
    now: datetime | None = None,
    seen_version: int | None = None,
) -> Case:
    """Not a complaint after all; refused while another agent has the draft open."""
    moment = moment_or_now(now)
    case = load_for(session, actor, reference, "case.rejected")
    claim(session, case, seen_version)
    refuse_if_taken(session, actor, case, moment)
    if not reason.strip():
        raise RuleViolation("say why the draft is not a complaint")
    case.close_reason = reason.strip()
    end_lease(case)
    move(session, actor, case, S.REJECTED, moment, {"reason": reason.strip()})
    return case


def start_work(
    session: Session,
    actor: Actor,
    reference: str,
    *,
    now: datetime | None = None,
    seen_version: int | None = None,
) -> Case:
    """The case is being worked on; an unassigned case goes to the agent who takes it. A
    closed case goes back to work only through a supervisor's ``reopen_case``."""
    case = load_for(session, actor, reference, "case.in_progress")
    claim(session, case, seen_version)
    if case.status == S.CLOSED.value:
        raise RuleViolation(
            f"case {case.reference} is closed: a supervisor reopens it with a reason (cases reopen)"
        )
    if case.assigned_agent_id is None and actor.agent_id is not None:
        case.assigned_agent_id = actor.agent_id
    move(session, actor, case, S.IN_PROGRESS, moment_or_now(now))
    return case


def resolve_case(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    reference: str,
    *,
    summary: str,
    now: datetime | None = None,
    seen_version: int | None = None,
) -> Case:
    """Record the fix and request the follow-up call that asks the caller if they are satisfied."""
    moment = moment_or_now(now)
    case = load_for(session, actor, reference, "case.resolved")
    claim(session, case, seen_version)
    if not summary.strip():
        raise RuleViolation("a resolution needs a summary of what was done")
    check_move(case.status, S.RESOLVED)
    case.resolution_summary = summary.strip()
    case.resolved_at = moment
    move(session, actor, case, S.RESOLVED, moment)
    request_followup_callback(session, settings, actor, case, moment)
    return case


def escalate(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    case: Case,
    *,
    reason: str,
    now: datetime,
) -> None:
    """Raise the case one management level (capped at the configured top level). The caller
    has claimed the case."""
    case.escalation_level = min(case.escalation_level + 1, settings.followup.max_escalation_level)
    case.unsatisfied_rounds = 0
    move(session, actor, case, S.ESCALATED, now, {"level": case.escalation_level, "reason": reason})


def escalate_case(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    reference: str,
    *,
    reason: str,
    now: datetime | None = None,
    seen_version: int | None = None,
) -> Case:
    case = load_for(session, actor, reference, "case.escalated")
    if not actor.can("escalate"):
        raise audit.denial(
            actor, "case.escalated", "case", case.reference, f"{actor.username} may not escalate"
        )
    claim(session, case, seen_version)
    if not reason.strip():
        raise RuleViolation("an escalation needs a reason")
    escalate(session, settings, actor, case, reason=reason.strip(), now=moment_or_now(now))
    return case


def _latest_answered_followup(session: Session, case: Case) -> FollowUp | None:
    query = (
        select(FollowUp)
        .where(FollowUp.case_id == case.id)
        .where(FollowUp.result != FollowUpResult.NO_ANSWER.value)
        .order_by(col(FollowUp.at).desc(), col(FollowUp.id).desc())
    )
    return session.exec(query).first()


def close_case(
    session: Session,
    actor: Actor,
    reference: str,
    *,
    reason: str | None = None,
    now: datetime | None = None,
    seen_version: int | None = None,
) -> Case:
    """Close formally only after the caller said they are satisfied. A supervisor may close
    otherwise, with a written reason that is kept on the case."""
    moment = moment_or_now(now)
    case = load_for(session, actor, reference, "case.closed")
    claim(session, case, seen_version)
    check_move(case.status, S.CLOSED)
    latest = _latest_answered_followup(session, case)
    satisfied = latest is not None and latest.result == FollowUpResult.SATISFIED.value
    if not (satisfied and case.status == S.FOLLOW_UP.value):
        if not actor.can("close_without_satisfaction"):
            message = (
                f"case {case.reference} cannot be closed: the caller has not confirmed they are "
                "satisfied (log a satisfied follow-up, or ask a supervisor)"
            )
            raise RuleViolation(message)
        if not reason or not reason.strip():
            raise RuleViolation(
                f"closing case {case.reference} without a satisfied follow-up needs a reason"
            )
        case.close_reason = reason.strip()
    case.closed_at = moment
    move(
        session,
        actor,
        case,
        S.CLOSED,
        moment,
        {"satisfied": satisfied, "reason": case.close_reason},
    )
    return case


def reopen_case(
    session: Session,
    actor: Actor,
    reference: str,
    *,
    reason: str,
    now: datetime | None = None,
    seen_version: int | None = None,
) -> Case:
    """A supervisor sends a closed case back to work (the fix did not hold, the caller came
    back): the reason is kept in the move's audit entry, which is the case's history
    (casebook.timeline); the close's moment and reason, kept there too, are cleared."""
    case = load_for(session, actor, reference, "case.in_progress")
    claim(session, case, seen_version)
    if case.status != S.CLOSED.value:
        raise RuleViolation(f"case {case.reference} is {case.status}: only a closed case reopens")
    check_mover(actor, case, S.IN_PROGRESS)
    if not reason.strip():
        raise RuleViolation("reopening a case needs a reason")
    move(
        session,
        actor,
        case,
        S.IN_PROGRESS,
        moment_or_now(now),
        {"reopened": True, "reason": reason.strip()},
    )
    case.closed_at = None
    case.close_reason = None
    return case


def _assignee(session: Session, username: str) -> Agent:
    agent = session.exec(select(Agent).where(Agent.username == username)).first()
    if agent is None:
        raise NotFound(f"no agent {username}")
    if not agent.active:
        raise RuleViolation(f"{username} is disabled and cannot hold cases")
    return agent


def assign_case(
    session: Session,
    actor: Actor,
    reference: str,
    *,
    to: str,
    now: datetime | None = None,
    seen_version: int | None = None,
) -> Case:
    """Give the case to agent ``to``. An agent may take an unassigned case of their department
    for themselves; assigning anyone else, or taking a case someone holds, is a supervisor's
    (``supervise_cases``). Audited with who held it before."""
    case = load_for(session, actor, reference, "case.assign")
    claim(session, case, seen_version)
    if case.status in (S.DRAFT.value, S.REJECTED.value, S.CLOSED.value):
        raise RuleViolation(f"case {case.reference} is {case.status}: nothing to work on")
    agent = _assignee(session, to)
    if case.assigned_agent_id == agent.id:
        raise RuleViolation(f"case {case.reference} is already assigned to {to}")
    taking = (
        agent.id == actor.agent_id
        and case.assigned_agent_id is None
        and actor.department is not None
        and case.department == actor.department
    )
    if not (taking or actor.can("supervise_cases")):
        holder = "someone else's case" if case.assigned_agent_id is not None else "it"
        why = (
            f"{actor.username} may take only an unassigned case of their department for "
            f"themselves; assigning {holder} to {to} is a supervisor's"
        )
        raise audit.denial(actor, "case.assign", "case", case.reference, why, detail={"to": to})
    previous = usernames(session, [case.assigned_agent_id]).get(case.assigned_agent_id or 0)
    case.assigned_agent_id = agent.id
    case.updated_at = moment_or_now(now)
    session.add(case)
    audit.record(
        session, actor, "case.assign", "case", case.reference, {"from": previous, "to": to}
    )
    return case
