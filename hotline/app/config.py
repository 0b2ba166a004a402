"""Every operator setting, loaded from config.yaml and validated before anything runs.

Precedence: built-in defaults < the YAML file < environment variables
``HOTLINE_<SECTION>__<KEY>`` (secrets come that way, so they never sit in the file).
A typo or a wrong type is one line naming the key and the file: ``ConfigError``.

Each section is defined by the package that reads it (casebook/settings.py,
recordings/settings.py, transcription/settings.py, ivr_flows/settings.py, hotline/ami_settings.py);
``Settings`` assembles them; the application's own sections are here (display, logging) and in
hotline/app/server_settings.py (server).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError
from pydantic_core import ErrorDetails

from casebook.settings import (
    AuditSettings,
    BusinessHours,
    CallbackSettings,
    CasesSettings,
    DatabaseSettings,
    DraftSettings,
    FollowUpSettings,
    PhoneSettings,
    RolesSettings,
    SecretsSettings,
    Section,
    SigninSettings,
    SlaSettings,
    StatusByPhoneSettings,
)
from hotline.ami_settings import AmiSettings
from hotline.app.server_settings import ServerSettings
from ivr_flows.settings import AgiSettings, IvrSettings
from recordings.settings import QaSettings, RecordingsSettings, RetentionSettings
from transcription.settings import TranscriptionSettings

ENV_PREFIX = "HOTLINE_"
CONFIG_ENV = "HOTLINE_CONFIG"
DEFAULT_CONFIG_PATH = Path("config.yaml")


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator (one line)."""


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
    status_by_phone: StatusByPhoneSettings = Field(default_factory=StatusByPhoneSettings)
    transcription: TranscriptionSettings = Field(default_factory=TranscriptionSettings)
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    cases: CasesSettings = Field(default_factory=CasesSettings)
    drafts: DraftSettings = Field(default_factory=DraftSettings)
    followup: FollowUpSettings = Field(default_factory=FollowUpSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    roles: RolesSettings = Field(default_factory=RolesSettings)
    signin: SigninSettings = Field(default_factory=SigninSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    qa: QaSettings = Field(default_factory=QaSettings)
    display: DisplaySettings = Field(default_factory=DisplaySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    # Where the settings came from, for messages; not an operator setting.
    source: str = Field("built-in defaults", exclude=True)

    def resolve_paths(self, base: Path) -> None:
        """Make relative paths relative to the config file's folder, not the shell's."""
        self.recordings.root = _under(base, self.recordings.root)
        self.secrets.folder = _under(base, self.secrets.folder)
        if self.audit.checkpoint_file is not None:
            self.audit.checkpoint_file = _under(base, self.audit.checkpoint_file)
        self.transcription.cache_dir = _under(base, self.transcription.cache_dir)
        self.ivr.sounds_dir = _under(base, self.ivr.sounds_dir)
        if self.ivr.flow_file is not None:
            self.ivr.flow_file = _under(base, self.ivr.flow_file)
        if self.transcription.model_path is not None:
            self.transcription.model_path = _under(base, self.transcription.model_path)
        if self.ami.tls_ca_file is not None:
            self.ami.tls_ca_file = _under(base, self.ami.tls_ca_file)
        self.server.socket = _under(base, self.server.socket)
        if self.server.tls_cert is not None and self.server.tls_key is not None:
            self.server.tls_cert = _under(base, self.server.tls_cert)
            self.server.tls_key = _under(base, self.server.tls_key)
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
    given = error.get("input")
    if isinstance(given, dict):
        # A rule over several keys of a section: the message names them; the section's whole
        # mapping would bury it.
        return f"{origin}: {key}: {message}"
    return f"{origin}: {key}: {message} (got {given!r})"


def config_path(explicit: Path | None = None, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH


def load_site_settings(path: Path | None = None) -> Settings:
    """An operator command's settings: a site's config file (``path``, $HOTLINE_CONFIG or
    ./config.yaml), never the built-in defaults in whatever folder the command was run from,
    which would start a second, empty site there (its database, keys and recordings)."""
    if path is None and not os.environ.get(CONFIG_ENV) and not DEFAULT_CONFIG_PATH.exists():
        raise ConfigError(
            f"no hotline site here: {Path.cwd()} has no config.yaml; run this in the site's "
            "folder, or name its config with --config PATH or HOTLINE_CONFIG=PATH "
            "(nothing was created)"
        )
    return load_settings(path)


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
