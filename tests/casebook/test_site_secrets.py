"""The site's secrets folder: keys made once by the operator, 0600 in a 0700 folder, and refused
with one line when missing or unsafe."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from casebook import site_secrets
from casebook.settings import SecretsSettings
from casebook.site_secrets import KEY_BYTES, SiteSecretError, create_site_keys, key_path, load_key

NAME = site_secrets.AUDIT_KEY


@pytest.fixture
def secrets(tmp_path: Path) -> SecretsSettings:
    return SecretsSettings(folder=tmp_path / "var" / "secrets")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_operator_makes_the_folder_0700_and_each_key_0600_once(
    secrets: SecretsSettings,
) -> None:
    old_umask = os.umask(0o022)  # a usual umask must not widen or narrow what is made
    try:
        paths = create_site_keys(secrets)
    finally:
        os.umask(old_umask)
    assert mode(secrets.folder) == 0o700
    assert [p.name for p in paths] == [f"{name}.key" for name in site_secrets.SITE_KEYS]
    for path in paths:
        assert mode(path) == 0o600 and path.stat().st_size == KEY_BYTES
    keys = [load_key(secrets, name) for name in site_secrets.SITE_KEYS]
    assert len(set(keys)) == len(keys)  # one key per purpose, random
    create_site_keys(secrets)  # again: kept, never replaced
    assert [load_key(secrets, name) for name in site_secrets.SITE_KEYS] == keys
    assert not [p for p in secrets.folder.iterdir() if p.name.startswith(".")]  # no drafts left


def test_a_missing_key_is_an_error_naming_db_upgrade_and_is_not_made(
    secrets: SecretsSettings,
) -> None:
    with pytest.raises(
        SiteSecretError, match=r"secrets folder .* is missing: run hotline db upgrade"
    ):
        load_key(secrets, NAME)
    secrets.folder.mkdir(mode=0o700, parents=True)
    with pytest.raises(SiteSecretError, match=r"audit-checkpoints\.key is missing: run hotline db"):
        load_key(secrets, NAME)
    assert list(secrets.folder.iterdir()) == []


@pytest.mark.parametrize("unsafe", [0o640, 0o604, 0o644, 0o660])
def test_a_key_readable_by_others_is_refused(secrets: SecretsSettings, unsafe: int) -> None:
    create_site_keys(secrets)
    key_path(secrets, NAME).chmod(unsafe)
    with pytest.raises(SiteSecretError, match=f"readable by others \\(mode {unsafe:04o}\\)"):
        load_key(secrets, NAME)
    # Making keys again does not paper over it.
    with pytest.raises(SiteSecretError, match="readable by others"):
        create_site_keys(secrets)


def test_a_key_that_is_not_a_regular_file_is_refused(secrets: SecretsSettings) -> None:
    create_site_keys(secrets)
    path = key_path(secrets, NAME)
    elsewhere = secrets.folder.parent / "elsewhere.key"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)  # a symlink to a good key is still refused: not followed
    with pytest.raises(SiteSecretError, match="is a symlink, not a file"):
        load_key(secrets, NAME)
    path.unlink()
    path.mkdir(mode=0o700)
    with pytest.raises(SiteSecretError, match="is not a regular file"):
        load_key(secrets, NAME)
    path.rmdir()
    os.mkfifo(path, 0o600)
    with pytest.raises(SiteSecretError, match="is not a regular file"):
        load_key(secrets, NAME)


@pytest.mark.parametrize(("length", "said"), [(0, "0 bytes"), (31, "31 bytes"), (33, "33 bytes")])
def test_a_key_of_the_wrong_length_is_refused(
    secrets: SecretsSettings, length: int, said: str
) -> None:
    create_site_keys(secrets)
    key_path(secrets, NAME).write_bytes(b"k" * length)
    with pytest.raises(SiteSecretError, match=f"has {said}, not {KEY_BYTES}"):
        load_key(secrets, NAME)


def test_a_folder_others_may_write_in_is_refused(secrets: SecretsSettings) -> None:
    create_site_keys(secrets)
    secrets.folder.chmod(0o770)
    with pytest.raises(SiteSecretError, match=r"may be written by others \(mode 0770\)"):
        load_key(secrets, NAME)
    secrets.folder.chmod(0o700)
    assert len(load_key(secrets, NAME)) == KEY_BYTES


def test_a_folder_that_is_a_file_is_refused(secrets: SecretsSettings) -> None:
    secrets.folder.parent.mkdir(parents=True)
    secrets.folder.write_text("not a folder")
    with pytest.raises(SiteSecretError, match="is not a folder"):
        load_key(secrets, NAME, create=True)


def test_only_the_sites_own_keys_have_names() -> None:
    with pytest.raises(ValueError, match="unknown site key"):
        key_path(SecretsSettings(), "ssh")
