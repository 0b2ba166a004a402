"""Every operator setting, loaded from config.yaml and validated before anything runs.

Precedence: built-in defaults < the YAML file < environment variables
``HOTLINE_<SECTION>__<KEY>`` (secrets come that way, so they never sit in the file).
A typo or a wrong type is one line naming the key and the file: ``ConfigError``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

ENV_PREFIX = "HOTLINE_"
CONFIG_ENV = "HOTLINE_CONFIG"
DEFAULT_CONFIG_PATH = Path("config.yaml")

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LIBYAN_WORKING_WEEK: tuple[Weekday, ...] = ("sun", "mon", "tue", "wed", "thu")
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1")
QueueStrategy = Literal[
    "ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom", "rrordered"
]


def is_loopback(host: str) -> bool:
    """Whether an address (or ``localhost``) is this machine's loopback."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator (one line)."""


class Section(BaseModel):
    # extra="forbid" is what turns a misspelt key into an error instead of a silent default.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AmiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "hotline"
    secret: str = "hotline-secret"
    connect_timeout: float = Field(5.0, gt=0)
    action_timeout: float = Field(10.0, gt=0)
    keepalive_interval: float = Field(20.0, gt=0)
    reconnect_initial_delay: float = Field(0.5, gt=0)
    reconnect_max_delay: float = Field(30.0, gt=0)
    hotline_exten: str = "15654"
    # Server-side AMI filters (regexes on the event text): only what the call tracker reads.
    event_filters: list[str] = Field(
        default_factory=lambda: [
            "Event: Newchannel",
            "Event: NewCallerid",
            "Event: Newstate",
            "Event: Newexten",
            "Event: VarSet",
            "Event: UserEvent",
            "Event: Hangup",
            "Event: Cdr",
            "Event: OriginateResponse",
            "Event: AgentConnect",
        ]
    )
    # Channel variables the dialplan / IVR sets: the case reference and the MixMonitor file.
    case_variable: str = "HOTLINE_CASE"
    recording_variable: str = "MIXMONITOR_FILENAME"
    # UserEvents whose Choice header is an IVR menu choice; VarSets of these are choices too.
    menu_user_events: list[str] = Field(default_factory=lambda: ["HotlineMenu"])
    # Channel variables holding IVR choices (the IVR sets HOTLINE_CHOICES on every choice, so
    # choices made while the listener was down reach it with the channel's next event).
    choice_variables: list[str] = Field(default_factory=lambda: ["HOTLINE_CHOICES"])
    # The UserEvent whose File header names the caller's Record()ed message.
    message_user_event: str = "HotlineMessage"
    # The channel variable the IVR sets once the caller is served (registered, status, agent).
    outcome_variable: str = "HOTLINE_OUTCOME"
    # Calls followed at once; beyond it new calls are refused (see hotline.tracker).
    max_live_calls: int = Field(5000, ge=1)
    # AMI over TLS (manager.conf tlsenable): verify the server against tls_ca_file (None: the
    # system's CAs); tls_server_name: the name its certificate carries, when not ``host``.
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_server_name: str | None = None


class AgiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(4573, ge=1, le=65535)
    # Seconds to wait for Asterisk to answer one AGI command before the session is dropped.
    command_timeout: float = Field(30.0, gt=0)
    # Calls served at once (one thread each); a connection beyond it is closed at once.
    max_connections: int = Field(200, ge=1, le=10_000)
    # The longest one FastAGI session may last, whatever trickles in (longest message plus menus).
    session_seconds: float = Field(900.0, gt=0)
    # Addresses or networks (CIDR) allowed to connect; None: loopback only. Bound off loopback
    # (host 0.0.0.0 or a LAN address), list the Asterisk hosts here.
    allowed_peers: list[str] | None = None

    @field_validator("allowed_peers")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        for peer in value or []:
            try:
                ipaddress.ip_network(peer, strict=False)
            except ValueError as exc:
                raise ValueError(f"{peer!r} is not an IP address or network") from exc
        return value

    def peer_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Who may connect: allowed_peers, or loopback (IPv4 and IPv6) by default."""
        peers = self.allowed_peers if self.allowed_peers is not None else LOOPBACK_NETWORKS
        return [ipaddress.ip_network(peer, strict=False) for peer in peers]


class IvrSettings(Section):
    # The flow file the FastAGI server runs; None means the built-in ivr_flows/flows/hotline.yaml.
    flow_file: Path | None = None
    # Asterisk's sounds directory (e.g. /var/lib/asterisk/sounds, or a folder it links to):
    # prompts go to <sounds_dir>/ar/hotline/, Arabic digits to <sounds_dir>/ar/digits/.
    sounds_dir: Path = Path("var/sounds")
    # The channel language the dialplan sets: prompts and digits live in <sounds_dir>/<language>/.
    language: str = "ar"
    # auto: MBROLA ar1 when installed (non-commercial licence: fine for tests and demos, replace
    # with studio recordings in production), else espeak-ng's own Arabic voice.
    voice: Literal["auto", "espeak-ng", "mbrola-ar1", "mbrola-ar2"] = "auto"
    # Where the dialplan sends "0 speak to an agent" (queues.conf from `hotline asterisk config`).
    agent_queue: str = "hotline-agents"
    # How the queue rings its members (queues.conf strategy).
    queue_strategy: QueueStrategy = "rrmemory"
    # Seconds one member's phone rings before the queue tries the next.
    queue_ring_seconds: int = Field(15, ge=5, le=120)
    # The longest a caller waits in the queue; then the agents_busy prompt and goodbye.
    queue_wait_seconds: int = Field(120, ge=10, le=3600)
    # Agent extensions always in the queue, besides the agents table's (active, with extension).
    queue_members: list[str] = Field(default_factory=list)
    # The address Asterisk dials for FastAGI when agi.host is a wildcard bind (0.0.0.0 / ::).
    agi_public_host: str | None = None


class DatabaseSettings(Section):
    # SQLite file by default; a postgresql+psycopg:// URL for a multi-machine site.
    url: str = "sqlite:///var/hotline.db"
    # How long a locked or unreachable database is retried before the operation fails clearly.
    retry_seconds: float = Field(10.0, ge=0)
    sqlite_busy_timeout_ms: int = Field(5000, ge=0)


class RecordingsSettings(Section):
    root: Path = Path("var/recordings")


class PhoneSettings(Section):
    """Caller numbers (casebook.phone): every one is normalised to digits with an optional
    leading + before it is stored, and the callback context dials nothing else."""

    # The country's calling code; numbers presented with it (or 00 and it) match their
    # national form (a trunk 0 and the rest) when a caller is identified.
    country_code: str = Field("218", pattern=r"^[1-9][0-9]{0,2}$")
    # E.164 allows 15; the database columns hold 32 characters.
    max_digits: int = Field(15, ge=3, le=31)


class TranscriptionSettings(Section):
    # "whisper-base-pypi" is the multilingual base model shipped on PyPI; "path" uses model_path.
    model: Literal["whisper-base-pypi", "path"] = "whisper-base-pypi"
    model_path: Path | None = None
    cache_dir: Path = Path("var/models")
    # auto: CUDA (float16) when CTranslate2 sees a GPU, else CPU (int8).
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"
    cpu_threads: int = Field(2, ge=1)
    language: str = "ar"
    # Company, product and complaint words that help Whisper spell them; Latin ones among them
    # are also kept when stray Latin words are dropped. Measured with Whisper base on the test
    # set: ten common complaint words raised CER from 0.44 to 0.54 and doubled the time, so
    # keep the list short (product names) or empty unless a larger model is configured.
    hot_words: list[str] = Field(default_factory=list)
    initial_prompt: str | None = None
    beam_size: int = Field(5, ge=1)
    # 0.25 keeps narrow-band (8 kHz) speech that the usual 0.5 was measured to drop a third of.
    vad_threshold: float = Field(0.25, gt=0, lt=1)
    word_timestamps: bool = True
    # A segment Whisper thinks is silence (no-speech probability above this) and that decoded
    # with low confidence (average log-probability below the next) is dropped as invented text.
    no_speech_threshold: float = Field(0.6, ge=0, le=1)
    log_prob_threshold: float = -1.0
    # Text that compresses better than this (zlib) is a repetition loop.
    compression_ratio_threshold: float = Field(2.4, gt=0)
    # Segments below this average log-probability, words below this probability, are "doubtful"
    # (highlighted for the agent). On the synthetic test set 88% of the words under 0.5 were wrong
    # against 64% of those above; real voices score higher than these.
    doubtful_log_prob: float = -0.8
    doubtful_word_probability: float = Field(0.5, ge=0, le=1)
    # Phrases Whisper invents on silence or music, dropped from drafts (besides the built-in list).
    hallucinated_phrases: list[str] = Field(default_factory=list)
    # The job queue: a worker holds a job this long unless it renews (it does, every third);
    # a failed attempt is retried after retry_seconds, doubled each time, up to max_attempts.
    job_lease_seconds: float = Field(300.0, gt=0)
    job_max_attempts: int = Field(3, ge=1)
    job_retry_seconds: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _path_model_has_path(self) -> TranscriptionSettings:
        if self.model == "path" and self.model_path is None:
            raise ValueError("model 'path' needs model_path (a CTranslate2 Whisper directory)")
        return self


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

    @field_validator("categories")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, hours in value.items():
            if hours <= 0:
                raise ValueError(f"SLA for {name!r} must be positive hours")
        return value


class CasesSettings(Section):
    departments: list[str] = Field(
        default_factory=lambda: ["customer-care", "billing", "technical", "sales"]
    )
    # New complaints from the IVR land here until an agent confirms and routes them.
    intake_department: str = "customer-care"

    @model_validator(mode="after")
    def _intake_is_a_department(self) -> CasesSettings:
        if self.intake_department not in self.departments:
            raise ValueError(f"intake_department {self.intake_department!r} is not in departments")
        return self


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


class RetentionSettings(Section):
    recordings_days: int = Field(365, ge=1)


class RolesSettings(Section):
    """Which roles may do what. One table, read by casebook.access only."""

    see_all_cases: list[str] = Field(default_factory=lambda: ["supervisor", "qa", "admin"])
    close_without_satisfaction: list[str] = Field(default_factory=lambda: ["supervisor", "admin"])
    escalate: list[str] = Field(default_factory=lambda: ["agent", "supervisor", "admin"])
    manage_agents: list[str] = Field(default_factory=lambda: ["admin"])
    view_reports: list[str] = Field(default_factory=lambda: ["supervisor", "qa", "admin"])
    view_audit: list[str] = Field(default_factory=lambda: ["supervisor", "admin"])
    play_recordings: list[str] = Field(default_factory=lambda: ["qa", "supervisor", "admin"])
    # Draw QA samples, score recordings, verify their integrity.
    review_recordings: list[str] = Field(default_factory=lambda: ["qa", "supervisor", "admin"])
    # Apply recording retention (delete old recordings).
    manage_recordings: list[str] = Field(default_factory=lambda: ["admin"])


class QaCriterion(Section):
    code: str = Field(pattern=r"^[a-z][a-z_]*$")
    label_ar: str
    weight: float = Field(1.0, gt=0)
    # "0-2": not met / partly / fully; "yes/no": met or not.
    scale: Literal["0-2", "yes/no"] = "0-2"


def _criterion(code: str, label_ar: str, weight: float, scale: str = "0-2") -> QaCriterion:
    return QaCriterion.model_validate(
        {"code": code, "label_ar": label_ar, "weight": weight, "scale": scale}
    )


class QaSettings(Section):
    """The QA scorecard: what callers expect from complaint staff, each weighted and scaled."""

    criteria: list[QaCriterion] = Field(
        default_factory=lambda: [
            _criterion("listening_empathy", "الاستماع الجيد والتعاطف", 1.5),
            _criterion("seriousness", "الجدية في التعامل مع الشكوى", 1.0),
            _criterion("transparency", "الشفافية والوضوح", 1.0),
            _criterion("neutrality", "الحيادية والإنصاف", 1.0),
            _criterion("speed", "السرعة في الاستجابة", 1.0),
            _criterion("keeping_in_touch", "التواصل المستمر", 1.0),
            _criterion("practical_solutions", "تقديم حلول عملية", 1.5),
            _criterion("confidentiality", "السرية وحماية البيانات", 1.0, "yes/no"),
            _criterion("professionalism", "المهنية والاحترام", 1.0),
            _criterion("rebuilding_trust", "إعادة بناء الثقة", 1.0),
        ],
        min_length=1,
    )

    @field_validator("criteria")
    @classmethod
    def _unique_codes(cls, value: list[QaCriterion]) -> list[QaCriterion]:
        codes = [criterion.code for criterion in value]
        if len(set(codes)) != len(codes):
            raise ValueError("criterion codes must be unique")
        return value


class DisplaySettings(Section):
    # visual: reorder and shape Arabic for terminals without bidi support (most);
    # logical: leave text as stored, for terminals that apply bidi themselves (mlterm, Konsole).
    bidi: Literal["visual", "logical"] = "visual"


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # json: one JSON object per line (journald, Loki, ELK); text: for a person at a terminal.
    format: Literal["text", "json"] = "text"


class Settings(Section):
    ami: AmiSettings = Field(default_factory=AmiSettings)
    agi: AgiSettings = Field(default_factory=AgiSettings)
    ivr: IvrSettings = Field(default_factory=IvrSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    recordings: RecordingsSettings = Field(default_factory=RecordingsSettings)
    phone: PhoneSettings = Field(default_factory=PhoneSettings)
    transcription: TranscriptionSettings = Field(default_factory=TranscriptionSettings)
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    cases: CasesSettings = Field(default_factory=CasesSettings)
    followup: FollowUpSettings = Field(default_factory=FollowUpSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    roles: RolesSettings = Field(default_factory=RolesSettings)
    qa: QaSettings = Field(default_factory=QaSettings)
    display: DisplaySettings = Field(default_factory=DisplaySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    # Where the settings came from, for messages; not an operator setting.
    source: str = Field("built-in defaults", exclude=True)

    def resolve_paths(self, base: Path) -> None:
        """Make relative paths relative to the config file's folder, not the shell's."""
        self.recordings.root = _under(base, self.recordings.root)
        self.transcription.cache_dir = _under(base, self.transcription.cache_dir)
        self.ivr.sounds_dir = _under(base, self.ivr.sounds_dir)
        if self.ivr.flow_file is not None:
            self.ivr.flow_file = _under(base, self.ivr.flow_file)
        if self.transcription.model_path is not None:
            self.transcription.model_path = _under(base, self.transcription.model_path)
        if self.ami.tls_ca_file is not None:
            self.ami.tls_ca_file = _under(base, self.ami.tls_ca_file)
        prefix = "sqlite:///"
        url = self.database.url
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            self.database.url = prefix + str(_under(base, Path(url[len(prefix) :])))


def _under(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def _env_overrides(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    """HOTLINE_AMI__SECRET=x -> {"ami": {"secret": "x"}}; values are parsed as YAML scalars."""
    overrides: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        # A secret like "123" must stay a string: let the model coerce, keep the text for str.
        overrides.setdefault(section, {})[key] = raw if isinstance(value, (int, float)) else value
    return overrides


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ErrorDetails, origin: str) -> str:
    key = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{origin}: unknown key '{key}' (check its spelling)"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{origin}: {key}: {message} (got {error.get('input')!r})"


def config_path(explicit: Path | None = None, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH


def load_settings(
    path: Path | None = None, environ: dict[str, str] | None = None, *, required: bool = False
) -> Settings:
    """Load and validate settings. A missing default file means built-in defaults.

    ``required`` (an explicitly named file) makes a missing file an error.
    """
    env = dict(os.environ if environ is None else environ)
    chosen = config_path(path, env)
    named = required or path is not None or bool(env.get(CONFIG_ENV))
    data: dict[str, Any] = {}
    if chosen.exists():
        try:
            loaded = yaml.safe_load(chosen.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            kind = exc.__class__.__name__
            raise ConfigError(f"{chosen}{where}: not valid YAML ({kind})") from exc
        except OSError as exc:
            raise ConfigError(f"{chosen}: cannot read ({exc.strerror})") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{chosen}: the top level must be a mapping of sections")
        data = loaded
    elif named:
        raise ConfigError(f"{chosen}: config file not found")

    overrides = _env_overrides(env)
    try:
        settings = Settings.model_validate(_merge(data, overrides))
    except ValidationError as exc:
        first = exc.errors()[0]
        section = str(first["loc"][0]) if first["loc"] else ""
        key = str(first["loc"][1]) if len(first["loc"]) > 1 else ""
        from_env = section in overrides and (not key or key in overrides[section])
        origin = (
            f"environment {ENV_PREFIX}{section.upper()}__{key.upper()}" if from_env else str(chosen)
        )
        raise ConfigError(_describe(first, origin)) from exc
    settings.source = str(chosen) if chosen.exists() else "built-in defaults"
    settings.resolve_paths(chosen.resolve().parent if chosen.exists() else Path.cwd())
    return settings
