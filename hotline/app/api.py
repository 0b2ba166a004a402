"""The HTTP API people's CLI talks to (issue 16): parse, call a service as the person signed
in, render JSON. The rules stay in the services (casebook, recordings); nothing here decides
who may do what.

Every request but ``POST /v1/sessions`` carries ``Authorization: Bearer <token>``; the token
becomes the Actor inside the same unit of work as the service call. Times go out in the site's
time zone with its offset, and request times without an offset are read in it. Every error is
``{"error": one line, "code": word}`` with the status the API contract gives it (issue 16),
mapped once, by exception class, in ``add_error_handlers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, SQLModel
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from casebook import agents as agent_service
from casebook import audit as audit_service
from casebook import callbacks as callback_service
from casebook import calls as calls_service
from casebook import case_search, signin, timeline
from casebook import cases as case_service
from casebook import drafts as draft_service
from casebook import followups as followup_service
from casebook import notes as note_service
from casebook.access import Actor
from casebook.call_status import call_status
from casebook.case_search import CaseQuery
from casebook.clock import utcnow
from casebook.db import Database
from casebook.draft_leases import Lease
from casebook.errors import (
    AccessDenied,
    CasebookError,
    Conflict,
    DatabaseUnavailable,
    IllegalTransition,
    Taken,
)
from casebook.errors import NotFound as CaseNotFound
from casebook.labels import CALL_STATUS_LABELS_AR, label_ar, labels_ar
from casebook.models import (
    Agent,
    Callback,
    Case,
    CaseStatus,
    ContactMethod,
    FollowUp,
    Priority,
)
from casebook.operations import site_status
from casebook.paging import Page
from casebook.reference import western_digits
from casebook.reports import build_report
from casebook.signin import SigninRefused
from casebook.site_secrets import SiteSecretError
from casebook.workflow import STATUS_LABELS_AR
from hotline.app.config import Settings
from hotline.app.dial import DialError, dial_callback
from inert_text import inert, json_text
from recordings import catalogue
from recordings.integrity import verify_recordings
from recordings.listening import TamperedRecording, report_playback, verified_copy
from recordings.retention import apply_retention
from recordings.sampling import MAX_SEED, draw_sample
from recordings.scorecard import (
    choices,
    parse_answers,
    qa_report,
    score_context,
    score_recording,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# --- the site every request works on --------------------------------------------------------


@dataclass(frozen=True)
class Site:
    db: Database
    settings: Settings
    # The server's private folder (0700) for verified recording copies while they are sent.
    copies: Path

    @property
    def zone(self) -> ZoneInfo:
        return self.settings.business_hours.zone


@dataclass(frozen=True)
class Caller:
    """A request with its bearer token: the person is known inside the unit of work."""

    site: Site
    token: str

    def run(self, work: Callable[[Session, Actor], T]) -> T:
        """``work`` as the signed-in person, in one unit of work with the session check (an
        ended session refuses before anything is read)."""
        roles = self.site.settings.roles

        def unit(session: Session) -> T:
            actor = signin.actor_for_token(session, self.token, roles, now=utcnow())
            return work(session, actor)

        return self.site.db.run(unit)

    def actor(self) -> Actor:
        """The person alone, for services that run their own units of work."""
        return self.run(lambda _session, actor: actor)


async def current_site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


async def current_caller(request: Request) -> Caller:
    # No header, another scheme or an empty token: "" matches no session, so the sign-in
    # service refuses it exactly like an unknown or ended one (401 signin_required).
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else ""
    return Caller(request.app.state.site, bearer)


SiteDep = Annotated[Site, Depends(current_site)]
CallerDep = Annotated[Caller, Depends(current_caller)]


# --- JSON out ---------------------------------------------------------------------------------


def plain(value: Any, zone: ZoneInfo) -> Any:
    """``value`` as JSON-ready data: the one serialiser of the API. Times become ISO 8601 in
    the site's zone with its offset (stored times are UTC; a naive one is taken as UTC).
    Table rows are not taken whole (an agent's row holds its password hash): ``pick`` names
    the columns that go out."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=ZoneInfo("UTC"))
        return aware.astimezone(zone).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="minutes")
    if isinstance(value, Enum):
        return plain(value.value, zone)
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: plain(getattr(value, field.name), zone)
            for field in dataclasses.fields(value)
        }
    if isinstance(value, dict):
        return {str(key): plain(item, zone) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [plain(item, zone) for item in items]
    raise TypeError(f"no JSON form for {type(value).__name__}")


def pick(model: SQLModel, fields: tuple[str, ...], site: Site) -> dict[str, Any]:
    """``fields`` of a stored row as JSON, each coded field with its Arabic name beside it
    (``<field>_label_ar``, casebook.labels): the one place a row is serialised."""
    return labelled(
        type(model), {name: plain(getattr(model, name), site.zone) for name in fields}, site
    )


def labelled(model: type[SQLModel], row: dict[str, Any], site: Site) -> dict[str, Any]:
    """``row`` (of ``model``, in JSON form) with its coded fields' Arabic names: every coded
    field has its ``_label_ar`` key, None when it holds nothing."""
    return row | labels_ar(site.settings, model, row)


class InertJSONResponse(JSONResponse):
    """JSON as Starlette writes it, but with every character a terminal would act on (ESC and
    the other controls, C1, the bidi controls) written as a \\u escape: the values are the
    data as stored (a client parses them back unchanged; making them inert is the job of
    whatever shows them, the CLI's edge), and the body itself is inert wherever it is printed
    (curl, a log)."""

    def render(self, content: Any) -> bytes:
        return json_text(content, compact=True, allow_nan=False).encode("utf-8")


def reply(data: Any, status: int = 200) -> JSONResponse:
    return InertJSONResponse(data, status_code=status)


CASE_FIELDS = (
    "reference",
    "status",
    "category",
    "priority",
    "department",
    "caller_number",
    # The account or line number the caller keyed in the IVR (digits), beside the draft.
    "keypad_number",
    "created_at",
    "promised_by",
    "escalation_level",
    "draft_text",
    "draft_state",
    "confirmed_text",
    # What a change sends back as ``version`` (casebook.concurrency).
    "version",
)
AGENT_FIELDS = (
    "username",
    "display_name",
    "roles",
    "department",
    "languages",
    "skills",
    "extension",
    "shift_days",
    "shift_start",
    "shift_end",
    "capacity",
    "active",
)
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
    "cancel_reason",
    "cancelled_at",
    "version",
)
FOLLOWUP_FIELDS = ("at", "method", "result", "effort_score", "notes")
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
RECORDING_FIELDS = ("id", "kind", "duration_seconds", "created_at", "deleted_at")
AUDIT_FIELDS = (
    "id",
    "seq",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "allowed",
    "detail",
)


def case_row(case: Case, site: Site) -> dict[str, Any]:
    row = pick(case, CASE_FIELDS, site)
    first = ("reference", "status", "status_label_ar")
    return {key: row.pop(key) for key in first} | row


def story_step(step: timeline.Step, site: Site) -> dict[str, Any]:
    """A step of the case's history with the Arabic names of the codes its detail holds (the
    category and department a confirmation chose, the departments of a re-routing)."""
    row = labelled(Case, plain(step, site.zone), site)
    detail = labelled(Case, row["detail"], site)
    if step.action == "case.reroute":
        for end in ("from", "to"):
            detail[f"{end}_label_ar"] = label_ar(site.settings, Case, "department", detail.get(end))
    return row | {"detail": detail}


def recording_row(item: catalogue.Listed, site: Site) -> dict[str, Any]:
    return pick(item.recording, RECORDING_FIELDS, site) | {
        "case": item.case_reference,
        "agent": item.agent,
    }


def draft_row(case: Case, lease: Lease | None, site: Site) -> dict[str, Any]:
    """A draft with who has it open and until when (both None: nobody, or a lease run out)."""
    live = lease if lease is not None and lease.live else None
    return case_row(case, site) | {
        "leased_to": live.holder if live is not None else None,
        "leased_until": plain(live.until, site.zone) if live is not None else None,
    }


def agent_row(agent: Agent, site: Site) -> dict[str, Any]:
    """An agent as people see them: no shift days means the site's business hours, no capacity
    the site's callbacks.agent_capacity (``effective_capacity``)."""
    effective = agent.capacity or site.settings.callbacks.agent_capacity
    return pick(agent, AGENT_FIELDS, site) | {
        "effective_capacity": effective,
        "locked": agent.locked_at is not None,
    }


def callback_rows(session: Session, listed: list[Callback], site: Site) -> list[dict[str, Any]]:
    """Each callback with its case's reference and the user name of the agent holding it."""
    references = callback_service.case_references(session, listed)
    agents = callback_service.agent_usernames(session, listed)
    return [
        pick(callback, CALLBACK_FIELDS, site)
        | {
            "case": references.get(callback.id or 0),
            "agent": agents.get(callback.id or 0),
        }
        for callback in listed
    ]


# --- JSON in ----------------------------------------------------------------------------------


class BadRequest(Exception):
    """A request the API cannot read (a malformed date, say): 400, one line."""


class Body(BaseModel):
    # A misspelt key is an error, not a silently ignored option.
    model_config = ConfigDict(extra="forbid")


def site_time(value: str | None, what: str, zone: ZoneInfo) -> datetime | None:
    """An ISO date or date-time from a request (Arabic-Indic digits read as digits); without
    an offset it is the site's time."""
    if value is None or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(western_digits(value.strip()))
    except ValueError:
        raise BadRequest(
            f"{what} must be an ISO date or date-time (2026-11-01, 2026-11-01T08:00), got {value!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def site_until(value: str | None, zone: ZoneInfo) -> datetime | None:
    """``until`` as people mean it: a date alone includes that day (up to the next midnight)."""
    moment = site_time(value, "until", zone)
    if moment is None or value is None:
        return None
    try:
        date.fromisoformat(western_digits(value.strip()))
    except ValueError:
        return moment  # a date-time: that moment
    return moment + timedelta(days=1)


def site_period(
    since: str | None, until: str | None, zone: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """A request's period (each end optional); one that ends before it starts is refused, not
    answered with nothing."""
    start, end = site_time(since, "since", zone), site_until(until, zone)
    if start is not None and end is not None and start > end:
        raise BadRequest(
            f"since ({since}) is after until ({until}): the period ends before it starts"
        )
    return start, end


# --- errors, mapped once ------------------------------------------------------------------------


def error_reply(
    status: int, message: str, code: str, retry_after: float | None = None
) -> JSONResponse:
    # One line, inert: a refusal may echo what was typed or stored (a name, a reason), and
    # this line is what a client prints as it is.
    line = " ".join(inert(message, multiline=True).split()) or code
    body: dict[str, Any] = {"error": line, "code": code}
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"  # what a 401 must say: how to authenticate
    if retry_after is not None:
        body["retry_after"] = retry_after
        headers["Retry-After"] = str(max(math.ceil(retry_after), 1))
    return InertJSONResponse(body, status_code=status, headers=headers)


def casebook_refusal(exc: CasebookError, zone: tzinfo = UTC) -> JSONResponse:
    """A service's refusal, with the contract's status (most specific class first); times it
    names are in ``zone``, the site's."""
    if isinstance(exc, SigninRefused):
        return error_reply(exc.http_status, str(exc), exc.code, exc.retry_after)
    if isinstance(exc, DatabaseUnavailable):
        return error_reply(
            503, f"قاعدة البيانات غير متاحة (database unavailable): {exc}", "database_unavailable"
        )
    if isinstance(exc, SiteSecretError):
        # The server's own keys (its setup, not the request): the operator must act.
        return error_reply(
            503, f"مفاتيح الموقع غير متاحة (site keys unavailable): {exc}", "site_secrets"
        )
    if isinstance(exc, TamperedRecording):
        return error_reply(403, str(exc), "tampered")
    if isinstance(exc, AccessDenied):
        return error_reply(403, str(exc), "denied")
    if isinstance(exc, CaseNotFound):
        return error_reply(404, str(exc), "not_found")
    if isinstance(exc, Conflict):
        return error_reply(409, exc.line(zone), "conflict")
    if isinstance(exc, IllegalTransition):
        return error_reply(409, str(exc), "conflict")
    if isinstance(exc, Taken):
        return error_reply(409, exc.line(zone), "taken")
    return error_reply(400, str(exc), "refused")


def validation_line(exc: RequestValidationError) -> str:
    """The first problem of a request FastAPI could not parse, as one line."""
    errors = exc.errors()
    if not errors:
        return "طلب غير صالح (bad request)"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "طلب غير صالح (bad request): the body is not valid JSON"
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"طلب غير صالح (bad request): {where or 'body'}: {message}{more}"


HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}

# Far above any request of the API (a draft's text, a scorecard), far below harm.
MAX_BODY_BYTES = 1 << 20


class BodyLimit:
    """Refuses a body over ``limit`` bytes before it is read, and one of undeclared length
    (chunked): no request, not even an unauthenticated sign-in, makes the server hold more."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            length = headers.get("content-length")
            if length is None and "chunked" in headers.get("transfer-encoding", "").lower():
                refusal = error_reply(
                    411, "طلب غير صالح (bad request): send a Content-Length", "length_required"
                )
                await refusal(scope, receive, send)
                return
            if length is not None and (not length.isdigit() or int(length) > self.limit):
                refusal = error_reply(
                    413,
                    f"طلب كبير جدًا (request too large): at most {self.limit} bytes",
                    "too_large",
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def add_error_handlers(app: FastAPI) -> None:
    async def on_casebook(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CasebookError)
        site: Site = request.app.state.site
        return casebook_refusal(exc, site.zone)

    async def on_validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_reply(400, validation_line(exc), "invalid")

    async def on_bad_request(_request: Request, exc: Exception) -> Response:
        return error_reply(400, f"طلب غير صالح (bad request): {exc}", "invalid")

    async def on_dial(_request: Request, exc: Exception) -> Response:
        # The PBX could not be reached; nothing was dialled and the callback is as it was.
        return error_reply(503, f"تعذر الاتصال (cannot dial): {exc}", "pbx_unavailable")

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return error_reply(exc.status_code, str(exc.detail), code)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Which request; the traceback follows from uvicorn (Starlette raises it on after
        # this answer is sent).
        log.error("%s %s failed: %r", request.method, request.url.path, exc)
        return error_reply(500, "خطأ داخلي (internal error): see the server log", "internal")

    app.add_exception_handler(CasebookError, on_casebook)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(BadRequest, on_bad_request)
    app.add_exception_handler(DialError, on_dial)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


# --- the API ------------------------------------------------------------------------------------

router = APIRouter(prefix="/v1")


def client_address(request: Request) -> str:
    """Who is trying to sign in, for the per-address limit: the peer of a TCP connection,
    "unix" for the socket (uvicorn gives no peer there). No forwarded header is believed."""
    return request.client.host if request.client is not None else "unix"


# sessions and the person --------------------------------------------------------------------


class SignIn(Body):
    username: str
    password: str
    new_password: str | None = None


class PasswordChange(Body):
    current_password: str
    new_password: str


@router.post("/sessions", status_code=201)
def sign_in(body: SignIn, request: Request, site: SiteDep) -> JSONResponse:
    address = client_address(request)
    # The outcome is committed either way (failure counters, the audit entry); a refusal is
    # raised only after.
    outcome = site.db.run(
        lambda session: signin.sign_in(
            session,
            site.settings.signin,
            body.username,
            body.password,
            address=address,
            now=utcnow(),
            new_password=body.new_password,
        )
    )
    if isinstance(outcome, SigninRefused):
        raise outcome
    issued = {
        "token": outcome.token,
        "username": outcome.username,
        "display_name": outcome.display_name,
        "roles": outcome.roles,
        "expires_at": outcome.expires_at,
    }
    return reply(plain(issued, site.zone), 201)


@router.delete("/sessions/current", status_code=204)
def sign_out(caller: CallerDep) -> Response:
    caller.site.db.run(lambda session: signin.end_session(session, caller.token, now=utcnow()))
    return Response(status_code=204)


@router.get("/whoami")
def whoami(caller: CallerDep) -> JSONResponse:
    def work(session: Session, actor: Actor) -> dict[str, Any]:
        me = agent_service.agent_named(session, actor, actor.username)
        return agent_row(me, caller.site) | {
            "roles": actor.roles,
            "permissions": actor.permissions,
            "session_expires_at": signin.session_expires_at(session, caller.token, now=utcnow()),
        }

    return reply(plain(caller.run(work), caller.site.zone))


@router.post("/password", status_code=204)
def change_password(body: PasswordChange, caller: CallerDep) -> Response:
    caller.run(
        lambda session, actor: signin.change_password(
            session,
            caller.site.settings.signin,
            actor,
            body.current_password,
            body.new_password,
            now=utcnow(),
            # The person's other sessions end (whoever knew the old password is shut out);
            # the one that changed it goes on.
            keep_token=caller.token,
        )
    )
    return Response(status_code=204)


@router.get("/site")
def site_choices(caller: CallerDep) -> JSONResponse:
    """What a person chooses from when confirming a draft: the site's categories and
    departments. Signed-in people only."""
    settings = caller.site.settings
    caller.actor()
    return reply(
        {
            "categories": sorted(settings.sla.categories),
            "departments": list(settings.cases.departments),
        }
    )


# agents ---------------------------------------------------------------------------------------


class NewAgentBody(Body):
    username: str
    display_name: str
    roles: list[str]
    department: str | None = None
    languages: list[str] = Field(default_factory=lambda: ["ar"])
    skills: list[str] = Field(default_factory=list)
    extension: str | None = None
    shift_days: list[str] = Field(default_factory=list)
    shift_start: time | None = None  # "HH:MM", site time
    shift_end: time | None = None
    capacity: int | None = None


class AgentChanges(Body):
    """Only the details sent change; null clears one (no department, no extension, the site's
    business hours, the site's capacity)."""

    display_name: str | None = None
    roles: list[str] | None = None
    department: str | None = None
    languages: list[str] | None = None
    skills: list[str] | None = None
    extension: str | None = None
    shift_days: list[str] | None = None
    shift_start: time | None = None
    shift_end: time | None = None
    capacity: int | None = None

    def changes(self) -> dict[str, Any]:
        sent = self.model_dump(exclude_unset=True)
        for name in ("display_name", "roles", "languages", "skills", "shift_days"):
            if name in sent and sent[name] is None:
                raise BadRequest(f"{name} cannot be cleared, only changed")
        return sent


@router.get("/agents")
def list_agents(caller: CallerDep) -> JSONResponse:
    agents = caller.run(agent_service.list_agents)
    return reply([agent_row(agent, caller.site) for agent in agents])


@router.post("/agents", status_code=201)
def add_agent(body: NewAgentBody, caller: CallerDep) -> JSONResponse:
    added = caller.run(
        lambda session, actor: agent_service.add_agent(
            session, caller.site.settings, actor, body.username, agent_service.AgentDetails.of(body)
        )
    )
    created = {
        "agent": agent_row(added.agent, caller.site),
        "one_time_password": added.one_time_password,
    }
    return reply(created, 201)


@router.patch("/agents/{username}")
def edit_agent(username: str, body: AgentChanges, caller: CallerDep) -> JSONResponse:
    changes = body.changes()
    edited = caller.run(
        lambda session, actor: agent_service.edit_agent(
            session, caller.site.settings, actor, username, changes
        )
    )
    return reply(
        {
            "agent": agent_row(edited.agent, caller.site),
            "changed": plain(edited.changed, caller.site.zone),
        }
    )


@router.post("/agents/{username}/disable")
def disable_agent(username: str, caller: CallerDep) -> JSONResponse:
    disabled = caller.run(
        lambda session, actor: agent_service.disable_agent(session, actor, username, now=utcnow())
    )
    return reply(
        {
            "agent": agent_row(disabled.agent, caller.site),
            "sessions_ended": disabled.sessions_ended,
        }
    )


@router.post("/agents/{username}/enable")
def enable_agent(username: str, caller: CallerDep) -> JSONResponse:
    agent = caller.run(lambda session, actor: agent_service.enable_agent(session, actor, username))
    return reply({"agent": agent_row(agent, caller.site)})


@router.post("/agents/{username}/password-reset")
def reset_password(username: str, caller: CallerDep) -> JSONResponse:
    def work(session: Session, actor: Actor) -> tuple[Agent, str]:
        password = agent_service.reset_password(
            session, caller.site.settings, actor, username, now=utcnow()
        )
        return agent_service.agent_named(session, actor, username), password

    agent, password = caller.run(work)
    return reply({"agent": agent_row(agent, caller.site), "one_time_password": password})


# cases and follow-ups ---------------------------------------------------------------------------


class Change(Body):
    # The version of the case (as the API gave it) the change was decided on: if the case has
    # changed since, the change is refused (409) with a line naming what changed. Absent: the
    # case as it is when the request arrives.
    version: int | None = None


class Summary(Change):
    summary: str


class CloseBody(Change):
    reason: str | None = None


class Reason(Change):
    reason: str


class AssignBody(Change):
    to: str  # a user name


class NoteBody(Body):
    # A note changes nothing of the case, so it carries no version (casebook.notes).
    text: str


class FollowUpBody(Change):
    method: ContactMethod
    result: str  # satisfied, not-satisfied, partial, no-answer (the words agents type)
    effort_score: int | None = None
    notes: str | None = None
    reroute: str | None = None


def page_of(key: str, rows: list[dict[str, Any]], page: Page[Any]) -> dict[str, Any]:
    """Every listing's page: its rows under ``key``, how many more match (``more``; at least
    that many when ``more_exact`` is false) and, for listings paged by a key, the one to ask
    the next page ``after`` (None: the rest is had with a larger limit)."""
    return {key: rows, "more": page.more, "more_exact": page.more_exact, "after": None}


def page_reply(page: Page[Case], site: Site) -> JSONResponse:
    """A page of cases; the next is asked after the last reference shown."""
    rows = [case_row(case, site) for case in page.items]
    after = rows[-1]["reference"] if rows and page.more else None
    return reply(page_of("cases", rows, page) | {"after": after})


@router.get("/cases")
def list_cases(
    caller: CallerDep,
    status: CaseStatus | None = None,
    department: str | None = None,
    caller_number: str | None = None,
    reference: str | None = None,
    account: str | None = None,
    words: str | None = None,
    since: str | None = None,
    until: str | None = None,
    agent: str | None = None,
    overdue: bool = False,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
) -> JSONResponse:
    """Cases the person may see, newest first, filtered by any of the criteria (the listing and
    the search are one service, casebook.case_search)."""
    zone = caller.site.zone
    start, end = site_period(since, until, zone)
    query = CaseQuery(
        caller=caller_number,
        reference=reference,
        account=account,
        words=words,
        since=start,
        until=end,
        agent=agent,
        department=department,
        status=status,
        overdue=overdue,
    )
    page = caller.run(
        lambda session, actor: case_search.find_cases(
            session, caller.site.settings, actor, query, limit=limit, after=after
        )
    )
    return page_reply(page, caller.site)


@router.get("/cases/{reference}")
def show_case(reference: str, caller: CallerDep) -> JSONResponse:
    """The case and its story (casebook.timeline), people named by user name: README's
    "cases show --json" documents the keys."""

    def read(session: Session, actor: Actor) -> dict[str, Any]:
        story = timeline.case_story(session, actor, reference)
        heard = catalogue.list_recordings(session, actor, reference=reference, limit=None).items
        zone = caller.site.zone
        case = story.case
        site = caller.site
        return case_row(case, site) | {
            "assigned_to": story.assigned_to,
            "confirmed_by": story.confirmed_by,
            "confirmed_at": plain(case.confirmed_at, zone),
            "resolution_summary": case.resolution_summary,
            "resolved_at": plain(case.resolved_at, zone),
            "close_reason": case.close_reason,
            "closed_at": plain(case.closed_at, zone),
            "history": [story_step(step, site) for step in story.history],
            "followups": [labelled(FollowUp, plain(item, zone), site) for item in story.followups],
            "callbacks": [labelled(Callback, plain(item, zone), site) for item in story.callbacks],
            "recordings": [recording_row(item, site) for item in heard],
            "notes": plain(story.notes, zone),
        }

    return reply(caller.run(read))


@router.post("/cases/{reference}/start")
def start_work(reference: str, caller: CallerDep, body: Change | None = None) -> JSONResponse:
    seen = body.version if body is not None else None
    case = caller.run(
        lambda session, actor: case_service.start_work(session, actor, reference, seen_version=seen)
    )
    return reply(case_row(case, caller.site))


@router.post("/cases/{reference}/assign")
def assign_case(reference: str, body: AssignBody, caller: CallerDep) -> JSONResponse:
    case = caller.run(
        lambda session, actor: case_service.assign_case(
            session, actor, reference, to=body.to, seen_version=body.version
        )
    )
    return reply(case_row(case, caller.site) | {"assigned_to": body.to})


@router.post("/cases/{reference}/reopen")
def reopen_case(reference: str, body: Reason, caller: CallerDep) -> JSONResponse:
    case = caller.run(
        lambda session, actor: case_service.reopen_case(
            session, actor, reference, reason=body.reason, seen_version=body.version
        )
    )
    return reply(case_row(case, caller.site))


@router.post("/cases/{reference}/notes", status_code=201)
def add_note(reference: str, body: NoteBody, caller: CallerDep) -> JSONResponse:
    def work(session: Session, actor: Actor) -> dict[str, Any]:
        note = note_service.add_note(session, actor, reference, text=body.text)
        return {"id": note.id, "at": note.at, "by": actor.username, "text": note.text}

    return reply(plain(caller.run(work), caller.site.zone), 201)


@router.post("/cases/{reference}/resolve")
def resolve_case(reference: str, body: Summary, caller: CallerDep) -> JSONResponse:
    case = caller.run(
        lambda session, actor: case_service.resolve_case(
            session,
            caller.site.settings,
            actor,
            reference,
            summary=body.summary,
            seen_version=body.version,
        )
    )
    return reply(case_row(case, caller.site))


@router.post("/cases/{reference}/close")
def close_case(reference: str, caller: CallerDep, body: CloseBody | None = None) -> JSONResponse:
    # Every key is optional: so is the body.
    reason = body.reason if body is not None else None
    seen = body.version if body is not None else None
    case = caller.run(
        lambda session, actor: case_service.close_case(
            session, actor, reference, reason=reason, seen_version=seen
        )
    )
    return reply(case_row(case, caller.site))


@router.post("/cases/{reference}/escalate")
def escalate_case(reference: str, body: Reason, caller: CallerDep) -> JSONResponse:
    case = caller.run(
        lambda session, actor: case_service.escalate_case(
            session,
            caller.site.settings,
            actor,
            reference,
            reason=body.reason,
            seen_version=body.version,
        )
    )
    return reply(case_row(case, caller.site))


@router.post("/cases/{reference}/followups", status_code=201)
def log_followup(reference: str, body: FollowUpBody, caller: CallerDep) -> JSONResponse:
    followup = caller.run(
        lambda session, actor: followup_service.log_followup(
            session,
            caller.site.settings,
            actor,
            reference,
            method=body.method,
            result=followup_service.result_named(body.result),
            effort_score=body.effort_score,
            notes=body.notes,
            reroute_to=body.reroute,
            seen_version=body.version,
        )
    )
    return reply(pick(followup, ("id", *FOLLOWUP_FIELDS), caller.site), 201)


# drafts ---------------------------------------------------------------------------------------


class ConfirmBody(Change):
    text: str | None = None  # None: the draft as it stands
    category: str
    department: str | None = None
    priority: Priority = Priority.NORMAL


@router.get("/drafts")
def draft_queue(caller: CallerDep, taken: bool = False) -> JSONResponse:
    # taken: also the drafts other agents have open (listed as theirs), not only those free.
    drafts = caller.run(
        lambda session, actor: draft_service.draft_queue(session, actor, taken=taken)
    )
    return reply([draft_row(item.case, item.lease, caller.site) for item in drafts])


@router.get("/drafts/{reference}")
def open_draft(reference: str, caller: CallerDep) -> JSONResponse:
    def work(session: Session, actor: Actor) -> dict[str, Any]:
        draft = draft_service.open_draft(session, caller.site.settings, actor, reference)
        recording = draft.recording
        return {
            "case": draft_row(draft.case, draft.lease, caller.site),
            "recording": None
            if recording is None
            else {"id": recording.id, "duration_seconds": recording.duration_seconds},
            "marked_words": [[word, doubtful] for word, doubtful in draft.marked_words()],
            "numbers": plain(draft.spoken_numbers(), caller.site.zone),
        }

    return reply(caller.run(work))


@router.post("/drafts/{reference}/renew")
def renew_draft(reference: str, caller: CallerDep, body: Change | None = None) -> JSONResponse:
    """The agent still works on the draft they opened: their lease starts again."""
    seen = body.version if body is not None else None
    case, lease = caller.run(
        lambda session, actor: draft_service.renew_lease(
            session, caller.site.settings, actor, reference, seen_version=seen
        )
    )
    return reply(draft_row(case, lease, caller.site))


@router.post("/drafts/{reference}/release")
def release_draft(reference: str, caller: CallerDep, body: Change | None = None) -> JSONResponse:
    """Give a draft back: its holder's, or a supervisor's for anyone's. Answers the case and
    whose lease ended (``released_from``)."""
    seen = body.version if body is not None else None
    case, lease = caller.run(
        lambda session, actor: draft_service.release_lease(
            session, actor, reference, seen_version=seen
        )
    )
    return reply(draft_row(case, None, caller.site) | {"released_from": lease.holder})


@router.post("/drafts/{reference}/confirm")
def confirm_draft(reference: str, body: ConfirmBody, caller: CallerDep) -> JSONResponse:
    case = caller.run(
        lambda session, actor: draft_service.confirm_reviewed(
            session,
            caller.site.settings,
            actor,
            reference,
            text=body.text,
            category=body.category,
            department=body.department,
            priority=body.priority,
            seen_version=body.version,
        )
    )
    return reply(case_row(case, caller.site))


@router.post("/drafts/{reference}/reject")
def reject_draft(reference: str, body: Reason, caller: CallerDep) -> JSONResponse:
    case = caller.run(
        lambda session, actor: case_service.reject_draft(
            session, actor, reference, reason=body.reason, seen_version=body.version
        )
    )
    return reply(case_row(case, caller.site))


# callbacks ------------------------------------------------------------------------------------


@router.get("/callbacks")
def list_callbacks(
    caller: CallerDep, mine: bool = False, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> JSONResponse:
    def read(session: Session, actor: Actor) -> dict[str, Any]:
        page = callback_service.list_callbacks(session, actor, mine=mine, limit=limit)
        return page_of("callbacks", callback_rows(session, page.items, caller.site), page)

    return reply(caller.run(read))


@router.get("/callbacks/next")
def next_callback(caller: CallerDep) -> JSONResponse:
    """The callback to make now (``callback``), or null and ``reasons`` why there is none."""
    site = caller.site

    def read(session: Session, actor: Actor) -> dict[str, Any]:
        offer = callback_service.next_callback(session, site.settings, actor, utcnow())
        shown = [] if offer.callback is None else [offer.callback]
        return {
            "callback": next(iter(callback_rows(session, shown, site)), None),
            "reasons": plain(offer.reasons, site.zone),
            "waiting": offer.waiting,
            "scheduler_seen_at": plain(offer.scheduler_seen_at, site.zone),
            "shift": plain(offer.shift, site.zone),
        }

    return reply(caller.run(read))


@router.get("/callbacks/reminders")
def callback_reminders(caller: CallerDep) -> JSONResponse:
    counts = caller.run(lambda session, actor: callback_service.reminders(session, actor, utcnow()))
    return reply(plain(counts, caller.site.zone))


async def in_own_thread(work: Callable[[], T], name: str) -> T:
    """``work`` on a daemon thread of its own, awaited. For work that holds its thread for
    minutes: in the shared pool (40 threads), a few dozen of them would stall every other
    request; and the process may exit while one still runs."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[Any], None], value: Any) -> None:
        def apply() -> None:
            if not done.cancelled():  # the client went away
                outcome(value)

        with contextlib.suppress(RuntimeError):  # the server stopped meanwhile
            loop.call_soon_threadsafe(apply)

    def run() -> None:
        try:
            result = work()
        except BaseException as exc:
            settle(done.set_exception, exc)
        else:
            settle(done.set_result, result)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await done


@router.post("/callbacks/{callback_id}/dial")
async def dial(callback_id: int, caller: CallerDep) -> JSONResponse:
    """Blocks until the attempt ends (and the call with it, for its recording)."""
    site = caller.site

    def place() -> dict[str, Any]:
        outcome = dial_callback(site.db, site.settings, caller.actor(), callback_id)
        (row,) = site.db.run(lambda session: callback_rows(session, [outcome.callback], site))
        return {
            "result": plain(outcome.result, site.zone),
            "detail": outcome.detail,
            "callback": row,
            "max_attempts": site.settings.callbacks.max_attempts,
        }

    return reply(await in_own_thread(place, f"dial-{callback_id}"))


# figures --------------------------------------------------------------------------------------


@router.get("/report")
def report(caller: CallerDep, since: str | None = None, until: str | None = None) -> JSONResponse:
    zone = caller.site.zone
    start, end = site_period(since, until, zone)
    figures = caller.run(
        lambda session, actor: build_report(
            session, actor, caller.site.settings.followup, since=start, until=end
        )
    )
    data = plain(figures.as_dict(), zone)
    for key in ("since", "until"):  # the report keeps them as UTC text
        if data[key] is not None:
            data[key] = plain(datetime.fromisoformat(data[key]), zone)
    labels = {status: STATUS_LABELS_AR[CaseStatus(status)] for status in figures.cases_by_status}
    return reply(data | {"cases_by_status_label_ar": labels})


def called(status: str) -> dict[str, str]:
    return {"status": status, "status_label_ar": CALL_STATUS_LABELS_AR[status]}


@router.get("/calls")
def list_calls(
    caller: CallerDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 50
) -> JSONResponse:
    def read(session: Session, actor: Actor) -> dict[str, Any]:
        page = calls_service.list_calls(session, actor, limit=limit)
        rows = [
            pick(call, CALL_FIELDS, caller.site)
            | called(call_status(call.ended_at, call.abandoned))
            | {"case": calls_service.case_reference(session, call)}
            for call in page.items
        ]
        return page_of("calls", rows, page)

    return reply(caller.run(read))


@router.get("/status")
def status(caller: CallerDep) -> JSONResponse:
    figures = caller.run(lambda session, _actor: site_status(session, utcnow()))
    return reply(plain(figures, caller.site.zone))


# QA -------------------------------------------------------------------------------------------


class VerifyBody(Body):
    since: str | None = None


class SampleBody(Body):
    period_hours: float = Field(gt=0)
    per_agent: int = Field(ge=1)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    include_drawn: bool = False


class ScoreBody(Body):
    recording: int
    scores: dict[str, str]  # criterion code -> the answer as typed ("2", "yes", "نعم")
    comment: str | None = None
    # The latest version of the recording's score the reviewer was shown (0: none).
    version: int | None = Field(None, ge=0)


@router.get("/qa/criteria")
def qa_criteria(caller: CallerDep) -> JSONResponse:
    caller.actor()  # signed in: the scorecard is the site's, shown to its staff
    return reply(
        [
            {
                "code": criterion.code,
                "label_ar": criterion.label_ar,
                "weight": criterion.weight,
                "scale": criterion.scale,
                "choices": choices(criterion),
            }
            for criterion in caller.site.settings.qa.criteria
        ]
    )


@router.post("/qa/verify")
def qa_verify(caller: CallerDep, body: VerifyBody | None = None) -> JSONResponse:
    site = caller.site
    since = site_time(body.since if body is not None else None, "since", site.zone)
    result = verify_recordings(site.db, site.settings, caller.actor(), since=since)
    findings = {
        kind: plain(found, site.zone)
        for kind, found in (
            ("changed", result.changed),
            ("missing", result.missing),
            ("unexpected", result.unexpected),
        )
    }
    return reply({"checked": result.checked, "intact": result.intact} | findings)


@router.post("/qa/samples")
def qa_sample(body: SampleBody, caller: CallerDep) -> JSONResponse:
    until = utcnow()
    since = until - timedelta(hours=body.period_hours)
    sample = caller.run(
        lambda session, actor: draw_sample(
            session,
            actor,
            since=since,
            until=until,
            per_agent=body.per_agent,
            seed=body.seed,
            include_drawn=body.include_drawn,
        )
    )
    zone = caller.site.zone
    drawn = [
        {
            "recording": item.recording.id,
            "agent": item.agent,
            "stratum": item.stratum,
            "case": item.case_reference,
            "recorded_at": plain(item.recording.created_at, zone),
            "duration_seconds": item.recording.duration_seconds,
        }
        for item in sample.drawn
    ]
    return reply(
        {
            "seed": sample.seed,
            "reviewer": sample.reviewer,
            "since": plain(sample.since, zone),
            "until": plain(sample.until, zone),
            "repeated": sample.repeated,
            "include_drawn": sample.include_drawn,
            "excluded": sample.excluded,
            "recordings": drawn,
        }
    )


@router.post("/qa/scores", status_code=201)
def qa_score(body: ScoreBody, caller: CallerDep) -> JSONResponse:
    qa = caller.site.settings.qa
    review = caller.run(
        lambda session, actor: score_recording(
            session,
            qa,
            actor,
            body.recording,
            parse_answers(qa, body.scores),
            body.comment,
            seen_version=body.version,
        )
    )
    return reply(
        {"recording": review.recording_id, "version": review.version, "total": review.total},
        201,
    )


@router.get("/qa/recordings/{recording_id}")
def qa_recording(recording_id: int, caller: CallerDep) -> JSONResponse:
    """What a reviewer sees before scoring: the call and its score's versions."""
    context = caller.run(lambda session, actor: score_context(session, actor, recording_id))
    zone = caller.site.zone
    return reply(
        {
            "recording": context.recording,
            "kind": context.kind,
            "agent": context.agent,
            "ivr_only": context.ivr_only,
            "case": context.case,
            "duration_seconds": context.duration_seconds,
            "recorded_at": plain(context.recorded_at, zone),
            "latest_version": context.latest_version,
            "versions": plain(context.versions, zone),
        }
    )


@router.get("/qa/report")
def qa_report_figures(
    caller: CallerDep, period_hours: Annotated[float | None, Query(gt=0)] = None
) -> JSONResponse:
    until = utcnow()
    since = None if period_hours is None else until - timedelta(hours=period_hours)
    figures = caller.run(
        lambda session, actor: qa_report(
            session, caller.site.settings.qa, actor, since=since, until=until
        )
    )
    data = plain(figures.as_dict(), caller.site.zone)
    data["since"], data["until"] = plain([figures.since, figures.until], caller.site.zone)
    return reply(data)


# recordings -----------------------------------------------------------------------------------


class RetentionBody(Body):
    dry_run: bool


AUDIO_CHUNK = 1 << 16


def attachment(name: str) -> str:
    """Content-Disposition for a download named ``name`` (RFC 6266; RFC 5987 when not ASCII)."""
    quoted = quote(name)
    if quoted == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename*=utf-8''{quoted}"


@router.get("/recordings")
def list_recordings(
    caller: CallerDep,
    case: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> JSONResponse:
    page = caller.run(
        lambda session, actor: catalogue.list_recordings(
            session, actor, reference=case, limit=limit
        )
    )
    rows = [recording_row(item, caller.site) for item in page.items]
    return reply(page_of("recordings", rows, page))


@router.get("/recordings/{recording_id}/audio", response_model=None)
def recording_audio(
    recording_id: int,
    caller: CallerDep,
    purpose: Literal["play", "export"],
    reason: str,
) -> StreamingResponse:
    """A copy verified against its SHA-256 as it was written, streamed to the client."""
    site = caller.site
    # One private folder per request: a retried unit of work writes the same file again.
    folder = Path(tempfile.mkdtemp(prefix="copy-", dir=site.copies))
    try:
        copy = caller.run(
            lambda session, actor: verified_copy(
                session,
                actor,
                recording_id,
                reason,
                folder,
                purpose=purpose,
                root=site.settings.recordings.root,
            )
        )
        audio = copy.path.open("rb")
    finally:
        # Open, the copy needs no name: nothing is left behind, even if the sending stops.
        shutil.rmtree(folder, ignore_errors=True)

    def chunks() -> Iterator[bytes]:
        with audio:
            while chunk := audio.read(AUDIO_CHUNK):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type="audio/wav",
        headers={
            "Content-Length": str(os.fstat(audio.fileno()).st_size),
            "Content-Disposition": attachment(copy.path.name),
            "X-Recording-SHA256": copy.sha256,
        },
        background=BackgroundTask(audio.close),
    )


class PlaybackBody(Body):
    reason: str
    outcome: Literal["played", "failed"]
    error: str | None = None  # the player's words, when it failed


@router.post("/recordings/{recording_id}/playback", status_code=201)
def recording_playback(recording_id: int, body: PlaybackBody, caller: CallerDep) -> JSONResponse:
    """The client's word on playing a copy it was sent: the server cannot hear it played."""
    caller.run(
        lambda session, actor: report_playback(
            session,
            actor,
            recording_id,
            body.reason,
            played=body.outcome == "played",
            error=body.error,
        )
    )
    return reply({"recording": recording_id, "outcome": body.outcome}, 201)


@router.post("/recordings/retention")
def retention(body: RetentionBody, caller: CallerDep) -> JSONResponse:
    expired = caller.run(
        lambda session, actor: apply_retention(
            session, caller.site.settings, actor, utcnow(), body.dry_run
        )
    )
    return reply(plain(expired, caller.site.zone))


# the audit log --------------------------------------------------------------------------------


@router.get("/audit/verify")
def audit_verify(caller: CallerDep) -> JSONResponse:
    settings = caller.site.settings
    chain = caller.run(lambda session, actor: audit_service.verify_chain(session, actor, settings))
    zone = caller.site.zone
    last = chain.last_checkpoint
    return reply(
        {
            "entries": chain.entries,
            "intact": chain.intact,
            "head": chain.head,
            "head_seq": chain.head_seq,
            "first_break": plain(chain.first_break, zone),
            "problems": plain(chain.problems, zone),
            "checkpoints": chain.checkpoints,
            "last_checkpoint": None
            if last is None
            else plain(
                {
                    "number": last.number,
                    "at": last.at,
                    "entry_seq": last.entry_seq,
                    "reason": last.reason,
                },
                zone,
            ),
            "unsigned": chain.unsigned,
        }
    )


@router.get("/audit")
def audit_list(
    caller: CallerDep,
    since: str | None = None,
    object_type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> JSONResponse:
    zone = caller.site.zone
    start = site_time(since, "since", zone)
    page = caller.run(
        lambda session, actor: audit_service.list_events(
            session, actor, since=start, object_type=object_type, limit=limit
        )
    )
    rows = [pick(event, AUDIT_FIELDS, caller.site) for event in page.items]
    return reply(page_of("events", rows, page))


# --- the application --------------------------------------------------------------------------


def build_api(db: Database, settings: Settings, *, copies: Path | None = None) -> FastAPI:
    """The API over ``db``. ``copies``: a private folder for recording copies being sent (one
    is made under the system's temporary folder if not given; the server removes it on stop).
    No documentation routes: nothing but ``POST /v1/sessions`` answers without a session."""
    folder = copies if copies is not None else Path(tempfile.mkdtemp(prefix="hotline-audio-"))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    app = FastAPI(
        title="15654 hotline",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.site = Site(db, settings, folder)
    app.add_middleware(BodyLimit)
    add_error_handlers(app)
    app.include_router(router)
    return app
