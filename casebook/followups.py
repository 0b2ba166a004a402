"""Follow-ups after resolution: date, agent, contact method, result, and what each result means
for the case (the complaints process, steps 3 to 7). Logging one changes the case and claims it
first (casebook.concurrency): of two follow-ups logged at once on one case, one is written and
the other is refused, naming the first."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from casebook import audit
from casebook.access import Actor
from casebook.callbacks import request_followup_callback
from casebook.cases import check_department, escalate, load_for, moment_or_now, move
from casebook.concurrency import claim
from casebook.errors import RuleViolation
from casebook.models import CaseStatus, ContactMethod, FollowUp, FollowUpResult
from casebook.settings import CasebookConfig

S = CaseStatus
R = FollowUpResult

_FOLLOWED_UP = {S.RESOLVED.value, S.FOLLOW_UP.value}
# Why a case went back to work, as its history shows it (Arabic first, like every people's view).
NOT_SATISFIED_WHY = "لم يرضَ المتصل (caller not satisfied)"

# The words an agent types for each result (``hotline followup log --result``).
RESULT_WORDS = {
    "satisfied": R.SATISFIED,
    "not-satisfied": R.NOT_SATISFIED,
    "partial": R.PARTIALLY_SATISFIED,
    "no-answer": R.NO_ANSWER,
}


def result_named(word: str) -> FollowUpResult:
    """The result an agent typed (one of ``RESULT_WORDS``)."""
    chosen = RESULT_WORDS.get(word)
    if chosen is None:
        raise RuleViolation(f"result must be one of {', '.join(RESULT_WORDS)}, got {word!r}")
    return chosen


def log_followup(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    reference: str,
    *,
    method: ContactMethod,
    result: FollowUpResult,
    effort_score: int | None = None,
    notes: str | None = None,
    reroute_to: str | None = None,
    now: datetime | None = None,
    seen_version: int | None = None,
) -> FollowUp:
    """Record one follow-up contact and apply its result:

    - satisfied: the case may now be closed formally;
    - not satisfied: the case goes back to work, and after the configured number of rounds it
      climbs one management level;
    - partially satisfied: another follow-up is requested;
    - no answer: nothing changes (the callback policy retries).
    Any result may re-route the case to another department. ``seen_version``: the version of
    the case the agent was shown, if any.
    """
    moment = moment_or_now(now)
    case = load_for(session, actor, reference, "followup.log")
    claim(session, case, seen_version)
    scale = settings.followup.effort_scale
    if effort_score is not None and not 1 <= effort_score <= scale:
        raise RuleViolation(f"effort score must be between 1 and {scale}")
    if result is R.NO_ANSWER and effort_score is not None:
        raise RuleViolation("no effort score without an answer")
    check_department(settings, reroute_to)
    if case.status not in _FOLLOWED_UP:
        raise RuleViolation(
            f"case {case.reference} is {case.status}: follow-ups are logged after resolution"
        )

    assert case.id is not None  # a stored case
    followup = FollowUp(
        case_id=case.id,
        at=moment,
        agent_id=actor.agent_id,
        method=method.value,
        result=result.value,
        effort_score=effort_score,
        notes=notes.strip() if notes else None,
        rerouted_to=reroute_to,
    )
    session.add(followup)
    if case.status == S.RESOLVED.value:
        move(session, actor, case, S.FOLLOW_UP, moment)
    if reroute_to is not None and reroute_to != case.department:
        audit.record(
            session,
            actor,
            "case.reroute",
            "case",
            case.reference,
            {"from": case.department, "to": reroute_to},
        )
        case.department = reroute_to
        # The new department picks it up; the previous owner no longer holds it.
        case.assigned_agent_id = None

    if result is R.NOT_SATISFIED:
        case.unsatisfied_rounds += 1
        if case.unsatisfied_rounds >= settings.followup.rounds_before_escalation:
            escalate(
                session,
                settings,
                actor,
                case,
                reason=(
                    f"لم يرضَ المتصل بعد {case.unsatisfied_rounds} جولات متابعة"
                    f" (not satisfied after {case.unsatisfied_rounds} follow-up rounds)"
                ),
                now=moment,
            )
        else:
            move(session, actor, case, S.IN_PROGRESS, moment, {"why": NOT_SATISFIED_WHY})
    elif result is R.PARTIALLY_SATISFIED:
        request_followup_callback(session, settings, actor, case, moment)
    elif result is R.SATISFIED:
        case.unsatisfied_rounds = 0
    case.updated_at = moment
    session.add(case)
    session.flush()
    audit.record(
        session,
        actor,
        "followup.log",
        "case",
        case.reference,
        {"method": method.value, "result": result.value, "followup": followup.id},
    )
    return followup
