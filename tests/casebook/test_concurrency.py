"""Changes at the same moment against one database: two processes registering complaints, and
two people (or a person and a machine) changing one record: one winner per change (issue 17)."""

from __future__ import annotations

import multiprocessing
import re
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import Session, col, select

from casebook import agents, callbacks, cases, drafts, followups, jobs
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import MIGRATIONS_DIR, Database, _alembic_config, is_sqlite
from casebook.errors import Conflict, RuleViolation
from casebook.models import (
    AttemptResult,
    AuditEvent,
    Callback,
    CallbackAttempt,
    CallbackReason,
    CallbackStatus,
    Case,
    CaseStatus,
    ContactMethod,
    FollowUp,
    FollowUpResult,
    JobStatus,
    Transcript,
    TranscriptionJob,
)
from casebook.reference import is_valid
from casebook.settings import DatabaseSettings
from hotline.app.config import Settings
from recordings.retention import Expired, apply_retention
from tests.casebook import test_jobs
from tests.conftest import Staff, owner_connection
from tests.recordings.helpers import NOW, audit_events, recorded_call

PER_PROCESS = 60


def _register_many(
    url: str, secrets: Path, process: int, start: multiprocessing.synchronize.Event
) -> None:
    settings = Settings()
    settings.database = DatabaseSettings(url=url, retry_seconds=30)
    settings.secrets.folder = secrets  # the site's reference key: both number with it
    database = Database(settings.database)
    start.wait(timeout=30)
    ivr = Actor.system(f"ivr{process}")
    for n in range(PER_PROCESS):

        def register(s: Session, n: int = n) -> Case:
            return cases.register_complaint(
                s, settings, ivr, caller_number=f"09{process}{n:07d}", uniqueid=f"{process}.{n}"
            )

        database.run(register)
    database.dispose()


def test_references_from_two_processes_at_once_never_collide(
    db: Database, settings: Settings
) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    secrets = settings.secrets.folder
    workers = [
        context.Process(target=_register_many, args=(db.settings.url, secrets, p, start))
        for p in (1, 2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0

    with db.session() as s:
        references = [case.reference for case in s.exec(select(Case))]
        registered = s.exec(select(AuditEvent).where(AuditEvent.action == "case.register")).all()
    assert len(references) == 2 * PER_PROCESS
    assert len(set(references)) == len(references)
    assert all(ref is not None and is_valid(ref) for ref in references)
    assert len(registered) == 2 * PER_PROCESS


# --- one winner per change (issue 17) -----------------------------------------------------------
#
# Each race runs two changes in two threads, each with its own session, and a barrier so that
# both have read the record before either writes. Two kinds of race:
#
# - shown, then changed (both backends): each reads the record in a unit of work of its own (as
#   a person is shown it), then changes it with the version it read (``seen_version``);
# - read and changed in one transaction (PostgreSQL): each loads the record inside the unit of
#   work that changes it. SQLite's BEGIN IMMEDIATE lets no second transaction read before the
#   first commits, so there this race cannot happen and is not run.
#
# The checks: exactly one change is written, the other is refused with Conflict (its line names
# the winner's change), the row is wholly the winner's and the audit log holds exactly the
# winner's entries.

ROUNDS = 20
DIALLER = Actor.system("dialler")
SCHEDULER = Actor.system("scheduler")
WORKER = Actor.system("worker")
BARRIER_SECONDS = 30.0

Change = Callable[[Session, int | None], object]


def _in_threads(jobs: Sequence[Callable[[threading.Barrier], object]]) -> list[object]:
    """Run each job in a thread of its own; each gets the barrier; the value or the exception."""
    barrier = threading.Barrier(len(jobs), timeout=BARRIER_SECONDS)
    outcomes: list[object] = [None] * len(jobs)

    def run(index: int) -> None:
        try:
            outcomes[index] = jobs[index](barrier)
        except BaseException as exc:
            barrier.abort()
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * BARRIER_SECONDS)
        assert not thread.is_alive()
    return outcomes


def race_as_shown(
    db: Database, version_of: Callable[[Session], int], changes: Sequence[Change]
) -> list[object]:
    """Each change reads the version on its own, waits for the others to have read, then
    changes the record with that version."""

    def job(change: Change) -> Callable[[threading.Barrier], object]:
        def run(barrier: threading.Barrier) -> object:
            seen = db.run(version_of)
            barrier.wait()
            return db.run(lambda s: change(s, seen))

        return run

    return _in_threads([job(change) for change in changes])


def race_in_one_transaction(
    db: Database, load: Callable[[Session], object], changes: Sequence[Change]
) -> list[object]:
    """Each change loads the record in its own transaction, waits until the others have loaded
    it too, then changes it in that same transaction (PostgreSQL only)."""
    if is_sqlite(db.engine):
        pytest.skip("SQLite's BEGIN IMMEDIATE lets no second transaction read before a commit")

    def job(change: Change) -> Callable[[threading.Barrier], object]:
        def run(barrier: threading.Barrier) -> object:
            waited = False

            def work(s: Session) -> object:
                nonlocal waited
                load(s)  # the services find this copy in the session: they decide on it
                if not waited:  # a retried unit of work (a deadlock) does not wait again
                    waited = True
                    barrier.wait()
                return change(s, None)

            return db.run(work)

        return run

    return _in_threads([job(change) for change in changes])


def one_winner(outcomes: list[object]) -> tuple[int, Conflict]:
    """The index of the one change written, and the other's refusal."""
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert [type(o) for o in refused] == [Conflict], outcomes
    assert isinstance(refused[0], Conflict)
    winners = [i for i, o in enumerate(outcomes) if not isinstance(o, BaseException)]
    assert len(winners) == 1
    return winners[0], refused[0]


def changed_line(subject: str, change: str, by: str, now: str) -> str:
    """What a refused change says, as a pattern (the time is the winner's, in UTC here)."""
    return (
        rf"\. {re.escape(subject)} changed meanwhile: {re.escape(change)} by {re.escape(by)} "
        rf"at (\d{{4}}-\d\d-\d\d )?\d\d:\d\d \(now {now}\); reload and try again$"
    )


def audit_of(db: Database, object_type: str, object_id: str | int) -> list[AuditEvent]:
    with db.session() as s:
        query = (
            select(AuditEvent)
            .where(AuditEvent.object_type == object_type, AuditEvent.object_id == str(object_id))
            .order_by(col(AuditEvent.id))
        )
        return list(s.exec(query))


def actions(db: Database, object_type: str, object_id: str | int) -> list[str]:
    return [entry.action for entry in audit_of(db, object_type, object_id)]


def stored_case(db: Database, reference: str) -> Case:
    with db.session() as s:
        return s.exec(select(Case).where(Case.reference == reference)).one()


def case_version(reference: str) -> Callable[[Session], int]:
    def read(s: Session) -> int:
        return s.exec(select(Case).where(Case.reference == reference)).one().version

    return read


def load_case(reference: str) -> Callable[[Session], object]:
    return lambda s: s.exec(select(Case).where(Case.reference == reference)).one()


def new_draft(db: Database, settings: Settings, n: int) -> str:
    case = db.run(
        lambda s: cases.register_complaint(
            s,
            settings,
            Actor.system("ivr"),
            caller_number="0910000001",
            uniqueid=f"race-{n}",
            draft_text="الماء مقطوع منذ يومين",
        )
    )
    assert case.reference is not None
    return case.reference


@pytest.fixture
def crew(staff: Staff) -> Staff:
    """The test site's staff and a second supervisor and a second agent of customer care."""
    staff.add("amal", ["supervisor"], "customer-care")
    staff.add("omar", ["agent"], "customer-care")
    return staff


def confirmation(settings: Settings, actor: Actor, reference: str, category: str) -> Change:
    def confirm(s: Session, seen: int | None) -> Case:
        return drafts.confirm_reviewed(
            s,
            settings,
            actor,
            reference,
            text=f"نص {actor.username}",
            category=category,
            department="billing" if category == "billing" else None,
            seen_version=seen,
        )

    return confirm


def check_one_confirmation(
    db: Database, crew: Staff, reference: str, outcomes: list[object]
) -> None:
    winner, refusal = one_winner(outcomes)
    name, category = [("supervisor", "billing"), ("amal", "network")][winner]
    assert re.search(changed_line(f"case {reference}", "confirmed", name, "open"), str(refusal))
    case = stored_case(db, reference)
    # Wholly the winner's: text, category, department and who confirmed.
    assert (case.status, case.confirmed_text, case.category) == ("open", f"نص {name}", category)
    assert case.department == ("billing" if category == "billing" else "customer-care")
    assert case.confirmed_by_id == crew.actor(name).agent_id
    # Confirmed: the draft is nobody's under review any more, nor anyone's case for ever.
    assert (case.draft_lease_agent_id, case.assigned_agent_id) == (None, None)
    log = audit_of(db, "case", reference)
    opened = [entry for entry in log if entry.action == "case.open"]
    assert [(e.actor, e.detail["category"]) for e in opened] == [(name, category)]


def test_two_confirmations_of_one_draft_as_shown_one_wins_every_time(
    db: Database, settings: Settings, crew: Staff
) -> None:
    supervisor, amal = crew.actor("supervisor"), crew.actor("amal")
    for n in range(ROUNDS):
        reference = new_draft(db, settings, n)
        outcomes = race_as_shown(
            db,
            case_version(reference),
            [
                confirmation(settings, supervisor, reference, "billing"),
                confirmation(settings, amal, reference, "network"),
            ],
        )
        check_one_confirmation(db, crew, reference, outcomes)


def test_two_confirmations_of_one_draft_in_one_transaction_each_one_wins_every_time(
    db: Database, settings: Settings, crew: Staff
) -> None:
    supervisor, amal = crew.actor("supervisor"), crew.actor("amal")
    for n in range(ROUNDS):
        reference = new_draft(db, settings, n)
        outcomes = race_in_one_transaction(
            db,
            load_case(reference),
            [
                confirmation(settings, supervisor, reference, "billing"),
                confirmation(settings, amal, reference, "network"),
            ],
        )
        check_one_confirmation(db, crew, reference, outcomes)


def case_in_progress(db: Database, settings: Settings, crew: Staff, n: int) -> str:
    reference = new_draft(db, settings, n)
    carer = crew.actor("carer")
    db.run(
        lambda s: cases.confirm_draft(s, settings, carer, reference, text="t", category="network")
    )
    db.run(lambda s: cases.start_work(s, carer, reference))
    return reference


@pytest.mark.parametrize("race", ["as shown", "in one transaction"])
def test_resolve_against_escalate_one_wins(
    db: Database, settings: Settings, crew: Staff, race: str
) -> None:
    carer, amal = crew.actor("carer"), crew.actor("amal")
    for n in range(5):
        reference = case_in_progress(db, settings, crew, n)

        def resolve(s: Session, seen: int | None, reference: str = reference) -> Case:
            return cases.resolve_case(
                s, settings, carer, reference, summary="أصلحت", seen_version=seen
            )

        def escalate(s: Session, seen: int | None, reference: str = reference) -> Case:
            return cases.escalate_case(
                s, settings, amal, reference, reason="تأخر", seen_version=seen
            )

        if race == "as shown":
            outcomes = race_as_shown(db, case_version(reference), [resolve, escalate])
        else:
            outcomes = race_in_one_transaction(db, load_case(reference), [resolve, escalate])
        winner, refusal = one_winner(outcomes)
        case = stored_case(db, reference)
        moves = [
            a for a in actions(db, "case", reference) if a in ("case.resolved", "case.escalated")
        ]
        with db.session() as s:
            callbacks_asked = s.exec(select(Callback).where(Callback.case_id == case.id)).all()
        if winner == 0:
            assert re.search(
                changed_line(f"case {reference}", "resolved", "carer", "resolved"), str(refusal)
            )
            assert (case.status, case.resolution_summary, case.escalation_level) == (
                "resolved",
                "أصلحت",
                0,
            )
            assert moves == ["case.resolved"]
            assert len(callbacks_asked) == 1  # the resolution's follow-up call, asked once
        else:
            assert re.search(
                changed_line(f"case {reference}", "escalated", "amal", "escalated"), str(refusal)
            )
            assert (case.status, case.resolution_summary, case.escalation_level) == (
                "escalated",
                None,
                1,
            )
            assert moves == ["case.escalated"]
            assert callbacks_asked == []


@pytest.mark.parametrize("race", ["as shown", "in one transaction"])
def test_two_agents_taking_one_draft_one_takes_it(
    db: Database, settings: Settings, crew: Staff, race: str
) -> None:
    carer, omar = crew.actor("carer"), crew.actor("omar")
    for n in range(5):
        reference = new_draft(db, settings, n)

        def take(actor: Actor, reference: str = reference) -> Change:
            return lambda s, seen: drafts.open_draft(
                s, settings, actor, reference, seen_version=seen
            )

        if race == "as shown":
            outcomes = race_as_shown(db, case_version(reference), [take(carer), take(omar)])
        else:
            outcomes = race_in_one_transaction(db, load_case(reference), [take(carer), take(omar)])
        winner, refusal = one_winner(outcomes)
        name = ["carer", "omar"][winner]
        pattern = changed_line(f"case {reference}", "taken for review", name, "draft")
        assert re.search(pattern, str(refusal))
        assert stored_case(db, reference).draft_lease_agent_id == crew.actor(name).agent_id
        taken = [e.actor for e in audit_of(db, "case", reference) if e.action == "draft.take"]
        assert taken == [name]


def assigned_callback(db: Database, settings: Settings, agent: Actor) -> int:
    def work(s: Session) -> int:
        callback = Callback(
            phone_number="0910000001",
            reason=CallbackReason.FOLLOW_UP.value,
            department="customer-care",
            due_from=utcnow(),
            overdue_at=utcnow() + timedelta(hours=settings.callbacks.overdue_hours),
            status=CallbackStatus.ASSIGNED.value,
            assigned_agent_id=agent.agent_id,
            assigned_at=utcnow(),
        )
        s.add(callback)
        s.flush()
        assert callback.id is not None
        return callback.id

    return db.run(work)


@pytest.mark.parametrize("race", ["as shown", "in one transaction"])
def test_two_people_dialling_one_callback_place_one_call(
    db: Database, settings: Settings, crew: Staff, race: str
) -> None:
    carer, supervisor = crew.actor("carer"), crew.actor("supervisor")
    for _ in range(5):
        callback_id = assigned_callback(db, settings, carer)

        def dial(actor: Actor, callback_id: int = callback_id) -> Change:
            return lambda s, seen: callbacks.start_attempt(
                s,
                actor,
                callback_id,
                f"{actor.username}-{callback_id}",
                utcnow(),
                seen_version=seen,
            )

        def version(s: Session, callback_id: int = callback_id) -> int:
            callback = s.get(Callback, callback_id)
            assert callback is not None
            return callback.version

        def load(s: Session, callback_id: int = callback_id) -> object:
            return s.get(Callback, callback_id)

        dials = [dial(carer), dial(supervisor)]
        if race == "as shown":
            outcomes = race_as_shown(db, version, dials)
        else:
            outcomes = race_in_one_transaction(db, load, dials)
        winner, refusal = one_winner(outcomes)
        name = ["carer", "supervisor"][winner]
        pattern = changed_line(f"callback {callback_id}", "dialled", name, "assigned")
        assert re.search(pattern, str(refusal))
        with db.session() as s:
            attempts = s.exec(
                select(CallbackAttempt).where(CallbackAttempt.callback_id == callback_id)
            ).all()
        assert [a.action_id for a in attempts] == [f"{name}-{callback_id}"]
        dialled = [
            e.actor for e in audit_of(db, "callback", callback_id) if e.action == "callback.dial"
        ]
        assert dialled == [name]


def report(
    db: Database, settings: Settings, action: str, result: AttemptResult
) -> Callable[[threading.Barrier], object]:
    def run(barrier: threading.Barrier) -> object:
        barrier.wait()
        return db.run(
            lambda s: callbacks.record_attempt_result(
                s, settings, DIALLER, action, result, utcnow()
            )
        )

    return run


def test_two_reports_of_one_attempt_count_it_once(
    db: Database, settings: Settings, crew: Staff
) -> None:
    """A result is a report of what happened: the second report is not refused, it finds the
    attempt reported and changes nothing."""
    carer = crew.actor("carer")
    for n in range(5):
        callback_id, action = assigned_callback(db, settings, carer), f"report-{n}"
        db.run(
            lambda s, c=callback_id, a=action: callbacks.start_attempt(  # type: ignore[misc]
                s, carer, c, a, utcnow()
            )
        )
        outcomes = _in_threads(
            [
                report(db, settings, action, AttemptResult.NO_ANSWER),
                report(db, settings, action, AttemptResult.BUSY),
            ]
        )
        assert not any(isinstance(o, BaseException) for o in outcomes), outcomes
        with db.session() as s:
            callback = s.get(Callback, callback_id)
            assert callback is not None
            assert (callback.attempts, callback.status) == (1, CallbackStatus.PENDING.value)
        results = [
            e for e in audit_of(db, "callback", callback_id) if e.action == "callback.result"
        ]
        assert len(results) == 1
        assert results[0].detail["result"] == callback.last_result


def resolved_case(db: Database, settings: Settings, crew: Staff, n: int) -> str:
    reference = case_in_progress(db, settings, crew, n)
    carer = crew.actor("carer")
    db.run(lambda s: cases.resolve_case(s, settings, carer, reference, summary="أصلحت"))
    return reference


@pytest.mark.parametrize("race", ["as shown", "in one transaction"])
def test_two_followups_of_one_case_one_is_logged(
    db: Database, settings: Settings, crew: Staff, race: str
) -> None:
    carer, omar = crew.actor("carer"), crew.actor("omar")
    for n in range(5):
        reference = resolved_case(db, settings, crew, n)

        def log(actor: Actor, result: FollowUpResult, reference: str = reference) -> Change:
            return lambda s, seen: followups.log_followup(
                s,
                settings,
                actor,
                reference,
                method=ContactMethod.PHONE,
                result=result,
                seen_version=seen,
            )

        logs = [log(carer, FollowUpResult.SATISFIED), log(omar, FollowUpResult.NOT_SATISFIED)]
        if race == "as shown":
            outcomes = race_as_shown(db, case_version(reference), logs)
        else:
            outcomes = race_in_one_transaction(db, load_case(reference), logs)
        winner, refusal = one_winner(outcomes)
        name, result, status = [
            ("carer", "satisfied", "follow_up"),
            ("omar", "not_satisfied", "in_progress"),
        ][winner]
        pattern = changed_line(f"case {reference}", "a follow-up logged", name, status)
        assert re.search(pattern, str(refusal))
        case = stored_case(db, reference)
        assert case.status == status
        with db.session() as s:
            logged = s.exec(select(FollowUp).where(FollowUp.case_id == case.id)).all()
        assert [f.result for f in logged] == [result]
        entries = [e for e in audit_of(db, "case", reference) if e.action == "followup.log"]
        assert [(e.actor, e.detail["result"]) for e in entries] == [(name, result)]


@pytest.mark.parametrize("race", ["as shown", "in one transaction"])
def test_two_closings_of_one_case_close_it_once(
    db: Database, settings: Settings, crew: Staff, race: str
) -> None:
    carer, supervisor, amal = crew.actor("carer"), crew.actor("supervisor"), crew.actor("amal")
    for n in range(5):
        reference = resolved_case(db, settings, crew, n)
        db.run(
            lambda s, reference=reference: followups.log_followup(  # type: ignore[misc]
                s,
                settings,
                carer,
                reference,
                method=ContactMethod.PHONE,
                result=FollowUpResult.SATISFIED,
            )
        )

        def close(actor: Actor, reference: str = reference) -> Change:
            return lambda s, seen: cases.close_case(
                s, actor, reference, reason=f"by {actor.username}", seen_version=seen
            )

        closes = [close(supervisor), close(amal)]
        if race == "as shown":
            outcomes = race_as_shown(db, case_version(reference), closes)
        else:
            outcomes = race_in_one_transaction(db, load_case(reference), closes)
        winner, refusal = one_winner(outcomes)
        name = ["supervisor", "amal"][winner]
        assert re.search(changed_line(f"case {reference}", "closed", name, "closed"), str(refusal))
        closed = [e for e in audit_of(db, "case", reference) if e.action == "case.closed"]
        assert [e.actor for e in closed] == [name]
        assert stored_case(db, reference).status == "closed"


def test_a_change_written_over_one_it_did_not_see_is_refused_not_mixed(
    db: Database, settings: Settings, crew: Staff
) -> None:
    """The version column holds even for a write that does not claim its row: the older copy
    is refused (Conflict, through Database.run) and the newer change stays whole."""
    reference = case_in_progress(db, settings, crew, 0)
    with db.session() as s:
        stale = s.exec(select(Case).where(Case.reference == reference)).one()
    carer = crew.actor("carer")
    db.run(lambda s: cases.resolve_case(s, settings, carer, reference, summary="أصلحت"))

    def overwrite(s: Session) -> None:
        copy = s.merge(stale, load=False)  # the old version, as a careless path would hold it
        copy.category = "billing"
        s.flush()

    with pytest.raises(Conflict, match="a case changed meanwhile; reload and try again"):
        db.run(overwrite)
    case = stored_case(db, reference)
    assert (case.status, case.category, case.resolution_summary) == ("resolved", "network", "أصلحت")


def disabling(db: Database, actor: Actor, target: str) -> Callable[[threading.Barrier], object]:
    def run(barrier: threading.Barrier) -> object:
        barrier.wait()
        return db.run(lambda s: agents.disable_agent(s, actor, target, now=utcnow()))

    return run


def disables(db: Database, targets: Sequence[str]) -> int:
    return sum(
        entry.action == "agent.disable"
        for target in targets
        for entry in audit_of(db, "agent", target)
    )


def test_two_admins_disabling_each_other_leave_the_site_an_admin(
    db: Database, settings: Settings, staff: Staff
) -> None:
    staff.add("admin2", ["admin"], None)
    both = ("admin", "admin2")
    for _ in range(5):
        first, second = staff.actor("admin"), staff.actor("admin2")
        before = disables(db, both)
        outcomes = _in_threads([disabling(db, first, "admin2"), disabling(db, second, "admin")])
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(refused) == 1 and isinstance(refused[0], RuleViolation), outcomes
        assert "last active admin" in str(refused[0])
        with db.session() as s:
            left = [admin.username for admin in agents.usable_admins(s)]
        assert len(left) == 1
        assert disables(db, both) == before + 1
        # Whoever is left enables the other for the next round.
        gone = "admin2" if left == ["admin"] else "admin"
        keeper = staff.actor(left[0])
        db.run(lambda s, k=keeper, g=gone: agents.enable_agent(s, k, g))  # type: ignore[misc]


def retention_run(db: Database, settings: Settings) -> Callable[[threading.Barrier], object]:
    def run(barrier: threading.Barrier) -> object:
        barrier.wait()
        return db.run(lambda s: apply_retention(s, settings, SCHEDULER, NOW, False))

    return run


def test_two_retention_runs_at_once_delete_and_audit_each_recording_once(
    db: Database, settings: Settings
) -> None:
    """Retention reports deletions: the second run is not refused, it passes over what the
    first holds or finds it deleted."""
    old = NOW - timedelta(days=400)
    recorded = [
        recorded_call(db, settings, f"old{n}", status=CaseStatus.CLOSED, created=old)
        for n in range(4)
    ]
    outcomes = _in_threads([retention_run(db, settings), retention_run(db, settings)])
    assert not any(isinstance(o, BaseException) for o in outcomes), outcomes
    runs = [cast(list[Expired], outcome) for outcome in outcomes]
    deleted = [item.recording_id for run in runs for item in run if item.deleted]
    ids = sorted(r.id or 0 for r in recorded)
    assert sorted(deleted) == ids  # each by one run
    deletions = [int(e.object_id or 0) for e in audit_events(db, "recording.delete")]
    assert sorted(deletions) == ids


def test_a_late_finish_and_a_takeover_of_one_job_never_both_hold_it(
    db: Database, settings: Settings
) -> None:
    """A worker finishing a job whose lease ran out, while another worker takes it over: either
    the finish is stored and nobody takes the job, or the other worker has it and the finish
    stores nothing."""
    policy = jobs.QueuePolicy(lease_seconds=60)
    later = NOW + timedelta(seconds=120)  # the first lease has run out
    for n in range(10):
        (job_id,) = test_jobs.queue_recordings(db, settings, 1, first=n)
        leased = db.run(lambda s: jobs.claim_next_job(s, "late", policy, NOW))
        assert leased is not None and leased.id == job_id

        def finish(barrier: threading.Barrier, job_id: int = job_id) -> object:
            barrier.wait()
            data = test_jobs.transcript()
            return db.run(lambda s: jobs.finish_job(s, WORKER, job_id, "late", data, later))

        def take_over(barrier: threading.Barrier) -> object:
            barrier.wait()
            return db.run(lambda s: jobs.claim_next_job(s, "next", policy, later))

        finished, taken = _in_threads([finish, take_over])
        assert not isinstance(finished, BaseException) and not isinstance(taken, BaseException)
        with db.session() as s:
            job = s.get(TranscriptionJob, job_id)
            assert job is not None
            stored = s.exec(
                select(Transcript).where(Transcript.recording_id == job.recording_id)
            ).all()
        if finished is not None:
            assert taken is None
            assert (job.status, len(stored)) == (JobStatus.DONE.value, 1)
        else:
            assert taken is not None and taken.id == job_id  # type: ignore[attr-defined]
            assert (job.status, job.lease_owner, stored) == (JobStatus.RUNNING.value, "next", [])


def test_the_version_migration_keeps_the_rows_and_starts_them_at_1(
    db: Database, settings: Settings, crew: Staff
) -> None:
    """Down below 0006 and up again, with a case, its call and its callback stored: the rows
    stay (SQLite adds the column in place, so the foreign keys to them still hold), start at
    version 1 and take changes as before."""
    reference = resolved_case(db, settings, crew, 0)
    below = ScriptDirectory(str(MIGRATIONS_DIR)).get_revision("0006").down_revision
    assert isinstance(below, str)
    with owner_connection(db) as connection:  # the owner migrates (PostgreSQL's roles)
        command.downgrade(_alembic_config(connection), below)
    with owner_connection(db) as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("complaint_case")}
        assert "version" not in columns
        command.upgrade(_alembic_config(connection), "head")
    db.engine.dispose()  # connections that cached the old table shapes
    with db.engine.begin() as connection:
        versions = connection.execute(
            text("SELECT version FROM complaint_case UNION ALL SELECT version FROM callback")
        ).scalars()
        assert list(versions) == [1, 1]
        if is_sqlite(db.engine):
            assert list(connection.execute(text("PRAGMA foreign_key_check"))) == []
    carer = crew.actor("carer")
    db.run(
        lambda s: followups.log_followup(
            s,
            settings,
            carer,
            reference,
            method=ContactMethod.PHONE,
            result=FollowUpResult.SATISFIED,
            seen_version=1,
        )
    )
    assert stored_case(db, reference).version == 2
