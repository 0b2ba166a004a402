"""Callback requests: the casebook asks for a call to the customer; the scheduler assigns it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.models import Call, Callback, CallbackReason, CallbackStatus, Case
from hotline.config import Settings


def request_followup_callback(
    session: Session, settings: Settings, actor: Actor, case: Case, now: datetime
) -> Callback | None:
    """After a resolution (or a partial answer), call the customer back to ask whether they are
    satisfied. No number on the case means no callback: the follow-up goes by letter instead."""
    if not case.caller_number:
        audit.record(
            session, actor, "callback.skipped", "case", case.reference, {"why": "no number"}
        )
        return None
    callback = Callback(
        case_id=case.id,
        phone_number=case.caller_number,
        reason=CallbackReason.FOLLOW_UP.value,
        due_from=now + timedelta(hours=settings.callbacks.followup_delay_hours),
        owner_agent_id=case.assigned_agent_id,
    )
    session.add(callback)
    session.flush()
    audit.record(
        session,
        actor,
        "callback.request",
        "callback",
        callback.id,
        {
            "case": case.reference,
            "reason": callback.reason,
            "due_from": callback.due_from.isoformat(),
        },
    )
    return callback


def request_abandoned_callback(
    session: Session, actor: Actor, call: Call, now: datetime
) -> Callback | None:
    """The caller hung up before registering a complaint: call them back, once per number
    while a callback for them is still waiting."""
    if not call.caller_number:
        return None
    waiting = session.exec(
        select(Callback).where(
            Callback.phone_number == call.caller_number,
            Callback.reason == CallbackReason.ABANDONED.value,
            col(Callback.status).in_([CallbackStatus.PENDING.value, CallbackStatus.ASSIGNED.value]),
        )
    ).first()
    if waiting is not None:
        return waiting
    callback = Callback(
        call_id=call.id,
        phone_number=call.caller_number,
        reason=CallbackReason.ABANDONED.value,
        due_from=now,
    )
    session.add(callback)
    session.flush()
    audit.record(
        session,
        actor,
        "callback.request",
        "callback",
        callback.id,
        {"call": call.linkedid, "reason": callback.reason},
    )
    return callback
