from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotline.app.config import ConfigError, Settings, load_settings

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def _keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, value in data.items():
        if isinstance(value, dict) and prefix.count(".") < 1:
            keys |= _keys(value, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def test_the_shipped_config_yaml_names_every_setting_with_its_default() -> None:
    raw = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    defaults = Settings().model_dump(mode="json", exclude={"source"})
    assert _keys(raw) == _keys(defaults)
    shipped = load_settings(REPO / "config.yaml", environ={})
    defaults_here = Settings()
    defaults_here.resolve_paths(REPO)
    assert shipped.model_dump(mode="json") == defaults_here.model_dump(mode="json")
    assert shipped.business_hours.timezone == "Africa/Tripoli"


def test_operator_key_names_are_stable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
ami: {host: pbx.example, port: 5039, username: u, secret: s}
agi: {host: 0.0.0.0, port: 4574}
database: {url: "postgresql://hotline@db/hotline"}
recordings: {root: /srv/recordings}
transcription: {model: path, model_path: /opt/models/large-v3}
""",
    )
    settings = load_settings(path, environ={})
    assert (settings.ami.host, settings.ami.port, settings.ami.username, settings.ami.secret) == (
        "pbx.example",
        5039,
        "u",
        "s",
    )
    assert (settings.agi.host, settings.agi.port) == ("0.0.0.0", 4574)
    assert settings.database.url == "postgresql://hotline@db/hotline"
    assert settings.recordings.root == Path("/srv/recordings")
    assert settings.transcription.model_path == Path("/opt/models/large-v3")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("ami:\n  prot: 5038\n", "config.yaml: unknown key 'ami.prot' (check its spelling)"),
        ("amii:\n  port: 5038\n", "config.yaml: unknown key 'amii' (check its spelling)"),
        ("ami:\n  port: five\n", "config.yaml: ami.port: Input should be a valid integer"),
        ("ami:\n  port: 70000\n", "config.yaml: ami.port: Input should be less than or equal"),
        ("business_hours:\n  timezone: Mars/Base\n", "unknown time zone 'Mars/Base'"),
        ("business_hours:\n  days: [mon, fry]\n", "business_hours.days.1: Input should be"),
        ("business_hours:\n  start: '17:00'\n", "start must be before end"),
        ("cases:\n  intake_department: nowhere\n", "intake_department 'nowhere' is not in"),
        (
            "cases:\n  department_labels_ar:\n    bling: الفواتير\n",
            "department_labels_ar names 'bling', which departments lacks",
        ),
        (
            "sla:\n  category_labels_ar:\n    netwrk: الشبكة\n",
            "category_labels_ar names 'netwrk', which categories lacks",
        ),
        ("ami: [1, 2]\n", "config.yaml: ami: Input should be a valid dictionary"),
        ("- just a list\n", "the top level must be a mapping"),
        ("ami:\n  port: [\n", "line 3: not valid YAML"),
    ],
)
def test_a_config_mistake_is_one_line_naming_key_and_file(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, body), environ={})
    text = str(error.value)
    assert message in text
    assert "\n" not in text
    assert str(tmp_path) in text


def test_environment_overrides_the_file_and_names_itself_when_wrong(tmp_path: Path) -> None:
    path = write(tmp_path, "ami:\n  secret: from-file\n  port: 5038\n")
    settings = load_settings(
        path, environ={"HOTLINE_AMI__SECRET": "12345", "HOTLINE_CALLBACKS__MAX_ATTEMPTS": "5"}
    )
    assert settings.ami.secret == "12345"  # a numeric secret stays text
    assert settings.callbacks.max_attempts == 5
    with pytest.raises(ConfigError, match=r"environment HOTLINE_AMI__PORT: ami\.port"):
        load_settings(path, environ={"HOTLINE_AMI__PORT": "x"})
    with pytest.raises(ConfigError, match=r"unknown key 'ami\.sekret'"):
        load_settings(path, environ={"HOTLINE_AMI__SEKRET": "x"})


def test_config_file_from_environment_and_missing_files(tmp_path: Path) -> None:
    path = write(tmp_path, "ami:\n  port: 6000\n")
    assert load_settings(environ={"HOTLINE_CONFIG": str(path)}).ami.port == 6000
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.yaml", environ={})
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(environ={"HOTLINE_CONFIG": str(tmp_path / "missing.yaml")})


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: sqlite:///data/h.db\nrecordings:\n  root: rec\n")
    settings = load_settings(path, environ={})
    assert settings.database.url == f"sqlite:///{tmp_path / 'data/h.db'}"
    assert settings.recordings.root == tmp_path / "rec"


def test_times_parse_from_text(tmp_path: Path) -> None:
    path = write(tmp_path, "business_hours:\n  start: '07:30'\n  end: '15:00'\n")
    settings = load_settings(path, environ={})
    assert (settings.business_hours.start, settings.business_hours.end) == (time(7, 30), time(15))
