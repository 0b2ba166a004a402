"""`hotline`: the one door for people. Commands parse, call a service, render; no rules here."""

from __future__ import annotations

import csv
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session, SQLModel

from casebook import agents as agent_service
from casebook import cases as case_service
from casebook import followups as followup_service
from casebook.access import Actor
from casebook.db import Database, upgrade_schema
from casebook.errors import CasebookError, DatabaseUnavailable
from casebook.models import Agent, Case, CaseStatus, ContactMethod, FollowUp, FollowUpResult
from casebook.reports import Report, build_report
from casebook.workflow import STATUS_LABELS_AR
from hotline import terminal
from hotline.config import ConfigError, Settings, load_settings
from hotline.demo import run_demo
from hotline.lifecycle import configure_logging, wait_for_stop_signal
from ivr_flows import (
    AgiServer,
    FlowError,
    SpeechError,
    build_prompts,
    load_flow,
    render_asterisk_config,
)
from ivr_flows.casebook_backend import CasebookBackend

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
prompts_app = typer.Typer(help="IVR prompt audio.", no_args_is_help=True)
asterisk_app = typer.Typer(help="Asterisk configuration for this site.", no_args_is_help=True)
app.add_typer(prompts_app, name="prompts")
app.add_typer(asterisk_app, name="asterisk")

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
    db: Database

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
    settings = load_settings(_state["config"])
    return Context(settings, Database(settings.database, migrate=migrate))


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
    username: str,
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
        list[str] | None, typer.Option("--shift-day", help="mon..sun (repeat).")
    ] = None,
    shift_start: Annotated[str | None, typer.Option(help="HH:MM")] = None,
    shift_end: Annotated[str | None, typer.Option(help="HH:MM")] = None,
) -> None:
    """Add an agent (admins only; the very first agent of a site must be an admin)."""
    ctx = context()
    start, end = parse_time(shift_start, "--shift-start"), parse_time(shift_end, "--shift-end")
    agent = ctx.run(
        lambda session: agent_service.add_agent(
            session,
            ctx.settings,
            getpass.getuser(),
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
        )
    )
    out.print(f"added agent {agent.username} ({', '.join(agent.roles)})")


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
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
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
def cases_show(reference: str, as_json: JsonOption = False) -> None:
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
    reference: str, summary: Annotated[str, typer.Option(help="What was done to fix it.")]
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
    reference: str,
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
def cases_escalate(reference: str, reason: Annotated[str, typer.Option(help="Why.")]) -> None:
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
    reference: str,
    method: Annotated[ContactMethod, typer.Option(help="How the customer was reached.")],
    result: Annotated[str, typer.Option(help="satisfied, not-satisfied, partial or no-answer.")],
    effort: Annotated[
        int | None, typer.Option(help="How easy it was for the customer (1..scale).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Notes.")] = None,
    reroute: Annotated[
        str | None, typer.Option(help="Re-route the case to this department.")
    ] = None,
) -> None:
    """Record a follow-up contact and its result."""
    results = {
        "satisfied": FollowUpResult.SATISFIED,
        "not-satisfied": FollowUpResult.NOT_SATISFIED,
        "partial": FollowUpResult.PARTIALLY_SATISFIED,
        "no-answer": FollowUpResult.NO_ANSWER,
    }
    if result not in results:
        fail(f"--result must be one of {', '.join(results)}, got {result!r}")
    ctx = context()
    followup = ctx.as_user(
        lambda session, actor: followup_service.log_followup(
            session,
            ctx.settings,
            actor,
            reference,
            method=method,
            result=results[result],
            effort_score=effort,
            notes=note,
            reroute_to=reroute,
        )
    )
    out.print(f"follow-up {followup.id} logged: {followup.result}")


# --- report ---------------------------------------------------------------------------------


@app.command("report")
def report(
    since: Annotated[str | None, typer.Option(help="From this date (ISO).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this date (ISO).")] = None,
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


# --- IVR ------------------------------------------------------------------------------------


@app.command("agi")
def agi() -> None:
    """Run the FastAGI server for the Arabic IVR until SIGTERM or Ctrl-C."""
    configure_logging()
    ctx = context()
    server = AgiServer(
        ctx.settings,
        CasebookBackend(ctx.db, ctx.settings),
        flow=load_flow(ctx.settings.ivr.flow_file),
    )
    try:
        host, port = server.start()
    except OSError as exc:
        fail(f"cannot listen on {ctx.settings.agi.host}:{ctx.settings.agi.port}: {exc.strerror}")
    out.print(f"FastAGI listening on {host}:{port} (stop with Ctrl-C or SIGTERM)")
    wait_for_stop_signal()
    server.stop(grace=ctx.settings.agi.command_timeout)


@prompts_app.command("build")
def prompts_build(
    voice: Annotated[
        str | None, typer.Option(help="auto, espeak-ng, mbrola-ar1 or mbrola-ar2.")
    ] = None,
) -> None:
    """Render the IVR's Arabic prompts and digits to 8 kHz WAV (studio recordings are kept)."""
    settings = load_settings(_state["config"])
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
    """Print the extensions.conf context for 15654 and the manager.conf user the listener needs."""
    print(render_asterisk_config(load_settings(_state["config"])))


# --- QA, recordings and the audit log (issue 7) ----------------------------------------------


@app.command("demo")
def demo(
    calls: Annotated[int, typer.Option(min=1, max=200, help="How many calls to place.")] = 5,
    folder: Annotated[Path, typer.Option("--dir", help="Folder for the demo site.")] = Path(
        "var/demo"
    ),
) -> None:
    """A first look: complaints registered, worked and closed on a demo site of its own."""
    result = run_demo(folder, calls, progress=lambda line: out.print(f"[dim]•[/] {line}"))
    mode = "visual" if out.is_terminal else "logical"
    table = Table("المرجع", "المتصل", "المسودة", title=terminal.visual("الشكاوى المسجلة", mode))
    for case in result.registered:
        table.add_row(
            case.reference or "", case.caller_number or "", terminal.cell(case.draft_text, 50, mode)
        )
    out.print(table)
    figures = result.report
    out.print(
        f"cases {figures.cases_total}, CSAT strict {figures.csat_strict}, CES {figures.ces}, "
        f"SLA met {figures.sla_met}"
    )
    config = result.config_path
    out.print("\nnext, try:")
    for command in (
        f"hotline -c {config} cases list",
        f"hotline -c {config} cases show {result.walked_through.reference}",
        f"hotline -c {config} report",
        f"hotline -c {config} agents list",
    ):
        out.print(f"  .venv/bin/{command}")


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: a known failure is one clear line and an exit code, not a traceback."""
    try:
        app(args=list(argv) if argv is not None else None)
    except ConfigError as exc:
        err.print(f"[bold red]config error:[/] {exc}")
        sys.exit(ExitCode.CONFIG)
    except (FlowError, SpeechError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(ExitCode.REFUSED)
    except DatabaseUnavailable as exc:
        err.print(f"[bold red]database unavailable:[/] {exc}")
        sys.exit(ExitCode.DATABASE)
    except CasebookError as exc:
        err.print(f"[bold red]refused:[/] {exc}")
        sys.exit(ExitCode.REFUSED)


if __name__ == "__main__":
    main()
