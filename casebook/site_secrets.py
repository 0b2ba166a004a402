"""The site's secrets folder: random keys the server keeps outside the database.

A database owner (or anyone who can rewrite the database) must not be able to forge what these
keys sign or predict what they scramble, so they live in files only the server's account can
read: a folder created 0700 (``secrets.folder``, default ``var/secrets``) holding one file per
key, created 0600 with random bytes.

Keys are made once, by the operator's `hotline db upgrade` (``create=True``), never by a
process that merely runs: a key that has gone missing is an error naming `hotline db upgrade`,
not silently replaced (a new audit key would make every signed checkpoint look forged, a new
reference key would start another numbering). A key file that is group- or world-readable, is
not a regular file (a symlink, a folder) or has the wrong length is refused with one line; so
is a folder others may write in (they could swap a key).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from casebook.errors import CasebookError
from casebook.settings import SecretsSettings

# The server's keys: each signs or scrambles one thing only (a key reused for two purposes
# would let what one signs stand for the other).
AUDIT_KEY = "audit-checkpoints"
REFERENCE_KEY = "references"
SITE_KEYS = (AUDIT_KEY, REFERENCE_KEY)
KEY_BYTES = 32  # 256 bits: HMAC-SHA256's block-sized key strength, far past guessing

_OTHERS = stat.S_IRWXG | stat.S_IRWXO


class SiteSecretError(CasebookError):
    """A key of the site's secrets folder is missing or unsafe; the message says which and what
    to do (one line)."""


def key_path(settings: SecretsSettings, name: str) -> Path:
    if name not in SITE_KEYS:
        raise ValueError(f"unknown site key {name!r} (known: {', '.join(SITE_KEYS)})")
    return settings.folder / f"{name}.key"


def load_key(settings: SecretsSettings, name: str, *, create: bool = False) -> bytes:
    """The named key's bytes. ``create`` (the operator's `hotline db upgrade` only): make the
    folder (0700) and the key (0600, random) when missing; an existing key is kept as it is."""
    path = key_path(settings, name)
    _check_folder(settings.folder, create=create)
    if create:
        _create(path)
    try:
        # O_NOFOLLOW: a symlink is refused here, not followed to whatever it points at.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SiteSecretError(
            f"the site key {path} is missing: run hotline db upgrade on the server host as the "
            "server's account (it creates the site's keys), or restore it from the backup"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            message = f"the site key {path} is a symlink, not a file: refused"
            raise SiteSecretError(message) from None
        raise SiteSecretError(f"cannot read the site key {path} ({exc.strerror})") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise SiteSecretError(f"the site key {path} is not a regular file: refused")
        if status.st_mode & _OTHERS:
            raise SiteSecretError(
                f"the site key {path} is readable by others (mode "
                f"{stat.S_IMODE(status.st_mode):04o}): refused; chmod 600 it and, since others "
                "could read it, replace the site's keys"
            )
        size = status.st_size
        data = os.read(descriptor, KEY_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) != KEY_BYTES:
        raise SiteSecretError(
            f"the site key {path} has {max(size, len(data))} bytes, not {KEY_BYTES}: refused "
            "(damaged or not a key of this hotline)"
        )
    return data


def create_site_keys(settings: SecretsSettings) -> list[Path]:
    """Every key the site needs, made where missing (`hotline db upgrade`); the keys' paths."""
    for name in SITE_KEYS:
        load_key(settings, name, create=True)
    return [key_path(settings, name) for name in SITE_KEYS]


def _check_folder(folder: Path, *, create: bool) -> None:
    if create and not folder.exists():
        try:
            folder.mkdir(mode=0o700, parents=True)
            folder.chmod(0o700)  # mkdir's mode is filtered by the umask
        except OSError as exc:
            raise SiteSecretError(
                f"cannot create the secrets folder {folder} ({exc.strerror}); fix "
                "secrets.folder or its parent's permissions"
            ) from None
    try:
        status = folder.lstat()
    except FileNotFoundError:
        raise SiteSecretError(
            f"the secrets folder {folder} is missing: run hotline db upgrade on the server host "
            "as the server's account (it creates the site's keys), or restore it from the backup"
        ) from None
    if not stat.S_ISDIR(status.st_mode):
        raise SiteSecretError(f"the secrets folder {folder} is not a folder: refused")
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SiteSecretError(
            f"the secrets folder {folder} may be written by others (mode "
            f"{stat.S_IMODE(status.st_mode):04o}): refused; chmod 700 it"
        )


def _create(path: Path) -> None:
    """Write the key beside its place and link it in: a reader never sees a half-written key,
    and an existing key (made a moment ago by another process too) is never replaced."""
    if path.exists():
        return
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(descriptor, 0o600)  # the umask may take bits off; never let it add any
            os.write(descriptor, secrets.token_bytes(KEY_BYTES))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    except OSError as exc:
        raise SiteSecretError(f"cannot create the site key {path} ({exc.strerror})") from None
    finally:
        draft.unlink(missing_ok=True)
