"""`hotline`: the one door for people. Commands parse, call a service, render; no rules here."""

from __future__ import annotations

import csv
import dataclasses
import getpass
import json
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel

import cli_render as terminal
from casebook import agents as agent_service
from casebook import audit as audit_service
from casebook import callbacks as callback_service
from casebook import calls as calls_service
from casebook import cases as case_service
from casebook import drafts as draft_service
from casebook import followups as followup_service
from casebook.access import Actor
from casebook.audit import ChainReport
from casebook.call_status import call_status
from casebook.clock import utcnow
from casebook.db import Database, upgrade_schema
from casebook.drafts import Draft
from casebook.errors import CasebookError, DatabaseUnavailable
from casebook.models import (
    Agent,
    AttemptResult,
    AuditEvent,
    Call,
    Callback,
    Case,
    CaseStatus,
    ContactMethod,
    DraftState,
    FollowUp,
    Priority,
    QAReview,
    TranscriptionJob,
)
from casebook.operations import SiteStatus, site_status
from casebook.reports import Report, build_report
from casebook.workflow import STATUS_LABELS_AR
from hotline.app.checks import run_checks
from hotline.app.components import Agi, Component, Listener, Scheduler, run_until_signal
from hotline.app.config import ConfigError, Settings, load_settings
from hotline.app.demo import DemoError, run_demo
from hotline.app.dial import DialError, dial_callback
from hotline.app.lifecycle import configure_logging
from ivr_flows import (
    FlowError,
    SpeechError,
    build_prompts,
    load_flow,
    render_asterisk_config,
)
from recordings.integrity import Finding, verify_recordings
from recordings.listening import copy_for_playing, export_recording
from recordings.player import INSTALL_HINT, find_player, play
from recordings.retention import Expired, apply_retention
from recordings.sampling import MAX_SEED, Sample, draw_sample
from recordings.scorecard import QaReport, choices, parse_value, qa_report, score_recording
from transcription import AudioError, ModelError, transcribe
from transcription.worker import TranscriptionWorker

T = TypeVar("T")

app = typer.Typer(
    help="خط الشكاوى 15654 — the 15654 complaints hotline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
agents_app = typer.Typer(help="Agents and their roles.", no_args_is_help=True)
cases_app = typer.Typer(help="Complaint cases.", no_args_is_help=True)
followup_app = typer.Typer(help="Follow-ups after resolution.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(agents_app, name="agents")
app.add_typer(cases_app, name="cases")
app.add_typer(followup_app, name="followup")
drafts_app = typer.Typer(
    help="Drafts waiting for an agent (scripts; people use `review`).", no_args_is_help=True
)
callbacks_app = typer.Typer(help="Follow-up callbacks.", no_args_is_help=True)
app.add_typer(drafts_app, name="drafts")
app.add_typer(callbacks_app, name="callbacks")
calls_app = typer.Typer(help="Calls the AMI listener stored.", no_args_is_help=True)
app.add_typer(calls_app, name="calls")
prompts_app = typer.Typer(help="IVR prompt audio.", no_args_is_help=True)
asterisk_app = typer.Typer(help="Asterisk configuration for this site.", no_args_is_help=True)
app.add_typer(prompts_app, name="prompts")
app.add_typer(asterisk_app, name="asterisk")
qa_app = typer.Typer(help="QA: integrity, samples, scorecards.", no_args_is_help=True)
recordings_app = typer.Typer(help="Recordings: listen, export, retention.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(qa_app, name="qa")
app.add_typer(recordings_app, name="recordings")
app.add_typer(audit_app, name="audit")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="config.yaml to use (default ./config.yaml or $HOTLINE_CONFIG)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (logical-order text).")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV (logical-order text).")]
ReferenceArgument = Annotated[
    str, typer.Argument(metavar="REF", help="The case's reference number (9 digits).")
]
RecordingArgument = Annotated[
    int, typer.Argument(metavar="REC", help="The recording's id (as qa sample lists it).")
]


class ExitCode:
    REFUSED = 1
    CONFIG = 2
    DATABASE = 3


def fail(message: str, code: int = ExitCode.REFUSED) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@dataclass
class Context:
    settings: Settings
    migrate: bool = True

    @cached_property
    def db(self) -> Database:
        # Opened on first use: commands that need only the settings (transcribe, prompts build)
        # and the start-up checks of the long-running ones touch no database.
        return Database(self.settings.database, migrate=self.migrate, create=not self.migrate)

    @property
    def bidi(self) -> str:
        # Visual reordering is for people at a terminal; pipes and files keep logical order.
        return self.settings.display.bidi if out.is_terminal else "logical"

    def run(self, work: Callable[[Session], T]) -> T:
        return self.db.run(work)

    def as_user(self, work: Callable[[Session, Actor], T]) -> T:
        """Run ``work`` as the agent mapped to the OS login name."""
        username = getpass.getuser()
        roles = self.settings.roles
        return self.db.run(
            lambda session: work(session, agent_service.resolve_actor(session, username, roles))
        )


_state: dict[str, Path | None] = {"config": None}


@app.callback()
def _global_options(config: ConfigOption = None) -> None:
    _state["config"] = config


def context(*, migrate: bool = True) -> Context:
    return Context(load_settings(_state["config"]), migrate=migrate)


def emit_json(data: Any) -> None:
    out.print_json(json.dumps(data, ensure_ascii=False, default=str), ensure_ascii=False)


def emit_csv(rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)


def model_row(model: SQLModel, fields: Sequence[str]) -> dict[str, Any]:
    data = model.model_dump(mode="json")
    return {name: data[name] for name in fields}


def local_time(moment: datetime | None, settings: Settings, *, short: bool = False) -> str:
    """A stored UTC time in the site's time zone."""
    if moment is None:
        return ""
    return moment.astimezone(settings.business_hours.zone).strftime(
        "%m-%d %H:%M" if short else "%Y-%m-%d %H:%M"
    )


def parse_time(value: str | None, what: str) -> time | None:
    if value is None:
        return None
    try:
        return time.fromisoformat(value)
    except ValueError:
        fail(f"{what} must be HH:MM, got {value!r}")


def parse_date(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        fail(
            f"{what} must be an ISO date or date-time (2026-11-01, 2026-11-01T08:00), got {value!r}"
        )


# --- db -------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the newest migration."""
    ctx = context(migrate=False)
    ctx.db.retrying(lambda: upgrade_schema(ctx.db.engine))
    out.print(f"schema up to date: {ctx.db.safe_url}")


# --- agents ---------------------------------------------------------------------------------

AGENT_FIELDS = (
    "username",
    "display_name",
    "roles",
    "department",
    "languages",
    "skills",
    "extension",
)


@agents_app.command("add")
def agents_add(
    username: Annotated[
        str, typer.Argument(metavar="USER", help="The agent's login name on this machine.")
    ],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    role: Annotated[
        list[str], typer.Option("--role", help="agent, supervisor, qa or admin (repeat).")
    ],
    department: Annotated[
        str | None, typer.Option(help="Department (see config cases.departments).")
    ] = None,
    language: Annotated[
        list[str] | None, typer.Option("--language", help="Languages spoken (repeat).")
    ] = None,
    skill: Annotated[
        list[str] | None, typer.Option("--skill", help="Skills, e.g. billing (repeat).")
    ] = None,
    extension: Annotated[str | None, typer.Option(help="Phone extension for callbacks.")] = None,
    shift_day: Annotated[
        list[str] | None, typer.Option("--shift-day", metavar="DAY", help="mon..sun (repeat).")
    ] = None,
    shift_start: Annotated[
        str | None, typer.Option(metavar="HH:MM", help="Shift start (site time zone).")
    ] = None,
    shift_end: Annotated[
        str | None, typer.Option(metavar="HH:MM", help="Shift end (site time zone).")
    ] = None,
    capacity: Annotated[
        int | None, typer.Option(min=1, help="Open callbacks at once (default: config).")
    ] = None,
) -> None:
    """Add an agent (admins only; the very first agent of a site must be an admin)."""
    ctx = context()
    start, end = parse_time(shift_start, "--shift-start"), parse_time(shift_end, "--shift-end")
    added = ctx.as_user(
        lambda session, actor: agent_service.add_agent(
            session,
            ctx.settings,
            actor,
            username=username,
            display_name=name,
            roles=role,
            department=department,
            languages=language or ["ar"],
            skills=skill or [],
            extension=extension,
            shift_days=shift_day or [],
            shift_start=start,
            shift_end=end,
            capacity=capacity,
        )
    )
    agent = added.agent
    out.print(f"added agent {agent.username} ({', '.join(agent.roles)})")
    out.print(f"one-time password: {added.one_time_password}")


@agents_app.command("list")
def agents_list(as_json: JsonOption = False, as_csv: CsvOption = False) -> None:
    """List agents."""
    ctx = context()
    agents: list[Agent] = ctx.as_user(agent_service.list_agents)
    rows = [model_row(agent, AGENT_FIELDS) for agent in agents]
    if as_json:
        emit_json(rows)
        return
    if as_csv:
        emit_csv(
            [{k: ",".join(v) if isinstance(v, list) else v for k, v in r.items()} for r in rows]
        )
        return
    table = Table("user", "name", "roles", "department", "languages", "ext")
    for agent in agents:
        table.add_row(
            agent.username,
            terminal.cell(agent.display_name, 24, ctx.bidi),
            ", ".join(agent.roles),
            agent.department or "",
            ", ".join(agent.languages),
            agent.extension or "",
        )
    out.print(table)


# --- cases ----------------------------------------------------------------------------------

CASE_FIELDS = (
    "reference",
    "status",
    "category",
    "priority",
    "department",
    "caller_number",
    "created_at",
    "promised_by",
    "escalation_level",
    "draft_text",
    "confirmed_text",
)


def status_label(status: str) -> str:
    # No brackets: bidi mirrors them when an Arabic label precedes Latin text.
    return f"{STATUS_LABELS_AR[CaseStatus(status)]} · {status}"


@cases_app.command("list")
def cases_list(
    status: Annotated[CaseStatus | None, typer.Option(help="Only cases in this state.")] = None,
    department: Annotated[str | None, typer.Option(help="Only this department.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many cases.")] = 50,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Cases you may see, newest first (every listing is audited)."""
    ctx = context()
    cases: list[Case] = ctx.as_user(
        lambda session, actor: case_service.list_cases(
            session, actor, status=status, department=department, limit=limit
        )
    )
    rows = [model_row(case, CASE_FIELDS) for case in cases]
    if as_json:
        emit_json(rows)
        return
    if as_csv:
        emit_csv(rows)
        return
    text_width = max(out.width - 68, 12)
    table = Table(
        *(
            terminal.visual(h, ctx.bidi)
            for h in ("المرجع", "الحالة", "التصنيف", "المتصل", "التاريخ", "الشكوى")
        )
    )
    for column in table.columns:
        column.no_wrap = True  # wrapping visual-order Arabic would scramble it
    for case in cases:
        table.add_row(
            case.reference or "",
            terminal.visual(STATUS_LABELS_AR[CaseStatus(case.status)], ctx.bidi),
            case.category or "",
            case.caller_number or "",
            local_time(case.created_at, ctx.settings, short=True),
            terminal.cell(case.confirmed_text or case.draft_text, text_width, ctx.bidi),
        )
    if not cases:
        out.print(terminal.visual("لا توجد شكاوى (no cases)", ctx.bidi))
        return
    out.print(table)


@cases_app.command("show")
def cases_show(reference: ReferenceArgument, as_json: JsonOption = False) -> None:
    """One case with its follow-ups (the read is audited)."""
    ctx = context()

    def read(session: Session, actor: Actor) -> tuple[Case, list[FollowUp]]:
        case = case_service.get_case(session, actor, reference)
        return case, case_service.case_followups(session, case)

    case, followups = ctx.as_user(read)
    if as_json:
        data = case.model_dump(mode="json")
        data["followups"] = [f.model_dump(mode="json") for f in followups]
        emit_json(data)
        return
    width = max(min(out.width, 100) - 4, 20)
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold")
    table.add_column()
    fields = [
        ("رقم الشكوى", case.reference or ""),
        ("الحالة", status_label(case.status)),
        ("التصنيف", case.category or ""),
        ("القسم", case.department or ""),
        ("الأولوية", case.priority),
        ("المتصل", case.caller_number or ""),
        ("تاريخ التسجيل", local_time(case.created_at, ctx.settings)),
        ("موعد الحل", local_time(case.promised_by, ctx.settings)),
        ("مستوى التصعيد", str(case.escalation_level)),
    ]
    for label, value in fields:
        table.add_row(terminal.visual(label, ctx.bidi), terminal.visual(value, ctx.bidi))
    out.print(table)
    for label, text in (("المسودة", case.draft_text), ("النص المؤكد", case.confirmed_text)):
        if text:
            out.print(f"\n[bold]{terminal.visual(label, ctx.bidi)}[/]")
            for line in terminal.visual_lines(text, width, ctx.bidi):
                out.print(line, justify="right" if ctx.bidi == "visual" else "left")
    if followups:
        table = Table("date", "method", "result", "effort", "notes")
        for item in followups:
            table.add_row(
                local_time(item.at, ctx.settings),
                item.method,
                item.result,
                "" if item.effort_score is None else str(item.effort_score),
                terminal.cell(item.notes, 30, ctx.bidi),
            )
        out.print(table)


@cases_app.command("resolve")
def cases_resolve(
    reference: ReferenceArgument,
    summary: Annotated[str, typer.Option(help="What was done to fix it.")],
) -> None:
    """Record the resolution; a follow-up callback is requested."""
    ctx = context()
    case = ctx.as_user(
        lambda session, actor: case_service.resolve_case(
            session, ctx.settings, actor, reference, summary=summary
        )
    )
    out.print(f"case {case.reference}: {case.status}")


@cases_app.command("close")
def cases_close(
    reference: ReferenceArgument,
    reason: Annotated[
        str | None,
        typer.Option(help="Required to close without a satisfied follow-up (supervisors)."),
    ] = None,
) -> None:
    """Close formally (after a satisfied follow-up)."""
    ctx = context()
    case = ctx.as_user(
        lambda session, actor: case_service.close_case(session, actor, reference, reason=reason)
    )
    out.print(f"case {case.reference}: {case.status}")


@cases_app.command("escalate")
def cases_escalate(
    reference: ReferenceArgument, reason: Annotated[str, typer.Option(help="Why.")]
) -> None:
    """Raise the case one management level."""
    ctx = context()
    case = ctx.as_user(
        lambda session, actor: case_service.escalate_case(
            session, ctx.settings, actor, reference, reason=reason
        )
    )
    out.print(f"case {case.reference}: {case.status}, level {case.escalation_level}")


@followup_app.command("log")
def followup_log(
    reference: ReferenceArgument,
    method: Annotated[ContactMethod, typer.Option(help="How the customer was reached.")],
    result: Annotated[str, typer.Option(help="satisfied, not-satisfied, partial or no-answer.")],
    effort: Annotated[
        int | None, typer.Option(help="How easy it was for the customer (1..scale).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Notes.")] = None,
    reroute: Annotated[
        str | None, typer.Option(metavar="DEPARTMENT", help="Re-route the case to this department.")
    ] = None,
) -> None:
    """Record a follow-up contact and its result."""
    chosen = followup_service.RESULT_WORDS.get(result)
    if chosen is None:
        fail(f"--result must be one of {', '.join(followup_service.RESULT_WORDS)}, got {result!r}")
    ctx = context()
    followup = ctx.as_user(
        lambda session, actor: followup_service.log_followup(
            session,
            ctx.settings,
            actor,
            reference,
            method=method,
            result=chosen,
            effort_score=effort,
            notes=note,
            reroute_to=reroute,
        )
    )
    out.print(f"follow-up {followup.id} logged: {followup.result}")


# --- report ---------------------------------------------------------------------------------


@app.command("report")
def report(
    since: Annotated[str | None, typer.Option(metavar="DATE", help="From this date (ISO).")] = None,
    until: Annotated[
        str | None, typer.Option(metavar="DATE", help="Up to this date (ISO).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Volumes, CSAT (strict and lenient), CES and SLA met/missed."""
    ctx = context()
    start, end = parse_date(since, "--since"), parse_date(until, "--until")
    figures: Report = ctx.as_user(
        lambda session, actor: build_report(
            session, actor, ctx.settings.followup, since=start, until=end
        )
    )
    if as_json:
        emit_json(figures.as_dict())
        return

    def percent(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"

    table = Table(show_header=False)
    rows = [
        ("الشكاوى (cases)", str(figures.cases_total)),
        ("المكالمات (calls)", str(figures.calls_total)),
        ("مكالمات متروكة (abandoned)", str(figures.calls_abandoned)),
        ("متابعات مجابة (answered follow-ups)", str(figures.followups_answered)),
        ("CSAT strict", percent(figures.csat_strict)),
        ("CSAT lenient", percent(figures.csat_lenient)),
        ("CES (easy)", percent(figures.ces)),
        ("SLA met / missed", f"{figures.sla_met} / {figures.sla_missed}"),
        ("overdue open cases", str(figures.sla_overdue_open)),
    ]
    for label, value in rows:
        table.add_row(terminal.visual(label, ctx.bidi), value)
    for status, count in sorted(figures.cases_by_status.items()):
        table.add_row(terminal.visual(status_label(status), ctx.bidi), str(count))
    out.print(table)


# --- drafts and review (agents) -------------------------------------------------------------

PRIORITIES = [p.value for p in Priority]


def show_reminder(ctx: Context) -> None:
    counts = ctx.as_user(
        lambda session, actor: callback_service.reminders(session, actor, utcnow())
    )
    if counts.due or counts.overdue:
        line = f"مكالمات المتابعة: {counts.due} مستحقة، {counts.overdue} متأخرة"
        english = f"(callbacks due {counts.due}, overdue {counts.overdue})"
        out.print(f"[bold magenta]{terminal.visual(line, ctx.bidi)}[/]  {english}")


def render_draft(ctx: Context, draft: Draft, text: str) -> None:
    case = draft.case
    seconds = draft.recording.duration_seconds if draft.recording else None
    facts = [
        ("رقم الشكوى", case.reference or ""),
        ("المتصل", case.caller_number or "—"),
        ("الوقت", local_time(case.created_at, ctx.settings)),
        ("مدة التسجيل", "—" if seconds is None else f"{seconds:.0f} s"),
        ("حالة المسودة", case.draft_state or "—"),
    ]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", style="bold")
    grid.add_column()
    for label, value in facts:
        grid.add_row(terminal.visual(label, ctx.bidi), value)
    out.rule()
    out.print(grid)
    width = max(min(out.width, 100) - 2, 20)
    if text != (case.draft_text or ""):
        lines = [Text(line) for line in terminal.visual_lines(text, width, ctx.bidi)]
    else:
        lines = terminal.highlighted_lines(draft.marked_words(), width, ctx.bidi)
    if not text.strip():
        notes = {
            DraftState.NO_SPEECH.value: "لم يُسمع كلام في التسجيل (no speech)",
            DraftState.FAILED.value: "تعذر التفريغ: اكتب الشكوى من التسجيل (transcription failed)",
            DraftState.TRANSCRIBING.value: "التفريغ جارٍ (still transcribing)",
        }
        lines = [
            Text(
                terminal.visual(notes.get(case.draft_state or "", "لا يوجد نص"), ctx.bidi),
                style="italic",
            )
        ]
    for line in lines:
        out.print(line, justify="right" if ctx.bidi == "visual" else "left")


def choose(ctx: Context, title: str, options: list[str], default: str | None = None) -> str:
    for number, option in enumerate(options, 1):
        out.print(f"  {number}. {option}")
    while True:
        answer = typer.prompt(
            terminal.visual(title, ctx.bidi), default=default or "", show_default=bool(default)
        )
        picked = str(answer).strip()
        if picked in options:
            return picked
        if picked.isdigit() and 1 <= int(picked) <= len(options):
            return options[int(picked) - 1]
        err.print(f"choose 1-{len(options)}")


def confirm(ctx: Context, reference: str, text: str, category: str, department: str | None) -> Case:
    return ctx.as_user(
        lambda session, actor: case_service.confirm_draft(
            session,
            ctx.settings,
            actor,
            reference,
            text=text,
            category=category,
            department=department,
        )
    )


def reject(ctx: Context, reference: str, reason: str) -> Case:
    return ctx.as_user(
        lambda session, actor: case_service.reject_draft(session, actor, reference, reason=reason)
    )


def review_one(ctx: Context, reference: str) -> bool:
    """One draft, until it is confirmed, rejected or skipped. False means: stop reviewing."""
    draft: Draft = ctx.as_user(
        lambda session, actor: draft_service.open_draft(session, actor, reference)
    )
    text = draft.case.draft_text or ""
    while True:
        render_draft(ctx, draft, text)
        answer = typer.prompt("[a]ccept  [e]dit  [r]eject  [s]kip  [q]uit", default="a")
        action = str(answer).strip().lower()[:1]
        if action == "e":
            text = (click.edit(text, require_save=False) or text).strip()
        elif action == "a":
            if not text.strip():
                err.print(
                    terminal.visual("النص فارغ: حرّر الشكوى أولاً (empty: edit first)", ctx.bidi)
                )
                continue
            category = choose(ctx, "التصنيف (category)", sorted(ctx.settings.sla.categories))
            departments = ctx.settings.cases.departments
            department = choose(ctx, "القسم (department)", departments, draft.case.department)
            case = confirm(ctx, reference, text, category, department)
            promise = local_time(case.promised_by, ctx.settings)
            out.print(f"[green]case {case.reference} open[/], promised by {promise}")
            return True
        elif action == "r":
            reject(ctx, reference, str(typer.prompt(terminal.visual("السبب (reason)", ctx.bidi))))
            out.print(f"case {reference} rejected")
            return True
        elif action in ("s", "q"):
            return action == "s"


@app.command("review")
def review() -> None:
    """Your queue of drafts, oldest first: read, edit ($EDITOR), confirm or reject each."""
    ctx = context()
    show_reminder(ctx)
    skipped: set[str] = set()
    while True:
        queue: list[Case] = ctx.as_user(draft_service.draft_queue)
        waiting = [case for case in queue if case.reference not in skipped]
        if not waiting:
            out.print(terminal.visual("لا توجد مسودات بانتظارك (no drafts waiting)", ctx.bidi))
            return
        out.print(terminal.visual(f"مسودات بانتظارك: {len(waiting)}", ctx.bidi))
        reference = waiting[0].reference or ""
        skipped.add(reference)
        if not review_one(ctx, reference):
            return


@drafts_app.command("list")
def drafts_list(as_json: JsonOption = False) -> None:
    """Drafts waiting for you, oldest first."""
    ctx = context()
    drafts: list[Case] = ctx.as_user(draft_service.draft_queue)
    if as_json:
        emit_json([model_row(case, (*CASE_FIELDS, "draft_state")) for case in drafts])
        return
    table = Table(*(terminal.visual(h, ctx.bidi) for h in ("المرجع", "المتصل", "الوقت", "المسودة")))
    for column in table.columns:
        column.no_wrap = True
    for case in drafts:
        table.add_row(
            case.reference or "",
            case.caller_number or "",
            local_time(case.created_at, ctx.settings, short=True),
            terminal.cell(case.draft_text, max(out.width - 45, 12), ctx.bidi),
        )
    out.print(table)


@drafts_app.command("confirm")
def drafts_confirm(
    reference: ReferenceArgument,
    category: Annotated[str, typer.Option(help="One of config sla.categories.")],
    text: Annotated[
        str | None, typer.Option(help="The confirmed text (default: the draft as is).")
    ] = None,
    department: Annotated[str | None, typer.Option(help="Route to this department.")] = None,
    priority: Annotated[str, typer.Option(help="low, normal, high or urgent.")] = "normal",
) -> None:
    """Confirm a draft: it becomes an open complaint with its promised resolution date."""
    if priority not in PRIORITIES:
        fail(f"--priority must be one of {', '.join(PRIORITIES)}")
    ctx = context()

    def work(session: Session, actor: Actor) -> Case:
        draft = draft_service.open_draft(session, actor, reference)
        return case_service.confirm_draft(
            session,
            ctx.settings,
            actor,
            reference,
            text=text if text is not None else draft.case.draft_text or "",
            category=category,
            department=department,
            priority=Priority(priority),
        )

    case = ctx.as_user(work)
    out.print(
        f"case {case.reference}: open, promised by {local_time(case.promised_by, ctx.settings)}"
    )


@drafts_app.command("reject")
def drafts_reject(
    reference: ReferenceArgument,
    reason: Annotated[str, typer.Option(help="Why it is not a complaint.")],
) -> None:
    """Reject a draft that is not a complaint."""
    case = reject(context(), reference, reason)
    out.print(f"case {case.reference}: {case.status}")


# --- callbacks ------------------------------------------------------------------------------

CALLBACK_FIELDS = (
    "id",
    "reason",
    "phone_number",
    "status",
    "due_from",
    "overdue_at",
    "attempts",
    "last_result",
    "department",
)


@callbacks_app.command("list")
def callbacks_list(
    mine: Annotated[bool, typer.Option("--mine", help="Only the callbacks you hold.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Open callbacks (and those that need a written follow-up), due first."""
    ctx = context()
    rows: list[Callback] = ctx.as_user(
        lambda session, actor: callback_service.list_callbacks(session, actor, mine=mine)
    )
    if as_json:
        emit_json([model_row(callback, CALLBACK_FIELDS) for callback in rows])
        return
    show_reminder(ctx)
    table = Table("id", "reason", "number", "status", "due", "attempts")
    for callback in rows:
        table.add_row(
            str(callback.id),
            callback.reason,
            callback.phone_number,
            callback.status,
            local_time(callback.due_from, ctx.settings, short=True),
            str(callback.attempts),
        )
    out.print(table)


@callbacks_app.command("next")
def callbacks_next() -> None:
    """The callback to make now."""
    ctx = context()
    callback = ctx.as_user(callback_service.next_callback)
    if callback is None:
        out.print(
            terminal.visual("لا توجد مكالمات متابعة لك الآن (no callbacks for you now)", ctx.bidi)
        )
        return
    due = local_time(callback.due_from, ctx.settings)
    out.print(f"callback {callback.id}: {callback.phone_number} ({callback.reason}), due {due}")
    out.print(f"  dial it with: hotline callbacks dial {callback.id}")


@app.command("status")
def status(as_json: JsonOption = False) -> None:
    """Live calls, the transcription queue, callbacks due and the health of each component."""
    ctx = context()
    figures: SiteStatus = ctx.run(lambda session: site_status(session, utcnow()))
    if as_json:
        emit_json(asdict(figures))
        return
    table = Table("component", "instance", "seen", "health", "state")
    for item in figures.components:
        if item.stopped_at is not None:
            health = f"stopped at {local_time(item.stopped_at, ctx.settings)}"
        else:
            health = "[green]ok[/]" if item.healthy else "[red]silent[/]"
        state = ", ".join(f"{k}={v}" for k, v in item.state.items())
        table.add_row(
            item.component, item.instance, f"{item.seen_seconds_ago:.0f}s ago", health, state
        )
    if figures.components:
        out.print(table)
    else:
        out.print("no component has reported yet (is `hotline serve` running?)")
    oldest = figures.oldest_queued_seconds
    out.print(
        f"live calls {figures.live_calls} · transcription queue {figures.queue_depth} "
        f"(running {figures.running_jobs}, failed {figures.failed_jobs}, oldest waiting "
        f"{'—' if oldest is None else f'{oldest:.0f}s'}) · callbacks due {figures.callbacks_due}, "
        f"overdue {figures.callbacks_overdue}, written follow-ups {figures.callbacks_written}"
    )


@app.command("scheduler")
def scheduler() -> None:
    """Run the periodic rules (callback assignment, overdue escalation) until SIGTERM."""
    run_components("scheduler")


@app.command("serve")
def serve(
    concurrency: Annotated[
        int, typer.Option(min=1, max=16, help="Transcription jobs at once.")
    ] = 1,
) -> None:
    """Listener + FastAGI + transcription worker + scheduler in one process, until SIGTERM.

    Each also runs alone: listen, agi, worker, scheduler."""
    run_components("listener", "agi", "worker", "scheduler", concurrency=concurrency)


@app.command("worker")
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=16, help="Jobs at once.")] = 1,
) -> None:
    """Transcribe queued recordings into drafts until SIGTERM, with a progress display."""
    run_components("worker", concurrency=concurrency)


@app.command("transcribe")
def transcribe_file(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="The audio file to transcribe.")],
    as_json: JsonOption = False,
) -> None:
    """Transcribe one audio file with the configured model (nothing is stored)."""
    result = transcribe(path, context().settings.transcription)
    if as_json:
        emit_json(result.to_dict())
        return
    mode = "visual" if out.is_terminal else "logical"
    width = max(min(out.width, 100) - 2, 20)
    for line in terminal.highlighted_lines(result.marked_words(), width, mode):
        out.print(line, justify="right" if mode == "visual" else "left")
    if result.no_speech:
        out.print(terminal.visual("لا كلام في التسجيل (no speech)", mode))
    facts = (
        f"{result.language} · {result.duration:.1f} s of audio in "
        f"{result.processing_seconds:.1f} s · {len(result.segments)} segments"
    )
    out.print(f"[dim]{facts} · {result.model_name}[/]")


@app.command("listen")
def listen() -> None:
    """Run the AMI listener until SIGTERM or Ctrl-C: every hotline call stored once."""
    run_components("listener")


def report_progress(worker: TranscriptionWorker, job: TranscriptionJob) -> None:
    """One line per finished job: the worker's progress display."""
    stats = worker.stats
    out.print(
        f"[green]✓[/] recording {job.recording_id}: {stats.done} done, {stats.failed} failed, "
        f"{stats.busy} in hand"
    )


def run_components(*names: str, concurrency: int = 1) -> None:
    """Check what the components need, start them; SIGTERM or SIGINT stops them, each finishing
    its work."""
    ctx = context()
    configure_logging(ctx.settings.logging)
    checks = run_checks(ctx.settings, list(names))
    for check in checks:
        mark = "[green]ok[/]" if check.ok else "[bold red]FAILED[/]"
        err.print(f"{mark} {check.name}: {check.message}")
    if not all(check.ok for check in checks):
        fail("start-up checks failed (see above)")
    give_up = threading.Event()
    makers: dict[str, Callable[[], Component]] = {
        "listener": lambda: Listener(ctx.db, ctx.settings, give_up),
        "agi": lambda: Agi(ctx.db, ctx.settings),
        "scheduler": lambda: Scheduler(ctx.db, ctx.settings),
        "worker": lambda: TranscriptionWorker(
            ctx.db, ctx.settings, concurrency=concurrency, on_done=report_progress
        ),
    }
    components = [makers[name]() for name in names]
    try:
        run_until_signal(ctx.db, components, give_up)
    except OSError as exc:
        fail(f"cannot listen on {ctx.settings.agi.host}:{ctx.settings.agi.port}: {exc.strerror}")
    for component in components:
        if isinstance(component, Listener) and component.failure is not None:
            fail(f"AMI at {ctx.settings.ami.host}:{ctx.settings.ami.port}: {component.failure}")
        if isinstance(component, TranscriptionWorker) and component.fatal is not None:
            fail(f"transcription: {component.fatal}")


CALL_FIELDS = (
    "linkedid",
    "caller_number",
    "started_at",
    "ended_at",
    "duration_seconds",
    "abandoned",
    "recording_path",
    "recording_missing",
    "hangup_cause_text",
    "ivr_choices",
)


@calls_app.command("list")
def calls_list(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many calls.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Recent calls to the hotline, newest first (supervisors, QA, admins; audited)."""
    ctx = context()

    def read(session: Session, actor: Actor) -> list[tuple[Call, str | None]]:
        listed = calls_service.list_calls(session, actor, limit=limit)
        return [(call, calls_service.case_reference(session, call)) for call in listed]

    rows = ctx.as_user(read)
    if as_json:
        emit_json(
            [
                {
                    **model_row(call, CALL_FIELDS),
                    "status": call_status(call.ended_at, call.abandoned),
                    "case": reference,
                }
                for call, reference in rows
            ]
        )
        return
    table = Table("linkedid", "caller", "started", "duration", "status", "case", "recording")
    for call, reference in rows:
        duration = "" if call.duration_seconds is None else f"{call.duration_seconds:.0f}s"
        table.add_row(
            call.linkedid,
            call.caller_number or "",
            local_time(call.started_at or call.ended_at, ctx.settings, short=True),
            duration,
            call_status(call.ended_at, call.abandoned),
            reference or "",
            Path(call.recording_path).name if call.recording_path else "",
        )
    out.print(table)


@callbacks_app.command("dial")
def callbacks_dial(
    callback_id: Annotated[
        int, typer.Argument(metavar="ID", help="The callback's id (as callbacks list shows it).")
    ],
) -> None:
    """Ring your phone, then the customer (AMI Originate); the result is stored."""
    ctx = context()
    actor = ctx.run(
        lambda session: agent_service.resolve_actor(session, getpass.getuser(), ctx.settings.roles)
    )
    try:
        outcome = dial_callback(ctx.db, ctx.settings, actor, callback_id)
    except DialError as exc:
        fail(str(exc))
    callback = outcome.callback
    out.print(
        f"callback {callback.id}: {outcome.result} ({outcome.detail}); now {callback.status}, "
        f"attempt {callback.attempts} of {ctx.settings.callbacks.max_attempts}"
    )
    if outcome.result == AttemptResult.ANSWERED and callback.case_id is not None:
        out.print("  log the follow-up: hotline followup log REF --method phone --result ...")


# --- IVR ------------------------------------------------------------------------------------


@app.command("agi")
def agi() -> None:
    """Run the FastAGI server for the Arabic IVR until SIGTERM or Ctrl-C."""
    run_components("agi")


@prompts_app.command("build")
def prompts_build(
    voice: Annotated[
        str | None, typer.Option(help="auto, espeak-ng, mbrola-ar1 or mbrola-ar2.")
    ] = None,
) -> None:
    """Render the IVR's Arabic prompts and digits to 8 kHz WAV (studio recordings are kept)."""
    settings = context().settings
    chosen = voice or settings.ivr.voice
    report = build_prompts(
        settings.ivr.sounds_dir,
        flow=load_flow(settings.ivr.flow_file),
        language=settings.ivr.language,
        voice=chosen,
        progress=lambda name: err.print(f"[dim]rendered {name}[/]"),
    )
    out.print(
        f"prompts in {settings.ivr.sounds_dir / settings.ivr.language} with {report.voice}: "
        f"{len(report.rendered)} rendered, {len(report.cached)} unchanged, "
        f"{len(report.studio)} studio recordings kept"
    )


@asterisk_app.command("config")
def asterisk_config() -> None:
    """Print this site's extensions.conf contexts, queues.conf queue and manager.conf user.

    The extensions.conf contexts for 15654, the agent queue (queues.conf, members from
    ivr.queue_members and the agents table) and the manager.conf user the listener needs."""
    ctx = context()
    extensions = ctx.run(agent_service.queue_extensions)
    try:
        print(render_asterisk_config(ctx.settings, extensions))
    except ValueError as exc:
        fail(str(exc), ExitCode.CONFIG)


# --- QA, recordings and the audit log (issue 7) ----------------------------------------------


def parse_period(value: str, what: str) -> timedelta:
    """7d, 24h, 2w: a period ending now."""
    match = re.fullmatch(r"\s*(\d+)\s*([hdw])\s*", value.lower())
    if match is None:
        fail(f"{what} must be a number of hours, days or weeks (24h, 7d, 2w), got {value!r}")
    hours = {"h": 1, "d": 24, "w": 24 * 7}[match.group(2)]
    return timedelta(hours=int(match.group(1)) * hours)


def finding_rows(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(finding) for finding in findings]


@qa_app.command("verify")
def qa_verify(
    since: Annotated[
        str | None, typer.Option(metavar="DATE", help="Re-hash recordings since (ISO).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-hash recordings: changed, missing and unexpected files (exit code 1 if any)."""
    ctx = context()
    start = parse_date(since, "--since")
    actor: Actor = ctx.as_user(lambda _session, actor: actor)
    result = verify_recordings(ctx.db, ctx.settings, actor, since=start)
    problems = {
        "changed": result.changed,
        "missing": result.missing,
        "unexpected": result.unexpected,
    }
    if as_json:
        emit_json(
            {"checked": result.checked, "intact": result.intact}
            | {kind: finding_rows(found) for kind, found in problems.items()}
        )
    else:
        out.print(f"recordings checked: {result.checked}")
        labels = {"changed": "معدّل", "missing": "مفقود", "unexpected": "غير متوقع"}
        table = Table(*(terminal.visual(h, ctx.bidi) for h in ("المشكلة", "التسجيل", "المرجع")))
        table.add_column("path / note")
        for kind, found in problems.items():
            for item in found:
                table.add_row(
                    terminal.visual(f"{labels[kind]} · {kind}", ctx.bidi),
                    "" if item.recording_id is None else str(item.recording_id),
                    item.case_reference or "",
                    f"{item.path} {item.note or ''}".strip(),
                )
        out.print(table if not result.intact else "[green]all recordings intact[/]")
    if not result.intact:
        raise typer.Exit(ExitCode.REFUSED)


@qa_app.command("sample")
def qa_sample(
    period: Annotated[str, typer.Option(help="Recordings of this last period: 24h, 7d, 2w.")],
    per_agent: Annotated[int, typer.Option(min=1, help="Recordings per agent.")],
    seed: Annotated[
        int | None, typer.Option(min=0, max=MAX_SEED, help="Repeat a draw with its seed.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Draw recordings to review, per agent and per category, never one you already had."""
    ctx = context()
    until = utcnow()
    since = until - parse_period(period, "--period")
    sample: Sample = ctx.as_user(
        lambda session, actor: draw_sample(
            session, actor, since=since, until=until, per_agent=per_agent, seed=seed
        )
    )
    rows = [
        {
            "recording": item.recording.id,
            "agent": item.agent,
            "stratum": item.stratum,
            "case": item.case_reference,
            "recorded_at": item.recording.created_at.isoformat(),
            "duration_seconds": item.recording.duration_seconds,
        }
        for item in sample.drawn
    ]
    if as_json:
        emit_json({"seed": sample.seed, "reviewer": sample.reviewer, "recordings": rows})
        return
    table = Table(
        *(terminal.visual(h, ctx.bidi) for h in ("التسجيل", "الموظف", "الفئة", "المرجع", "التاريخ"))
    )
    for item in sample.drawn:
        table.add_row(
            str(item.recording.id),
            item.agent,
            item.stratum,
            item.case_reference or "",
            local_time(item.recording.created_at, ctx.settings, short=True),
        )
    out.print(table)
    out.print(f"{len(rows)} recordings for {sample.reviewer}; seed {sample.seed}")


def ask_scores(ctx: Context) -> dict[str, float]:
    """The scorecard, one criterion at a time, asked again until the answer fits its scale."""
    scores: dict[str, float] = {}
    for criterion in ctx.settings.qa.criteria:
        question = f"{criterion.label_ar} · {criterion.code} ({choices(criterion)})"
        while criterion.code not in scores:
            answer = str(typer.prompt(terminal.visual(question, ctx.bidi)))
            try:
                scores[criterion.code] = parse_value(criterion, answer)
            except CasebookError as exc:
                err.print(str(exc))
    return scores


@qa_app.command("score")
def qa_score(
    recording: RecordingArgument,
    score: Annotated[
        list[str] | None,
        typer.Option(
            "--score",
            metavar="CODE=VALUE",
            help="code=value for every criterion (scripts; repeat).",
        ),
    ] = None,
    comment: Annotated[str | None, typer.Option(help="The reviewer's comment.")] = None,
) -> None:
    """Score a recording on the QA scorecard: asked criterion by criterion, or with --score."""
    ctx = context()
    criteria = {criterion.code: criterion for criterion in ctx.settings.qa.criteria}
    if score:
        scores: dict[str, float] = {}
        for item in score:
            code, _, answer = item.partition("=")
            if code not in criteria:
                fail(f"--score {item!r}: unknown criterion (choose from {', '.join(criteria)})")
            try:
                scores[code] = parse_value(criteria[code], answer)
            except CasebookError as exc:
                fail(str(exc))
    else:
        scores = ask_scores(ctx)
        if comment is None:
            comment = str(typer.prompt(terminal.visual("ملاحظات (comment)", ctx.bidi), default=""))
    review: QAReview = ctx.as_user(
        lambda session, actor: score_recording(
            session, ctx.settings.qa, actor, recording, scores, comment or None
        )
    )
    out.print(f"recording {recording} scored: {review.total or 0:.1f}%")


@qa_app.command("report")
def qa_report_command(
    period: Annotated[
        str | None, typer.Option(help="Reviews of this last period (24h, 7d, 2w); default all.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Per-agent and per-criterion averages of the QA scores, with the weighted total."""
    ctx = context()
    until = utcnow()
    since = None if period is None else until - parse_period(period, "--period")
    figures: QaReport = ctx.as_user(
        lambda session, actor: qa_report(session, ctx.settings.qa, actor, since=since, until=until)
    )
    if as_json:
        emit_json(figures.as_dict())
        return

    def number(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}"

    agents = Table(*(terminal.visual(h, ctx.bidi) for h in ("الموظف", "المراجعات", "المجموع %")))
    for row in figures.per_agent:
        agents.add_row(row.agent, str(row.reviews), number(row.total))
    out.print(agents)
    criteria = Table(
        *(terminal.visual(h, ctx.bidi) for h in ("المعيار", "الوزن", "المقياس", "المتوسط", "%"))
    )
    for item in figures.per_criterion:
        criteria.add_row(
            terminal.visual(f"{item.label_ar} · {item.code}", ctx.bidi),
            f"{item.weight:g}",
            item.scale,
            number(item.mean),
            number(item.percent),
        )
    out.print(criteria)
    out.print(f"reviews {figures.reviews}, weighted total {number(figures.total)}%")


@recordings_app.command("play")
def recordings_play(
    recording: RecordingArgument,
    reason: Annotated[str, typer.Option(help="Why you listen (kept in the audit log).")],
) -> None:
    """Listen to a recording (its SHA-256 is checked first; the access is audited)."""
    player = find_player()
    if player is None:
        fail(INSTALL_HINT)
    ctx = context()
    with tempfile.TemporaryDirectory(prefix="hotline-play-") as folder:
        copy: Path = ctx.as_user(
            lambda session, actor: copy_for_playing(
                session, actor, recording, reason, Path(folder), root=ctx.settings.recordings.root
            )
        )
        status = play(player, copy)
    if status != 0:
        fail(f"the player {Path(player[0]).name} stopped with exit code {status}")


@recordings_app.command("export")
def recordings_export(
    recording: RecordingArgument,
    to: Annotated[Path, typer.Option("--to", help="File or folder to write the copy to.")],
    reason: Annotated[str, typer.Option(help="Why it leaves the system (audit log).")],
) -> None:
    """Export a verified copy of a recording (the access is audited)."""
    ctx = context()
    target: Path = ctx.as_user(
        lambda session, actor: export_recording(
            session, actor, recording, to, reason, root=ctx.settings.recordings.root
        )
    )
    out.print(f"recording {recording} exported to {target}")


@recordings_app.command("retention")
def recordings_retention(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List only; delete nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete recordings past retention that no open case or QA review holds (audited)."""
    ctx = context()
    expired: list[Expired] = ctx.as_user(
        lambda session, actor: apply_retention(session, ctx.settings, actor, utcnow(), dry_run)
    )
    if as_json:
        emit_json([dataclasses.asdict(item) for item in expired])
    elif not expired:
        nothing = "لا توجد تسجيلات منتهية الاحتفاظ (nothing past retention)"
        out.print(terminal.visual(nothing, ctx.bidi))
    else:
        table = Table("recording", "case", "due", "deleted", "path / error")
        for item in expired:
            table.add_row(
                str(item.recording_id),
                item.case_reference or "",
                local_time(item.due, ctx.settings),
                "yes" if item.deleted else "no",
                item.error or item.path,
            )
        out.print(table)
        verb = "would be deleted" if dry_run else "deleted"
        out.print(f"{sum(1 for i in expired if i.deleted or dry_run)} recordings {verb}")
    if any(item.error for item in expired):
        raise typer.Exit(ExitCode.REFUSED)


@audit_app.command("verify")
def audit_verify(as_json: JsonOption = False) -> None:
    """Recompute the audit log's hash chain; exit code 1 at an edited or deleted entry."""
    ctx = context()
    chain: ChainReport = ctx.as_user(audit_service.verify_chain)
    broken = chain.first_break
    if as_json:
        emit_json(
            {
                "entries": chain.entries,
                "intact": chain.intact,
                "head": chain.head,
                "first_break": None if broken is None else dataclasses.asdict(broken),
            }
        )
    elif broken is None:
        out.print(f"[green]audit log intact[/]: {chain.entries} entries, head {chain.head}")
    else:
        out.print(f"[bold red]audit log broken[/]: {broken.message}")
    if broken is not None:
        raise typer.Exit(ExitCode.REFUSED)


@audit_app.command("list")
def audit_list(
    since: Annotated[str | None, typer.Option(metavar="DATE", help="From this date (ISO).")] = None,
    object_type: Annotated[
        str | None,
        typer.Option(metavar="TYPE", help="case, recording, call, callback, agent, audit…"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many entries.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """The audit log, newest first (supervisors and admins)."""
    ctx = context()
    start = parse_date(since, "--since")
    events: list[AuditEvent] = ctx.as_user(
        lambda session, actor: audit_service.list_events(
            session, actor, since=start, object_type=object_type, limit=limit
        )
    )
    fields = ("id", "at", "actor", "action", "object_type", "object_id", "allowed", "detail")
    if as_json:
        emit_json([model_row(event, fields) for event in events])
        return
    table = Table("id", "at", "actor", "action", "object", "ok", "detail")
    for event in events:
        detail = json.dumps(event.detail, ensure_ascii=False)
        table.add_row(
            str(event.id),
            local_time(event.at, ctx.settings, short=True),
            event.actor,
            event.action,
            f"{event.object_type} {event.object_id or ''}".strip(),
            "yes" if event.allowed else "[red]no[/]",
            terminal.cell(detail, 30, ctx.bidi),
        )
    out.print(table)


@app.command("demo")
def demo(
    calls: Annotated[int, typer.Option(min=1, max=50, help="How many calls to place.")] = 5,
    folder: Annotated[Path, typer.Option("--dir", help="Folder for the demo site.")] = Path(
        "var/demo"
    ),
) -> None:
    """The whole path on this machine, no Asterisk: simulated calls end as drafts to review.

    Simulated calls with Arabic speech go through the real IVR, AMI listener and Whisper, and
    end as drafts waiting for an agent."""
    result = run_demo(folder, calls, progress=lambda line: out.print(f"[dim]•[/] {line}"))
    mode = "visual" if out.is_terminal else "logical"
    width = max(out.width - 45, 20)
    headers = ("المرجع", "المتصل", "الحالة", "المسودة")
    table = Table(
        *(terminal.visual(h, mode) for h in headers), title=terminal.visual("الشكاوى المسجلة", mode)
    )
    for column in table.columns:
        column.no_wrap = True
    for case in result.cases:
        table.add_row(
            case.reference,
            case.caller_number or "",
            case.draft_state,
            terminal.cell(case.draft_text, width, mode),
        )
    out.print(table)
    out.print(f"{len(result.cases)} calls from first ring to draft in {result.seconds:.0f} s")
    config = result.config_path
    out.print("\nnext, try:")
    for command in (
        f"hotline -c {config} review",
        f"hotline -c {config} cases list",
        f"hotline -c {config} cases show {result.cases[0].reference}" if result.cases else "",
        f"hotline -c {config} calls list",
        f"hotline -c {config} status",
    ):
        if command:
            out.print(f"  .venv/bin/{command}")


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: a known failure is one clear line and an exit code, not a traceback."""
    try:
        app(args=list(argv) if argv is not None else None)
    except ConfigError as exc:
        err.print(f"[bold red]config error:[/] {exc}")
        sys.exit(ExitCode.CONFIG)
    except (FlowError, SpeechError, AudioError, ModelError, DemoError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(ExitCode.REFUSED)
    except DatabaseUnavailable as exc:
        err.print(f"[bold red]database unavailable:[/] {exc}")
        sys.exit(ExitCode.DATABASE)
    except CasebookError as exc:
        err.print(f"[bold red]refused:[/] {exc}")
        sys.exit(ExitCode.REFUSED)
    except SQLAlchemyError as exc:
        # A schema older than the code, a permission, a constraint: one line, not a traceback.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        err.print(f"[bold red]database error:[/] {reason} (try: hotline db upgrade)")
        sys.exit(ExitCode.DATABASE)


if __name__ == "__main__":
    main()
