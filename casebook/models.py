"""The casebook tables (SQLModel). Times are aware UTC datetimes (SQLModel's UTCDateTime).

Enumerations are stored as their string values so the schema stays portable between SQLite
and PostgreSQL and a new value needs no database type migration.
"""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import JSON, Column, Index, Integer, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from casebook.clock import utcnow
from casebook.limits import CUT, JSON_CHARS, JSON_TEXT, bounded_text, digits_field

# Issue 17: every text is bounded, checked before the database (casebook.limits), the same on
# SQLite (which ignores VARCHAR lengths) and PostgreSQL. VARCHAR(n) fields keep their n; the
# TEXT columns stay TEXT (no migration) with these limits, in characters:
# A complaint: the longest message a flow may record (30 minutes) transcribes to ~30,000.
COMPLAINT_TEXT = 50_000
# A reason, a resolution summary, follow-up notes, a reviewer's comment; and each text in an
# audit entry's detail (a reason is kept there, so is what the PBX gave that was refused).
NOTE_TEXT = 4_000
# A job's last error: ours, not typed, so cut rather than refused.
ERROR_TEXT = 2_000
# An audit entry's detail as JSON: a listing of 10,000 references is ~130,000.
AUDIT_DETAIL_CHARS = 1_000_000
# The account or line number a caller keys in the IVR (issue 19): the longest a flow may ask.
KEYPAD_DIGITS = 20
# An agent's lists (languages, skills, shift days): short words, a few of them.
AGENT_LIST = {JSON_TEXT: 64, JSON_CHARS: 2_000}


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    QA = "qa"
    ADMIN = "admin"


class CaseStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    FOLLOW_UP = "follow_up"
    CLOSED = "closed"
    ESCALATED = "escalated"
    REJECTED = "rejected"  # a draft that turned out not to be a complaint


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class ContactMethod(StrEnum):
    PHONE = "phone"
    SMS = "sms"
    LETTER = "letter"
    VISIT = "visit"


class FollowUpResult(StrEnum):
    SATISFIED = "satisfied"
    NOT_SATISFIED = "not_satisfied"
    PARTIALLY_SATISFIED = "partially_satisfied"
    NO_ANSWER = "no_answer"


class CallbackReason(StrEnum):
    FOLLOW_UP = "follow_up"  # after resolution, ask whether the caller is satisfied
    ABANDONED = "abandoned"  # the caller hung up before a complaint was registered


class RecordingKind(StrEnum):
    CALL = "call"  # MixMonitor of the whole call, both sides
    MESSAGE = "message"  # the caller's Record()ed complaint, their voice alone
    CALLBACK = "callback"  # MixMonitor of a callback an agent placed (AMI Originate)


class DraftState(StrEnum):
    TRANSCRIBING = "transcribing"
    READY = "ready"
    NO_SPEECH = "no_speech"  # nothing said, or only noise: an empty draft, flagged
    FAILED = "failed"  # the agent types the complaint from the recording


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class CallbackStatus(StrEnum):
    PENDING = "pending"  # due (or waiting for its time), nobody holds it
    ASSIGNED = "assigned"  # an agent holds it and should call
    DONE = "done"  # the customer answered
    WRITTEN = "written"  # no answer after the last attempt: a letter or SMS is due instead
    CANCELLED = "cancelled"  # no longer wanted (the case closed or went back to work)


# A callback someone still has to make. A case has at most one open follow-up callback (the
# partial unique index below, migration 0009).
OPEN_CALLBACK_STATUSES = (CallbackStatus.PENDING.value, CallbackStatus.ASSIGNED.value)
_OPEN_FOLLOWUP = (
    f"reason = '{CallbackReason.FOLLOW_UP.value}' AND status IN "
    f"('{CallbackStatus.PENDING.value}', '{CallbackStatus.ASSIGNED.value}')"
)


class AttemptResult(StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"


def version_column() -> Column[int]:
    """A row's version for compare-and-set (casebook.concurrency): SQLAlchemy's
    ``version_id_col`` writes every UPDATE as ``... WHERE version = <the version read>`` and
    counts it on. Rows inserted by Core statements, and rows older than the column, start at 1."""
    return Column("version", Integer, nullable=False, server_default="1")


class WithCase(Protocol):
    """A stored row that may belong to a case: a table row, or what a batch write returns
    for one (``casebook.calls.StoredCall``, ``recordings.ingest.IngestedRecording``)."""

    @property
    def id(self) -> int | None: ...
    @property
    def case_id(self) -> int | None: ...


class Agent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(max_length=200)
    roles: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, info=AGENT_LIST)
    )
    department: str | None = Field(default=None, max_length=64, index=True)
    languages: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, info=AGENT_LIST)
    )
    skills: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, info=AGENT_LIST)
    )
    extension: str | None = Field(default=None, max_length=32)
    # Empty shift days mean the site's business hours apply.
    shift_days: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, info=AGENT_LIST)
    )
    shift_start: time | None = None
    shift_end: time | None = None
    active: bool = True
    # Open callbacks this agent may hold at once; None means the site's callbacks.agent_capacity.
    capacity: int | None = None
    # The fair tie-break between equally loaded agents: who waited longest gets the next one.
    last_assigned_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # Sign-in (casebook.signin). An argon2id hash; None: no password yet (an agent from before
    # sign-in existed), who can sign in only after an admin resets it.
    password_hash: str | None = Field(default=None, max_length=255)
    # A one-time password (a new agent's, or a reset): replaced at the first sign-in.
    password_must_change: bool = False
    password_set_at: datetime | None = None
    # Failed sign-ins in a row (a success resets it): slows, then locks the account.
    failed_signins: int = 0
    last_failed_signin_at: datetime | None = None
    # Set by too many failures; only an admin's password reset clears it.
    locked_at: datetime | None = None


class SigninSession(SQLModel, table=True):
    """A signed-in person's session. The token itself is never stored, only its SHA-256."""

    __tablename__ = "signin_session"

    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(max_length=64, unique=True, index=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    # Absolute end, and the idle limit it was issued with (the idle end moves with last_seen_at).
    expires_at: datetime
    idle_minutes: float
    last_seen_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    ended_why: str | None = Field(default=None, max_length=32)  # logout, disabled, reset, ...
    # Where it was signed in from (an IP address, or the local socket).
    address: str | None = Field(default=None, max_length=128)


class SigninFailure(SQLModel, table=True):
    """A failed sign-in, kept for the per-address window (an attacker trying many user names)."""

    __tablename__ = "signin_failure"

    id: int | None = Field(default=None, primary_key=True)
    # As typed, cut to the column: it may name no agent at all.
    username: str = Field(max_length=64)
    address: str = Field(max_length=128)
    at: datetime = Field(default_factory=utcnow)

    __table_args__ = (Index("ix_signin_failure_address_at", "address", "at"),)


class Call(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # Asterisk's Linkedid: one per call across all its channels; the idempotency key.
    linkedid: str = Field(max_length=64, unique=True, index=True)
    uniqueid: str | None = Field(default=None, max_length=64)
    caller_number: str | None = Field(default=None, max_length=32, index=True)
    did: str | None = Field(default=None, max_length=32)
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = Field(default=None, index=True)
    duration_seconds: float | None = None
    ivr_choices: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    hangup_cause: int | None = None
    # Asterisk's words: cut to the column, never losing the call.
    hangup_cause_text: str | None = Field(
        default=None, max_length=100, sa_column_kwargs={"info": {CUT: True}}
    )
    # The MixMonitor file Asterisk announced (MIXMONITOR_FILENAME), ingested or not yet.
    recording_path: str | None = Field(default=None, max_length=1024)
    abandoned: bool = False
    # Its recording file was missing or unreadable at ingest (recordings.ingest).
    recording_missing: bool = False
    case_id: int | None = Field(default=None, foreign_key="complaint_case.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Recording(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    call_id: int | None = Field(default=None, foreign_key="call.id", index=True)
    case_id: int | None = Field(default=None, foreign_key="complaint_case.id", index=True)
    kind: str = Field(default=RecordingKind.CALL.value, max_length=16)
    path: str = Field(max_length=1024, unique=True)
    sha256: str | None = Field(default=None, max_length=64)
    size_bytes: int | None = None
    duration_seconds: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    format: str | None = Field(default=None, max_length=16)
    retained_until: datetime | None = None
    # Set when retention deleted the file; the row stays as the record of what existed.
    deleted_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


_CASE_VERSION = version_column()


class Case(SQLModel, table=True):
    __tablename__ = "complaint_case"  # CASE is an SQL keyword
    __mapper_args__ = {"version_id_col": _CASE_VERSION}

    id: int | None = Field(default=None, primary_key=True)
    # Set in the same transaction as the insert, from the id (casebook.reference).
    reference: str | None = Field(default=None, max_length=16, unique=True, index=True)
    caller_number: str | None = Field(default=None, max_length=32, index=True)
    # The IVR registers at most one complaint per channel: retries of the same call reuse it.
    call_uniqueid: str | None = Field(default=None, max_length=64, unique=True)
    call_linkedid: str | None = Field(default=None, max_length=64, index=True)
    # The account or line number the complaint is about, keyed by the caller (exact, unlike the
    # numbers Whisper hears); searched by exact match (casebook.case_search).
    keypad_number: str | None = digits_field(KEYPAD_DIGITS)
    status: str = Field(default=CaseStatus.DRAFT.value, max_length=16)
    category: str | None = Field(default=None, max_length=64)
    priority: str = Field(default=Priority.NORMAL.value, max_length=16)
    # Indexed with created_at below: listings filter on them and show the newest first.
    department: str | None = Field(default=None, max_length=64)
    assigned_agent_id: int | None = Field(default=None, foreign_key="agent.id")
    promised_by: datetime | None = None
    escalation_level: int = 0
    # "Not satisfied" answers since the last escalation; reaching the configured rounds escalates.
    unsatisfied_rounds: int = 0
    # Whisper's (or the IVR's) text, not typed: cut at the limit, the draft kept.
    draft_text: str | None = bounded_text(COMPLAINT_TEXT, cut=True)
    draft_state: str | None = Field(default=None, max_length=16)
    confirmed_text: str | None = bounded_text(COMPLAINT_TEXT)
    confirmed_by_id: int | None = Field(default=None, foreign_key="agent.id")
    confirmed_at: datetime | None = None
    resolution_summary: str | None = bounded_text(NOTE_TEXT)
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = bounded_text(NOTE_TEXT)
    # A draft under review: who opened it and until when it is theirs (casebook.drafts); past
    # that moment it is free again, whatever these say.
    draft_lease_agent_id: int | None = Field(default=None, foreign_key="agent.id")
    draft_lease_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    # Counted on by every change (casebook.concurrency): two changes decided on one version
    # cannot both be written.
    version: int = Field(default=1, sa_column=_CASE_VERSION)

    # What search and listings filter on (casebook.case_search), each with created_at, the
    # order they show (newest first): the filter's newest cases are read off the index.
    __table_args__ = (
        Index("ix_case_status_created", "status", "created_at"),
        Index("ix_case_department_created", "department", "created_at"),
        Index("ix_case_agent_created", "assigned_agent_id", "created_at"),
        # Overdue (casebook.sla.overdue): the unresolved cases, newest first; reading them by
        # promise instead sorted every overdue case to show 50 (3 s on 1,000,000, SQLite).
        Index("ix_case_unresolved_created", "resolved_at", "created_at"),
        Index("ix_case_keypad_number_created", "keypad_number", "created_at"),
    )


# A term longer than this is no word (a run of letters with no space): cut, the query cut alike.
TERM_CHARS = 64


class CaseTerm(SQLModel, table=True):
    """The words of a case's confirmed complaint, folded (casebook.arabic.search_terms), one row
    each: search finds a word through the primary key (term, case_id), on SQLite and PostgreSQL
    alike. Written with the confirmed text (casebook.case_search.index_complaint)."""

    __tablename__ = "case_term"

    term: str = Field(max_length=TERM_CHARS, primary_key=True)
    case_id: int = Field(foreign_key="complaint_case.id", primary_key=True, index=True)

    # SQLite keeps the rows in the key itself (no second copy in a rowid table): half the size.
    __table_args__ = {"sqlite_with_rowid": False}


class Transcript(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", index=True)
    model_name: str = Field(max_length=128)
    model_sha256: str | None = Field(default=None, max_length=64)
    language: str | None = Field(default=None, max_length=8)
    language_probability: float | None = None
    text: str = bounded_text(COMPLAINT_TEXT, cut=True, default="")
    segments: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    audio_seconds: float | None = None
    processing_seconds: float | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Heartbeat(SQLModel, table=True):
    """Each running component says it is alive, and what it holds, every few seconds."""

    id: int | None = Field(default=None, primary_key=True)
    component: str = Field(max_length=32)  # listener, agi, worker, scheduler
    instance: str = Field(max_length=128)  # host:pid
    started_at: datetime = Field(default_factory=utcnow)
    seen_at: datetime = Field(default_factory=utcnow)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Set when the component stopped cleanly (SIGTERM); a killed one just falls silent.
    stopped_at: datetime | None = None

    __table_args__ = (UniqueConstraint("component", "instance"),)


class TranscriptionJob(SQLModel, table=True):
    """One job per recording, claimed under a lease so a killed worker's job is taken over."""

    __tablename__ = "transcription_job"

    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", unique=True)
    status: str = Field(default=JobStatus.QUEUED.value, max_length=16)
    attempts: int = 0
    # Not before this time (backoff after a failure).
    available_at: datetime = Field(default_factory=utcnow)
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = None
    last_error: str | None = bounded_text(ERROR_TEXT, cut=True)
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None

    __table_args__ = (Index("ix_transcription_job_claim", "status", "available_at"),)


class FollowUp(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="complaint_case.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    method: str = Field(max_length=16)
    result: str = Field(max_length=24)
    # Customer effort: "how easy was it?" on the configured scale; None when not asked.
    effort_score: int | None = None
    notes: str | None = bounded_text(NOTE_TEXT)
    rerouted_to: str | None = Field(default=None, max_length=64)


class CaseNote(SQLModel, table=True):
    """An agent's or supervisor's internal note on a case: never shown to the caller, never
    changed once written (the runtime role may only add and read them)."""

    __tablename__ = "case_note"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="complaint_case.id", index=True)
    author_id: int | None = Field(default=None, foreign_key="agent.id")
    at: datetime = Field(default_factory=utcnow)
    text: str = bounded_text(NOTE_TEXT, default="")


_CALLBACK_VERSION = version_column()


class Callback(SQLModel, table=True):
    __mapper_args__ = {"version_id_col": _CALLBACK_VERSION}

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="complaint_case.id", index=True)
    call_id: int | None = Field(default=None, foreign_key="call.id", index=True)
    phone_number: str = Field(max_length=32)
    reason: str = Field(max_length=16)
    # Who may take it: agents of this department, or with this skill, speaking this language.
    department: str | None = Field(default=None, max_length=64)
    skill: str | None = Field(default=None, max_length=64)
    language: str = Field(default="ar", max_length=8)
    # Not before this moment (moved on after an unanswered attempt).
    due_from: datetime = Field(index=True)
    # Past this moment an unfinished callback is overdue and escalated.
    overdue_at: datetime
    escalated_at: datetime | None = None
    # The customer's own call window (site time); None means the site's callbacks window.
    window_start: time | None = None
    window_end: time | None = None
    owner_agent_id: int | None = Field(default=None, foreign_key="agent.id")
    assigned_agent_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    assigned_at: datetime | None = None
    attempts: int = 0
    status: str = Field(default=CallbackStatus.PENDING.value, max_length=16, index=True)
    last_result: str | None = Field(default=None, max_length=24)
    created_at: datetime = Field(default_factory=utcnow)
    # Why and when it was cancelled (status cancelled); the row stays, with its attempts.
    cancel_reason: str | None = Field(default=None, max_length=64)
    cancelled_at: datetime | None = None
    # See Case.version.
    version: int = Field(default=1, sa_column=_CALLBACK_VERSION)

    __table_args__ = (
        Index(
            "uq_callback_open_followup",
            "case_id",
            unique=True,
            sqlite_where=text(_OPEN_FOLLOWUP),
            postgresql_where=text(_OPEN_FOLLOWUP),
        ),
    )


class CallbackAttempt(SQLModel, table=True):
    """One call placed for a callback (AMI Originate), with what came of it."""

    __tablename__ = "callback_attempt"

    id: int | None = Field(default=None, primary_key=True)
    callback_id: int = Field(foreign_key="callback.id", index=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    # The Originate's ActionID: how the OriginateResponse finds its attempt.
    action_id: str = Field(max_length=64, unique=True)
    started_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    result: str | None = Field(default=None, max_length=16)
    # The PBX's words: cut to the column.
    detail: str | None = Field(default=None, max_length=200, sa_column_kwargs={"info": {CUT: True}})


class QAReview(SQLModel, table=True):
    """One version of a recording's score (recordings.scorecard): scoring it again, by the same
    reviewer or another, adds the next version and changes none; the report reads the latest."""

    __tablename__ = "qa_review"

    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", index=True)
    # 1, 2, ... per recording, in the order they were written.
    version: int
    reviewer_id: int = Field(foreign_key="agent.id", index=True)
    scores: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    total: float | None = None
    comment: str | None = bounded_text(NOTE_TEXT)
    created_at: datetime = Field(default_factory=utcnow)

    __table_args__ = (
        UniqueConstraint("recording_id", "version", name="uq_qa_review_recording_version"),
    )


class QASample(SQLModel, table=True):
    """A recording drawn for a reviewer in the sample named by its seed (recordings.sampling)."""

    __tablename__ = "qa_sample"

    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", index=True)
    reviewer_id: int = Field(foreign_key="agent.id", index=True)
    # The stratum it was drawn from (e.g. "billing", "abandoned", "callback") and the seed.
    stratum: str = Field(max_length=80)
    seed: int
    # The period the sample was drawn over: a repeat of the seed draws over it again.
    # (None: drawn before migration 0008 kept it.)
    period_start: datetime | None = None
    period_end: datetime | None = None
    drawn_at: datetime = Field(default_factory=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "reviewer_id", "seed", "recording_id", name="uq_qa_sample_reviewer_seed_recording"
        ),
    )


class AuditEvent(SQLModel, table=True):
    """Append-only: the migration installs triggers that refuse UPDATE and DELETE."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=64, index=True)
    action: str = Field(max_length=64)
    object_type: str = Field(max_length=32)
    object_id: str | None = Field(default=None, max_length=64)
    allowed: bool = True
    detail: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(
            JSON, nullable=False, info={JSON_TEXT: NOTE_TEXT, JSON_CHARS: AUDIT_DETAIL_CHARS}
        ),
    )
    # The hash chain (casebook.audit): unique, so two entries can never claim the same parent.
    prev_hash: str = Field(default="", max_length=64, unique=True, index=True)
    hash: str = Field(default="", max_length=64)
    # 1, 2, 3... with no gap, assigned under the chain's lock (casebook.audit): ids come from a
    # sequence that skips on rollback, so only this shows that an entry is gone.
    seq: int = Field(default=0, unique=True, index=True)

    __table_args__ = (Index("ix_audit_object", "object_type", "object_id"),)


class AuditCheckpoint(SQLModel, table=True):
    """The server's signed statement that the audit log reached entry ``entry_seq`` with hash
    ``entry_hash`` (casebook.audit). Checkpoints chain to each other (``prev_mac``) and are also
    appended to a file outside the database; append-only like the log."""

    __tablename__ = "audit_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    # 1, 2, 3... with no gap, assigned under the audit chain's lock.
    number: int = Field(unique=True, index=True)
    at: datetime
    entry_seq: int
    entry_hash: str = Field(max_length=64)
    # The mac of checkpoint number - 1 (GENESIS for the first).
    prev_mac: str = Field(max_length=64)
    # "interval" (every audit.checkpoint_every entries) or "shutdown" (a clean stop: the log
    # ended at entry_seq then).
    reason: str = Field(max_length=16)
    mac: str = Field(max_length=64)
