"""The casebook's settings sections (config.yaml's database, phone, business_hours, sla, cases,
drafts, followup, callbacks, roles, signin, secrets and audit) and the ``Section`` base every
package's sections share.

The loader in hotline/app/config.py assembles them; casebook services take one section, or any
object that has the sections they read (``CasebookConfig``), never the application's settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import time
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LIBYAN_WORKING_WEEK: tuple[Weekday, ...] = ("sun", "mon", "tue", "wed", "thu")


class Section(BaseModel):
    # extra="forbid" is what turns a misspelt key into an error instead of a silent default.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatabaseSettings(Section):
    # SQLite file by default; a postgresql+psycopg:// URL for a multi-machine site. On
    # PostgreSQL this is the runtime role's, which every process but the migration uses.
    url: str = "sqlite:///var/hotline.db"
    # PostgreSQL only: the owner role's URL (same database), which `hotline db upgrade` and
    # `hotline db roles --apply` use; the server never needs it (casebook/roles.py).
    owner_url: str | None = None
    # How long a locked or unreachable database is retried before the operation fails clearly.
    retry_seconds: float = Field(10.0, ge=0)
    sqlite_busy_timeout_ms: int = Field(5000, ge=0)

    @model_validator(mode="after")
    def _owner_of_the_same_database(self) -> DatabaseSettings:
        if self.owner_url is None:
            return self
        if not (_is_postgresql(self.owner_url) and _is_postgresql(self.url)):
            raise ValueError(
                "owner_url is for PostgreSQL (url and owner_url both postgresql://...); "
                "SQLite has no roles"
            )
        if _database_of(self.owner_url) != _database_of(self.url):
            raise ValueError("owner_url and url name different databases (host, port, name)")
        return self


def _is_postgresql(url: str) -> bool:
    return url.startswith(("postgresql://", "postgresql+"))


def _database_of(url: str) -> tuple[str | None, int, str]:
    # Host, port and database name: what must agree between the two roles' URLs.
    parts = urlsplit(url)
    return parts.hostname, parts.port or 5432, parts.path.lstrip("/")


class PhoneSettings(Section):
    """Caller numbers (casebook.phone): every one is normalised to digits with an optional
    leading + before it is stored, and the callback context dials nothing else."""

    # The country's calling code; numbers presented with it (or 00 and it) match their
    # national form (a trunk 0 and the rest) when a caller is identified.
    country_code: str = Field("218", pattern=r"^[1-9][0-9]{0,2}$")
    # E.164 allows 15; the database columns hold 32 characters.
    max_digits: int = Field(15, ge=3, le=31)


class StatusByPhoneSettings(Section):
    """Status by phone (the IVR's "ask about a complaint"): guessing references is slowed."""

    # References looked up in one call that name no case of the caller's (no such case, or
    # someone else's); then the caller is told politely and the call ends. A mistyped one
    # (its check digit wrong) is asked again: it looks nothing up.
    wrong_per_call: int = Field(3, ge=1, le=20)
    # Lookups from one caller number (withheld numbers count as one) in the window, counted
    # in the database, so every IVR process shares them; past it each is refused and audited.
    per_number: int = Field(10, ge=1)
    window_minutes: float = Field(60.0, gt=0)


class BusinessHours(Section):
    timezone: str = "Africa/Tripoli"
    days: list[Weekday] = Field(default_factory=lambda: list(LIBYAN_WORKING_WEEK))
    start: time = time(8, 0)
    end: time = time(16, 0)
    holidays: list[str] = Field(default_factory=list)  # ISO dates, e.g. 2026-12-24

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("holidays")
    @classmethod
    def _iso_dates(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", item):
                raise ValueError(f"holiday {item!r} is not an ISO date (YYYY-MM-DD)")
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> BusinessHours:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        if not self.days:
            raise ValueError("days must name at least one working day")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def unknown_codes(labels: Mapping[str, str], codes: Iterable[str], field: str, of: str) -> None:
    """A name given to a code the site does not have is a typo: said, not ignored."""
    unknown = sorted(set(labels) - set(codes))
    if unknown:
        raise ValueError(f"{field} names {', '.join(map(repr, unknown))}, which {of} lacks")


class SlaSettings(Section):
    # Business hours promised to resolve a complaint, per category; default for the rest.
    default_hours: float = Field(40.0, gt=0)
    categories: dict[str, float] = Field(
        default_factory=lambda: {
            "billing": 24.0,
            "network": 16.0,
            "service": 40.0,
            "staff": 24.0,
            "other": 40.0,
        }
    )

    # The categories' Arabic names, for people's views (casebook.labels).
    category_labels_ar: dict[str, str] = Field(
        default_factory=lambda: {
            "billing": "الفواتير",
            "network": "الشبكة",
            "service": "الخدمة",
            "staff": "الموظفون",
            "other": "أخرى",
        }
    )

    @field_validator("categories")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, hours in value.items():
            if hours <= 0:
                raise ValueError(f"SLA for {name!r} must be positive hours")
        return value

    @model_validator(mode="after")
    def _labels_name_categories(self) -> SlaSettings:
        if "category_labels_ar" in self.model_fields_set:  # the defaults name the default ones
            unknown_codes(
                self.category_labels_ar, self.categories, "category_labels_ar", "categories"
            )
        return self


class CasesSettings(Section):
    departments: list[str] = Field(
        default_factory=lambda: ["customer-care", "billing", "technical", "sales"]
    )
    # New complaints from the IVR land here until an agent confirms and routes them.
    intake_department: str = "customer-care"
    # The departments' Arabic names, for people's views (casebook.labels).
    department_labels_ar: dict[str, str] = Field(
        default_factory=lambda: {
            "customer-care": "خدمة العملاء",
            "billing": "الفواتير",
            "technical": "الدعم الفني",
            "sales": "المبيعات",
        }
    )

    @model_validator(mode="after")
    def _intake_is_a_department(self) -> CasesSettings:
        if self.intake_department not in self.departments:
            raise ValueError(f"intake_department {self.intake_department!r} is not in departments")
        if "department_labels_ar" in self.model_fields_set:
            unknown_codes(
                self.department_labels_ar, self.departments, "department_labels_ar", "departments"
            )
        return self


class DraftSettings(Section):
    """The review of drafts (casebook.drafts)."""

    # Opening a draft takes it for this long, renewed while the agent works on it; past it the
    # draft is free again for anyone (an agent who crashed or walked away holds nothing).
    lease_minutes: float = Field(10.0, gt=0)


class FollowUpSettings(Section):
    # Consecutive "not satisfied" rounds before the case climbs one management level.
    rounds_before_escalation: int = Field(2, ge=1)
    max_escalation_level: int = Field(3, ge=1)
    # CES question: "how easy was it?" on 1..scale; a score >= easy_threshold counts as easy.
    effort_scale: int = Field(5, ge=2)
    effort_easy_threshold: int = Field(4, ge=1)


class CallbackSettings(Section):
    # After resolution, call the customer back within this many hours.
    followup_delay_hours: float = Field(24.0, ge=0)
    # Customers are called only inside this local window.
    call_window_start: time = time(9, 0)
    call_window_end: time = time(20, 0)
    owner_preference_minutes: float = Field(60.0, ge=0)
    retry_delay_minutes: float = Field(120.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    overdue_hours: float = Field(48.0, gt=0)
    agent_capacity: int = Field(10, ge=1)
    assign_interval_seconds: float = Field(60.0, gt=0)
    # Placing a callback (AMI Originate): ring the agent through this channel, then the dialplan
    # context below dials the customer (see `hotline asterisk config`).
    agent_channel: str = "Local/{extension}@hotline-agents"
    # The agent's phone, which the hotline-agents context dials (and whose state the queue
    # watches): PJSIP/{extension}, SIP/{extension}, IAX2/{extension}...
    agent_device: str = "PJSIP/{extension}"
    context: str = "hotline-callback"
    # The outbound trunk the callback context dials customers through.
    trunk: str = "PJSIP/outbound"
    caller_id: str = "15654"
    ring_seconds: int = Field(30, ge=5, le=300)

    @field_validator("agent_channel", "agent_device")
    @classmethod
    def _names_the_extension(cls, value: str) -> str:
        if "{extension}" not in value:
            raise ValueError("must contain {extension}, e.g. PJSIP/{extension}")
        return value


class RolesSettings(Section):
    """Which roles may do what. One table, read by casebook.access only."""

    see_all_cases: list[str] = Field(default_factory=lambda: ["supervisor", "qa", "admin"])
    close_without_satisfaction: list[str] = Field(default_factory=lambda: ["supervisor", "admin"])
    escalate: list[str] = Field(default_factory=lambda: ["agent", "supervisor", "admin"])
    # Act on other people's work: assign and reassign cases, reopen a closed case, release a
    # draft another agent holds.
    supervise_cases: list[str] = Field(default_factory=lambda: ["supervisor", "admin"])
    manage_agents: list[str] = Field(default_factory=lambda: ["admin"])
    view_reports: list[str] = Field(default_factory=lambda: ["supervisor", "qa", "admin"])
    view_audit: list[str] = Field(default_factory=lambda: ["supervisor", "admin"])
    play_recordings: list[str] = Field(default_factory=lambda: ["qa", "supervisor", "admin"])
    # Draw QA samples, score recordings, verify their integrity.
    review_recordings: list[str] = Field(default_factory=lambda: ["qa", "supervisor", "admin"])
    # Apply recording retention (delete old recordings).
    manage_recordings: list[str] = Field(default_factory=lambda: ["admin"])


class SigninSettings(Section):
    """Passwords, sessions and the brakes on guessing (casebook.signin)."""

    min_password_length: int = Field(10, ge=1)
    # Absolute lifetime of a session: past it the person signs in again, however busy.
    session_hours: float = Field(10.0, gt=0)
    # A session unused this long ends (a terminal left signed in at an empty desk).
    idle_minutes: float = Field(120.0, gt=0)
    # Consecutive failures of one account before each further try must wait...
    slow_after_failures: int = Field(5, ge=1)
    # ...this long after the first failure past them, doubling with each further one, up to the cap.
    slow_base_seconds: float = Field(1.0, gt=0)
    slow_cap_seconds: float = Field(60.0, gt=0)
    # Consecutive failures that lock the account until an admin resets its password.
    lock_after_failures: int = Field(20, ge=1)
    # Failures from one address (any user names) within the window before it is refused.
    address_failures: int = Field(50, ge=1)
    address_window_minutes: float = Field(15.0, gt=0)
    # A one-time password (a new agent's, or after a reset) not used within this is void.
    one_time_password_hours: float = Field(72.0, gt=0)

    @model_validator(mode="after")
    def _lock_after_slowing(self) -> SigninSettings:
        if self.lock_after_failures <= self.slow_after_failures:
            raise ValueError(
                "lock_after_failures must be greater than slow_after_failures "
                "(tries are slowed first, then the account is locked)"
            )
        if self.slow_cap_seconds < self.slow_base_seconds:
            raise ValueError("slow_cap_seconds must be at least slow_base_seconds")
        return self


class SecretsSettings(Section):
    """The site's secrets folder (casebook.site_secrets): the server's keys, outside the
    database, readable by the server's account only. A site on several machines gives each the
    same folder (copied, mode 0700, as the server's account)."""

    folder: Path = Path("var/secrets")


class AuditSettings(Section):
    """Signed audit checkpoints (casebook.audit)."""

    # The server signs a checkpoint after this many entries (and at every clean stop).
    checkpoint_every: int = Field(100, ge=1)
    # Each checkpoint is also appended here, outside the database, as one JSON line; None:
    # audit-checkpoints.jsonl in the secrets folder. Several machines must share one file.
    checkpoint_file: Path | None = None


class CasebookConfig(Protocol):
    """The sections casebook services read (hotline.app.config.Settings has them all)."""

    @property
    def phone(self) -> PhoneSettings: ...
    @property
    def business_hours(self) -> BusinessHours: ...
    @property
    def sla(self) -> SlaSettings: ...
    @property
    def cases(self) -> CasesSettings: ...
    @property
    def drafts(self) -> DraftSettings: ...
    @property
    def followup(self) -> FollowUpSettings: ...
    @property
    def callbacks(self) -> CallbackSettings: ...
    @property
    def roles(self) -> RolesSettings: ...
    @property
    def signin(self) -> SigninSettings: ...
    @property
    def secrets(self) -> SecretsSettings: ...
    @property
    def audit(self) -> AuditSettings: ...
