"""The audit log: who did what to which object, and when.

Append-only by the database's own rule (triggers, see the first migration) and hash-chained:
each entry stores the hash of the one before it and its own hash over that link and its
content, so an entry edited or deleted behind the code's back breaks the chain at that point.
Every entry goes through ``append`` (or ``record_many``): appends are serialised (an advisory
lock on PostgreSQL, the write lock BEGIN IMMEDIATE takes on SQLite), each entry gets the next
``seq`` (1, 2, 3... with no gap: database ids skip on rollback, so only seq shows a deleted
entry), and unique indexes on ``prev_hash`` and ``seq`` make a fork impossible even if they
were not serialised.

A chain alone does not survive whoever owns the database: they can lift the triggers, delete
or edit entries and re-hash everything after. So the server also signs **checkpoints**: "the log
reached entry seq S with hash H", every ``audit.checkpoint_every`` entries and at each clean
stop, with a key kept outside the database (casebook.site_secrets). Checkpoints chain to each
other (each names the previous one's mac), are stored in ``audit_checkpoint`` and appended, once
committed, as one JSON line to a file in the secrets folder. ``verify_chain`` checks the chain,
the seq numbering, every checkpoint's signature and chain, that each checkpoint still matches
the entry it names, and that the table and the file hold the same checkpoints. What stays
unprovable: entries after the last checkpoint of a server that was killed (not stopped) may be
removed without trace; at most ``checkpoint_every - 1`` of them.

Why HMAC-SHA256 and not Ed25519: one party signs and verifies (the server, which holds the key;
nobody else checks checkpoints without it), so a public key buys nothing, and the standard
library has ``hmac`` while Ed25519 would need the ``cryptography`` package, which this project
does not ship. No syslog copy: verify must read the witness back, and a file it can read is one
it can compare; a site that runs a log host can ship the file's lines there as well.

Existing chains (a site upgraded to migration 0005) have no checkpoint: the server signs the
first one at its next append, covering every entry before it; until then verify says so.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import event as orm_events
from sqlalchemy import inspect
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, select

from casebook import pg_locks, site_secrets
from casebook.access import Actor
from casebook.batch import execute_many
from casebook.clock import ensure_aware, utcnow
from casebook.errors import AccessDenied
from casebook.limits import check_row, fitted_json
from casebook.models import AuditCheckpoint, AuditEvent
from casebook.paging import Page, take_page
from casebook.settings import CasebookConfig

log = logging.getLogger(__name__)

# The link before the first entry.
GENESIS = "0" * 64


class Linkable(Protocol):
    """What the chain hashes of an entry: an ``AuditEvent``, or a ``_Row`` on its way in."""

    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str | None
    allowed: bool
    detail: dict[str, Any]


def entry_hash(prev_hash: str, event: Linkable) -> str:
    """sha256 over the previous link and the entry's canonical JSON. Never change this: every
    stored hash was computed with it. The id is left out: it is only known after the insert."""
    content = {
        "at": ensure_aware(event.at).astimezone(UTC).isoformat(),
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "allowed": bool(event.allowed),
        "detail": event.detail,
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _lock_the_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        pg_locks.lock_in_this_schema(session, pg_locks.AUDIT_CHAIN)


# The session remembers the chain's head for the rest of its transaction, so a transaction
# that appends many entries (an assignment run, a batch of calls) reads it and flushes once.
_HEAD = "audit_chain_head"
# The server's CheckpointSigner, in the info of the sessions of a Database that signs
# (Database.sign_audit_checkpoints); other processes' sessions have none and sign nothing.
SIGNER = "audit_checkpoint_signer"
# Checkpoints added in this transaction, with their file line: written once it commits.
_UNWRITTEN = "audit_checkpoints_unwritten"


@dataclass
class _ChainHead:
    transaction: SessionTransaction | None
    seq: int
    hash: str
    # The last checkpoint, once read (only a signing session reads it).
    checkpoint: Checkpoint | None = None
    checkpoint_read: bool = False


@orm_events.listens_for(Session, "after_transaction_end")
def _forget_head(session: Session, transaction: SessionTransaction) -> None:
    # A savepoint that ends may have taken entries with it (rollback): read the head again.
    if transaction.nested:
        session.info.pop(_HEAD, None)
    elif transaction.parent is None:
        # Rolled back (after a commit, _write_checkpoint_lines has taken them already).
        session.info.pop(_UNWRITTEN, None)


@orm_events.listens_for(Session, "after_commit")
def _write_checkpoint_lines(session: Session) -> None:
    """Checkpoints go to their file only once committed: a line in the file is a checkpoint
    the database had. One rolled back with a savepoint is no longer persistent: skipped."""
    for row, path, line in session.info.pop(_UNWRITTEN, ()):
        if inspect(row).persistent:
            append_checkpoint_line(path, line)


def _head(session: Session) -> _ChainHead:
    remembered = session.info.get(_HEAD)
    if remembered is not None and remembered.transaction is session.get_transaction():
        return remembered  # type: ignore[no-any-return]
    _lock_the_chain(session)
    # Autoflush first: an entry added earlier in this transaction is the last one.
    session.flush()
    last = session.exec(
        select(AuditEvent.seq, AuditEvent.hash).order_by(col(AuditEvent.seq).desc()).limit(1)
    ).first()
    head = _ChainHead(session.get_transaction(), *(last or (0, GENESIS)))
    session.info[_HEAD] = head
    return head


_PLAIN_VALUES = frozenset({str, int, float, bool, type(None)})


class _NotPlain(Exception):
    """A value JSON would give back changed (a tuple, a date, a key that is not a string)."""


def _plain_copy(value: Any) -> Any:
    """A copy of ``value`` made only of what JSON gives back unchanged, else ``_NotPlain``."""
    kind = type(value)
    if kind in _PLAIN_VALUES:
        return value
    if kind is list:
        return [_plain_copy(item) for item in value]
    if kind is dict and all(type(key) is str for key in value):
        return {key: _plain_copy(item) for key, item in value.items()}
    raise _NotPlain


def _as_stored(detail: dict[str, Any]) -> dict[str, Any]:
    """``detail`` as the JSON column will give it back, so the hash verifies after a reload.
    Most details already are (only strings, numbers, lists and dicts): copied, they skip the
    round trip through JSON."""
    try:
        copy: dict[str, Any] = _plain_copy(detail)
    except _NotPlain:
        copy = json.loads(json.dumps(detail, ensure_ascii=False, default=str))
    return copy


def append(session: Session, entry: AuditEvent) -> AuditEvent:
    """Link an unsaved entry to the end of the chain and add it. The one way in. Entries are
    inserted in the order they were added, so ids follow the chain."""
    entry.detail = _as_stored(entry.detail)
    entry.at = ensure_aware(entry.at)
    head = _head(session)
    entry.prev_hash = head.hash
    entry.seq = head.seq + 1
    entry.hash = entry_hash(entry.prev_hash, entry)
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    _checkpoint_if_due(session, head)
    return entry


@dataclass(slots=True)
class _Row:
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str | None
    allowed: bool
    detail: dict[str, Any]
    prev_hash: str = ""
    hash: str = ""
    seq: int = 0


_INSERT_ENTRY = AuditEvent.__table__.insert()  # type: ignore[attr-defined]

# (action, object_type, object_id, detail), as ``record`` takes them.
Entry = tuple[str, str, str | int | None, dict[str, Any] | None]


def record_many(session: Session, actor: Actor | str, entries: Sequence[Entry]) -> None:
    """``record`` for many entries by one actor, in order: the same entries and links, inserted
    in one statement instead of one object each (a batch of calls writes hundreds)."""
    if not entries:
        return
    who = actor if isinstance(actor, str) else actor.username
    at = utcnow()  # one moment: they are written in one transaction
    rows = [
        _Row(
            at=at,
            actor=who,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id)[:64],
            allowed=True,
            detail=_as_stored(detail or {}),
        )
        for action, object_type, object_id, detail in entries
    ]
    for row in rows:  # the limits every ORM write has (casebook.limits), before any insert
        check_row(AuditEvent, {name: getattr(row, name) for name in _Row.__slots__})
    head = _head(session)
    session.flush()  # entries added before (``append``) go in first: ids follow the chain
    for row in rows:
        row.prev_hash = head.hash
        row.seq = head.seq + 1
        row.hash = entry_hash(row.prev_hash, row)
        head.seq, head.hash = row.seq, row.hash
    execute_many(
        session.connection(),
        _INSERT_ENTRY,
        [{name: getattr(row, name) for name in _Row.__slots__} for row in rows],
    )
    _checkpoint_if_due(session, head)


def record(
    session: Session,
    actor: Actor | str,
    action: str,
    object_type: str,
    object_id: str | int | None = None,
    detail: dict[str, Any] | None = None,
    *,
    allowed: bool = True,
) -> AuditEvent:
    return append(session, _event(actor, action, object_type, object_id, detail, allowed=allowed))


def _event(
    actor: Actor | str,
    action: str,
    object_type: str,
    object_id: str | int | None,
    detail: dict[str, Any] | None,
    *,
    allowed: bool,
) -> AuditEvent:
    return AuditEvent(
        actor=actor if isinstance(actor, str) else actor.username,
        action=action,
        object_type=object_type,
        # The column is short; the full value belongs in ``detail``.
        object_id=None if object_id is None else str(object_id)[:64],
        allowed=allowed,
        detail=detail or {},
    )


def denial(
    actor: Actor | str,
    action: str,
    object_type: str,
    object_id: str | int | None,
    reason: str,
    *,
    detail: dict[str, Any] | None = None,
    error: type[AccessDenied] = AccessDenied,
) -> AccessDenied:
    """The exception to raise for a refusal; the unit of work records it (see casebook.db).
    What the person typed into ``detail`` is cut to the audit's limits rather than refused: a
    refusal is on record whatever was typed."""
    stored = fitted_json(AuditEvent, "detail", {"reason": reason, **(detail or {})})
    event = _event(actor, action, object_type, object_id, stored, allowed=False)
    return error(reason, event)


def list_events(
    session: Session,
    actor: Actor,
    *,
    since: datetime | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    limit: int | None = 100,
) -> Page[AuditEvent]:
    _require_audit_reader(actor, "audit.list")
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc())
    if since is not None:
        query = query.where(AuditEvent.at >= ensure_aware(since))
    if object_type is not None:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id is not None:
        query = query.where(AuditEvent.object_id == object_id)
    page = take_page(session, query, limit)
    record(session, actor, "audit.list", "audit", None, {"rows": len(page.items)})
    return page


def _require_audit_reader(actor: Actor, action: str) -> None:
    if not actor.can("view_audit"):
        raise denial(actor, action, "audit", None, f"{actor.username} may not read the audit log")


# --- signed checkpoints -------------------------------------------------------------------------

INTERVAL = "interval"  # after audit.checkpoint_every entries
SHUTDOWN = "shutdown"  # at a clean stop of a server process: the log ended there then
# Domain separation: what this key signs is a checkpoint of this format, nothing else.
_MAC_CONTEXT = b"15654 hotline audit checkpoint v1\n"
CHECKPOINT_FILE_NAME = "audit-checkpoints.jsonl"


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint as plain values, as the table and the file hold it."""

    number: int
    at: datetime
    entry_seq: int
    entry_hash: str
    prev_mac: str
    reason: str
    mac: str = ""

    def signed_content(self) -> bytes:
        content = {
            "number": self.number,
            "at": ensure_aware(self.at).astimezone(UTC).isoformat(),
            "entry_seq": self.entry_seq,
            "entry_hash": self.entry_hash,
            "prev_mac": self.prev_mac,
            "reason": self.reason,
        }
        return _MAC_CONTEXT + json.dumps(content, sort_keys=True, separators=(",", ":")).encode()

    def signed_by(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, _mac(key, self))

    def line(self) -> str:
        """The file's form: the signed content and the mac, one JSON object."""
        content = json.loads(self.signed_content().removeprefix(_MAC_CONTEXT))
        return json.dumps(content | {"mac": self.mac}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> Checkpoint:
        """Raises ValueError (or KeyError, TypeError) for a line that is not a checkpoint."""
        data = json.loads(line)
        return cls(
            number=int(data["number"]),
            at=datetime.fromisoformat(data["at"]),
            entry_seq=int(data["entry_seq"]),
            entry_hash=str(data["entry_hash"]),
            prev_mac=str(data["prev_mac"]),
            reason=str(data["reason"]),
            mac=str(data["mac"]),
        )

    @classmethod
    def from_row(cls, row: AuditCheckpoint) -> Checkpoint:
        return cls(
            number=row.number,
            at=ensure_aware(row.at),
            entry_seq=row.entry_seq,
            entry_hash=row.entry_hash,
            prev_mac=row.prev_mac,
            reason=row.reason,
            mac=row.mac,
        )

    def describe(self) -> str:
        at = ensure_aware(self.at).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        stop = " at a clean stop" if self.reason == SHUTDOWN else ""
        return f"checkpoint {self.number} (up to entry {self.entry_seq}, signed {at}{stop})"


def _mac(key: bytes, checkpoint: Checkpoint) -> str:
    return hmac.new(key, checkpoint.signed_content(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class CheckpointSigner:
    """What the server signs checkpoints with: the site's audit key, the file every checkpoint
    is appended to, and how many entries apart they are."""

    key: bytes = field(repr=False)
    file: Path
    every: int

    @classmethod
    def for_site(cls, settings: CasebookConfig) -> CheckpointSigner:
        """The site's signer; ``SiteSecretError`` (one line) when the key is missing or unsafe."""
        key = site_secrets.load_key(settings.secrets, site_secrets.AUDIT_KEY)
        return cls(key, checkpoint_file(settings), settings.audit.checkpoint_every)

    def sign(self, checkpoint: Checkpoint) -> Checkpoint:
        return replace(checkpoint, mac=_mac(self.key, checkpoint))


def checkpoint_file(settings: CasebookConfig) -> Path:
    configured = settings.audit.checkpoint_file
    return configured if configured is not None else settings.secrets.folder / CHECKPOINT_FILE_NAME


def _last_checkpoint(session: Session, head: _ChainHead) -> Checkpoint | None:
    if not head.checkpoint_read:
        query = select(AuditCheckpoint).order_by(col(AuditCheckpoint.number).desc()).limit(1)
        row = session.exec(query).first()
        head.checkpoint = None if row is None else Checkpoint.from_row(row)
        head.checkpoint_read = True
    return head.checkpoint


def _checkpoint_if_due(session: Session, head: _ChainHead) -> None:
    signer: CheckpointSigner | None = session.info.get(SIGNER)
    if signer is None:
        return
    last = _last_checkpoint(session, head)
    # No checkpoint yet (a new site, or a chain from before migration 0005): the first append
    # the server makes signs everything up to it.
    if last is None or head.seq - last.entry_seq >= signer.every:
        _add_checkpoint(session, signer, head, INTERVAL)


def _add_checkpoint(
    session: Session, signer: CheckpointSigner, head: _ChainHead, reason: str
) -> Checkpoint:
    last = _last_checkpoint(session, head)
    checkpoint = signer.sign(
        Checkpoint(
            number=1 if last is None else last.number + 1,
            at=utcnow(),
            entry_seq=head.seq,
            entry_hash=head.hash,
            prev_mac=GENESIS if last is None else last.mac,
            reason=reason,
        )
    )
    row = AuditCheckpoint(
        number=checkpoint.number,
        at=checkpoint.at,
        entry_seq=checkpoint.entry_seq,
        entry_hash=checkpoint.entry_hash,
        prev_mac=checkpoint.prev_mac,
        reason=checkpoint.reason,
        mac=checkpoint.mac,
    )
    session.add(row)
    head.checkpoint = checkpoint
    session.info.setdefault(_UNWRITTEN, []).append((row, signer.file, checkpoint.line()))
    return checkpoint


def write_checkpoint(
    session: Session, signer: CheckpointSigner, reason: str = SHUTDOWN
) -> Checkpoint | None:
    """Sign the log as it stands (a clean stop: ``SHUTDOWN``); None when it is empty."""
    head = _head(session)  # takes the chain's lock: nothing is appended meanwhile
    if head.seq == 0:
        return None
    return _add_checkpoint(session, signer, head, reason)


def append_checkpoint_line(path: Path, line: str) -> None:
    """One line at the end of the file (created 0600). A failure is logged, not raised: the
    checkpoint is committed already; the next start of the server writes what is missing
    (``catch_up_checkpoint_file``) and verify reports it until then."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            # One write of one line: O_APPEND keeps lines from several processes whole.
            os.write(descriptor, (line + "\n").encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        log.error("cannot append an audit checkpoint to %s: %s", path, exc.strerror)


@dataclass(frozen=True)
class CheckpointFile:
    """What the checkpoint file holds: its checkpoints by number (as read, signed or not) and
    the line numbers of lines that are not checkpoints."""

    exists: bool
    checkpoints: dict[int, list[Checkpoint]]
    unreadable_lines: list[int]


def read_checkpoint_file(path: Path) -> CheckpointFile:
    try:
        text_lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return CheckpointFile(False, {}, [])
    except (OSError, UnicodeDecodeError) as exc:
        raise site_secrets.SiteSecretError(
            f"cannot read the audit checkpoint file {path} ({exc})"
        ) from None
    checkpoints: dict[int, list[Checkpoint]] = {}
    unreadable: list[int] = []
    for number, line in enumerate(text_lines, start=1):
        if not line.strip():
            continue
        try:
            checkpoint = Checkpoint.from_line(line)
        except (ValueError, KeyError, TypeError):
            unreadable.append(number)
            continue
        same = checkpoints.setdefault(checkpoint.number, [])
        if checkpoint not in same:  # a line written twice (catch-up racing a writer) is one
            same.append(checkpoint)
    return CheckpointFile(True, checkpoints, unreadable)


def catch_up_checkpoint_file(session: Session, signer: CheckpointSigner) -> int:
    """Append to the file the signed checkpoints the table has past the file's last one (the
    server stopped between a commit and its line); how many. Only checkpoints this key signed
    are written, and only after the file's end: a line taken out of the middle stays missing."""
    on_file = read_checkpoint_file(signer.file).checkpoints
    last = max(on_file, default=0)
    query = (
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.number) > last)
        .order_by(col(AuditCheckpoint.number))
    )
    written = 0
    for row in session.exec(query):
        checkpoint = Checkpoint.from_row(row)
        if checkpoint.signed_by(signer.key):
            append_checkpoint_line(signer.file, checkpoint.line())
            written += 1
    return written


# --- verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    """The first entry where the hash chain does not hold."""

    event_id: int
    seq: int
    kind: str  # "edited": its content no longer matches its hash; "unlinked": one before it is gone
    message: str


@dataclass(frozen=True)
class AuditProblem:
    """One thing verify found, as one line; ``first_seq``..``last_seq``: the entries affected,
    when it concerns entries."""

    kind: str
    message: str
    first_seq: int | None = None
    last_seq: int | None = None


@dataclass(frozen=True)
class ChainReport:
    entries: int
    # The last hash and seq: what the next checkpoint signs.
    head: str
    first_break: ChainBreak | None
    head_seq: int = 0
    problems: tuple[AuditProblem, ...] = ()
    # Checkpoints signed with the site's key (table and file together).
    checkpoints: int = 0
    last_checkpoint: Checkpoint | None = None
    # Entries after the last checkpoint: not signed yet (the next checkpoint or stop signs them).
    unsigned: int = 0

    @property
    def intact(self) -> bool:
        return self.first_break is None and not self.problems


def _entries_text(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first}..{last}"


class _LogWalk:
    """The entries in seq order, once: the hash chain, the numbering, and whether each
    checkpoint's (seq, hash) is still there."""

    def __init__(self, checkpoints: Sequence[Checkpoint]) -> None:
        self.by_seq: dict[int, list[Checkpoint]] = {}
        for checkpoint in checkpoints:
            self.by_seq.setdefault(checkpoint.entry_seq, []).append(checkpoint)
        self.matched: dict[int, bool] = {}  # checkpoint number -> its entry is as signed
        self.entries = 0
        self.head, self.head_seq = GENESIS, 0
        self.first_break: ChainBreak | None = None
        self.problems: list[AuditProblem] = []
        # A run of consecutive edited entries: the first one's (seq, id) and the last seq.
        self._edited: tuple[int, int, int] | None = None

    def feed(self, event: AuditEvent) -> None:
        assert event.id is not None  # loaded rows
        self.entries += 1
        expected = self.head_seq + 1
        gap = event.seq > expected
        if gap:
            are = "is" if event.seq - 1 == expected else "are"
            where = (
                f"the log starts at entry {event.seq}"
                if expected == 1
                else f"entry {expected - 1} is followed by entry {event.seq}"
            )
            self.problems.append(
                AuditProblem(
                    "missing",
                    f"audit {_entries_text(expected, event.seq - 1)} {are} missing ({where}): "
                    "deleted",
                    expected,
                    event.seq - 1,
                )
            )
        elif event.seq < expected:
            self.problems.append(
                AuditProblem(
                    "numbering",
                    f"audit entry id {event.id} has seq {event.seq}, expected {expected}: "
                    "renumbered",
                    event.seq,
                    event.seq,
                )
            )
        if event.prev_hash != self.head:
            message = (
                f"audit entry {event.seq} (id {event.id}) does not follow the entry before it: "
                "an entry before it was deleted or edited"
            )
            self._break(event, "unlinked", message)
            if not gap:  # a gap already says why
                self.problems.append(AuditProblem("unlinked", message, event.seq, event.seq))
        if entry_hash(event.prev_hash, event) != event.hash:
            self._break(event, "edited", f"audit entry {event.seq} was edited after it was written")
            first_seq, first_id, _last = self._edited or (event.seq, event.id, event.seq)
            self._edited = (first_seq, first_id, event.seq)
        else:
            self._end_edited_run()
        for checkpoint in self.by_seq.get(event.seq, ()):
            self.matched[checkpoint.number] = checkpoint.entry_hash == event.hash
        self.head, self.head_seq = event.hash, event.seq

    def _break(self, event: AuditEvent, kind: str, message: str) -> None:
        if self.first_break is None:
            assert event.id is not None
            self.first_break = ChainBreak(event.id, event.seq, kind, message)

    def _end_edited_run(self) -> None:
        if self._edited is None:
            return
        first_seq, first_id, last_seq = self._edited
        if first_seq == last_seq:
            message = f"audit entry {first_seq} (id {first_id}) was edited after it was written"
        else:
            message = f"audit entries {first_seq}..{last_seq} were edited after they were written"
        self.problems.append(AuditProblem("edited", message, first_seq, last_seq))
        self._edited = None

    def finish(self) -> None:
        self._end_edited_run()


def check_chain(events: Iterable[AuditEvent]) -> ChainReport:
    """The hash chain and the seq numbering over entries in seq order (no checkpoints)."""
    walk = _LogWalk(())
    for event in events:
        walk.feed(event)
    walk.finish()
    return ChainReport(
        walk.entries, walk.head, walk.first_break, walk.head_seq, tuple(walk.problems)
    )


def _checkpoints_against_entries(
    checkpoints: Sequence[Checkpoint], walk: _LogWalk
) -> Iterator[AuditProblem]:
    """Runs of checkpoints whose entry is gone or changed, one line a run: the first of them
    bounds where the change is (after the last checkpoint that still matches)."""
    matched_seq = 0
    run: list[Checkpoint] = []

    def report() -> AuditProblem:
        first, later = run[0], len(run) - 1
        also = ""
        if later == 1:
            also = "; the checkpoint after it does not match either"
        elif later > 1:
            also = f"; the {later} checkpoints after it do not match either"
        if first.entry_seq > walk.head_seq:
            return AuditProblem(
                "truncated",
                f"the log ends at entry {walk.head_seq} but {first.describe()} signed it up to "
                f"entry {first.entry_seq}: {_entries_text(walk.head_seq + 1, first.entry_seq)} "
                f"deleted{also}",
                walk.head_seq + 1,
                first.entry_seq,
            )
        present = first.number in walk.matched
        what = "has another hash" if present else "is missing"
        return AuditProblem(
            "rewritten",
            f"{first.describe()} no longer matches the log (entry {first.entry_seq} {what}): "
            f"{_entries_text(matched_seq + 1, first.entry_seq)} "
            f"{'was' if matched_seq + 1 == first.entry_seq else 'were'} edited, deleted or "
            f"re-hashed after it was signed{also}",
            matched_seq + 1,
            first.entry_seq,
        )

    for checkpoint in checkpoints:
        if walk.matched.get(checkpoint.number, False):
            if run:
                yield report()
                run = []
            matched_seq = checkpoint.entry_seq
        else:
            run.append(checkpoint)
    if run:
        yield report()


def _numbers_text(numbers: Sequence[int]) -> str:
    if len(numbers) == 1:
        return f"checkpoint {numbers[0]}"
    if numbers[-1] - numbers[0] == len(numbers) - 1:
        return f"checkpoints {numbers[0]}..{numbers[-1]}"
    return "checkpoints " + ", ".join(str(n) for n in numbers)


def _compare_checkpoints(
    table: dict[int, Checkpoint], on_file: CheckpointFile, key: bytes, path: Path
) -> tuple[list[Checkpoint], list[AuditProblem]]:
    """Signatures, the checkpoints' own chain, and the table against the file. Returns the
    checkpoints signed with the site's key (from either side, one per number and content) and
    the problems."""
    problems: list[AuditProblem] = []
    signed: dict[tuple[int, str], Checkpoint] = {}
    for number, checkpoint in sorted(table.items()):
        if checkpoint.signed_by(key):
            signed[number, checkpoint.mac] = checkpoint
        else:
            problems.append(
                AuditProblem(
                    "forged",
                    f"checkpoint {number} in the database is not signed with this site's key: "
                    "forged or altered",
                )
            )
    for number, versions in sorted(on_file.checkpoints.items()):
        for checkpoint in versions:
            if checkpoint.signed_by(key):
                signed[number, checkpoint.mac] = checkpoint
            else:
                problems.append(
                    AuditProblem(
                        "forged",
                        f"checkpoint {number} in {path} is not signed with this site's key: "
                        "forged or altered",
                    )
                )
    if on_file.unreadable_lines:
        lines = ", ".join(str(n) for n in on_file.unreadable_lines[:10])
        problems.append(
            AuditProblem("forged", f"{path}: line {lines} is not a checkpoint: altered")
        )

    if table and not on_file.exists:
        problems.append(
            AuditProblem(
                "file_missing",
                f"the checkpoint file {path} is missing, but the database holds "
                f"{len(table)} checkpoint{'s' * (len(table) > 1)}: deleted or moved",
            )
        )
    else:
        only_table = [n for n in sorted(table) if n not in on_file.checkpoints]
        if only_table:
            problems.append(
                AuditProblem(
                    "not_in_file",
                    f"{_numbers_text(only_table)} in the database but not in {path}: "
                    "removed from the file, or the server stopped before writing "
                    f"{'them' if len(only_table) > 1 else 'it'}",
                )
            )
        for number in sorted(on_file.checkpoints):
            if number not in table:
                # Reported one by one: each says which entries it vouched for.
                first = on_file.checkpoints[number][0]
                problems.append(
                    AuditProblem(
                        "not_in_database",
                        f"{first.describe()} is in {path} but not in the database: deleted "
                        "from the table",
                        None,
                        first.entry_seq,
                    )
                )
            elif any(version != table[number] for version in on_file.checkpoints[number]):
                problems.append(
                    AuditProblem(
                        "differs",
                        f"checkpoint {number} differs between the database and {path}: altered",
                    )
                )

    numbers = sorted({number for number, _mac in signed})
    known = set(numbers) | set(table) | set(on_file.checkpoints)
    lost = [n for n in range(1, max(known, default=0) + 1) if n not in known]
    if lost:
        problems.append(
            AuditProblem(
                "checkpoint_missing",
                f"{_numbers_text(lost)} missing from both the database and {path}: deleted",
            )
        )
    trusted = sorted(signed.values(), key=lambda c: (c.number, c.mac))
    by_number = {c.number: c for c in trusted}
    for checkpoint in trusted:
        before = by_number.get(checkpoint.number - 1)
        expected = GENESIS if checkpoint.number == 1 else None if before is None else before.mac
        if expected is not None and checkpoint.prev_mac != expected:
            problems.append(
                AuditProblem(
                    "checkpoint_chain",
                    f"checkpoint {checkpoint.number} does not follow checkpoint "
                    f"{checkpoint.number - 1}: the checkpoints were reordered or replaced",
                )
            )
    return trusted, problems


# A checkpoint's line is written just after its commit: one committed a moment before verify
# read the table may not be in the file yet. Read the file again this often before saying so.
_LINE_LAG_TRIES = 5
_LINE_LAG_SECONDS = 0.2


def _read_both(session: Session, path: Path) -> tuple[dict[int, Checkpoint], CheckpointFile]:
    rows = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.number)))
    table = {row.number: Checkpoint.from_row(row) for row in rows}
    on_file = read_checkpoint_file(path)
    for _try in range(_LINE_LAG_TRIES):
        if all(n in on_file.checkpoints for n in table):
            break
        time.sleep(_LINE_LAG_SECONDS)
        on_file = read_checkpoint_file(path)
    newer = [n for n in on_file.checkpoints if n not in table]
    if newer:
        # Committed (and written) after the table was read: read those rows again.
        again = select(AuditCheckpoint).where(col(AuditCheckpoint.number).in_(newer))
        table |= {row.number: Checkpoint.from_row(row) for row in session.exec(again)}
    return table, on_file


def verify_chain(session: Session, actor: Actor, settings: CasebookConfig) -> ChainReport:
    """Supervisors and admins (``view_audit``) check the whole log against the server's
    signed checkpoints; audited. The site's key is needed (only the server verifies): without
    it, ``SiteSecretError`` (one line), after the reader's role is checked."""
    _require_audit_reader(actor, "audit.verify")
    signer = CheckpointSigner.for_site(settings)
    # Checkpoints first, then the entries: every checkpoint read is of entries already there.
    table, on_file = _read_both(session, signer.file)
    trusted, checkpoint_problems = _compare_checkpoints(table, on_file, signer.key, signer.file)
    walk = _LogWalk(trusted)
    query = select(AuditEvent).order_by(col(AuditEvent.seq)).execution_options(yield_per=1000)
    rows = session.exec(query)
    try:
        for event in rows:
            walk.feed(event)
    finally:
        rows.close()  # free the cursor before writing
    walk.finish()
    problems = walk.problems + list(_checkpoints_against_entries(trusted, walk))
    problems += checkpoint_problems
    last = trusted[-1] if trusted else None
    report = ChainReport(
        entries=walk.entries,
        head=walk.head,
        first_break=walk.first_break,
        head_seq=walk.head_seq,
        problems=tuple(problems),
        checkpoints=len({c.number for c in trusted}),
        last_checkpoint=last,
        unsigned=max(walk.head_seq - (last.entry_seq if last else 0), 0),
    )
    detail: dict[str, Any] = {
        "entries": report.entries,
        "intact": report.intact,
        "head": report.head,
        "head_seq": report.head_seq,
        "checkpoints": report.checkpoints,
    }
    if problems:
        detail |= {"problems": len(problems), "first_problem": problems[0].kind}
    broken = report.first_break
    if broken is not None:
        detail |= {"break_at": broken.event_id, "kind": broken.kind}
    record(session, actor, "audit.verify", "audit", None, detail)
    return report
