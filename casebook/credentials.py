"""Passwords and session tokens: how they are made, stored and checked. The rules of signing in
(slowing, locking, sessions' lifetimes) are casebook.signin's; the admin's side is
casebook.agents'. Both use these.

Passwords are hashed with argon2id (argon2-cffi's ``PasswordHasher``, the library's defaults, so
a newer library's stronger defaults apply by rehashing at the next sign-in). Tokens are random
(``secrets.token_urlsafe(32)``) and stored only as their SHA-256: a copy of the database holds no
usable session.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, update

from casebook.errors import CasebookError
from casebook.models import SigninSession

# Module state so tests can swap in cheap parameters (tests/conftest.py); production code never
# replaces it.
hasher = PasswordHasher()

# A hash of a random password nobody knows, made with ``hasher``'s parameters, so that a user
# name that does not exist costs the same one verify as a wrong password.
_dummy: tuple[PasswordHasher, str] | None = None

# Long enough for any passphrase; a megabyte "password" is only a way to burn server time.
MAX_PASSWORD_LENGTH = 1024

# One-time passwords are read aloud or copied by hand: no 0/O, 1/l/I.
_ONE_TIME_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def hash_password(password: str) -> str:
    return hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; exactly one argon2 verify either way, also when there is
    no hash (an unknown user, an agent without a password yet)."""
    if stored_hash is None:
        stored_hash = _dummy_hash()
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return hasher.check_needs_rehash(stored_hash)


def _dummy_hash() -> str:
    global _dummy
    if _dummy is None or _dummy[0] is not hasher:
        _dummy = (hasher, hasher.hash(secrets.token_urlsafe(16)))
    return _dummy[1]


def check_new_password(password: str, username: str, min_length: int) -> None:
    """The password policy, one clear line when it is not met."""
    if len(password) < min_length:
        raise CasebookError(
            f"كلمة المرور قصيرة: {min_length} أحرف على الأقل "
            f"(the password must be at least {min_length} characters)"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise CasebookError(
            f"كلمة المرور طويلة جدًا (the password must be at most {MAX_PASSWORD_LENGTH} characters)"
        )
    if not password.strip():
        raise CasebookError("كلمة المرور فارغة (the password cannot be only spaces)")
    if password.strip().casefold() == username.strip().casefold():
        raise CasebookError(
            "كلمة المرور لا يجوز أن تكون اسم المستخدم (the password cannot be the user name)"
        )


def new_one_time_password() -> str:
    """Four groups of four (about 79 bits), e.g. ``k7mp-x2qr-9fhd-tw4c``."""
    groups = ("".join(secrets.choice(_ONE_TIME_ALPHABET) for _ in range(4)) for _ in range(4))
    return "-".join(groups)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def end_sessions(
    session: Session,
    agent_id: int,
    why: str,
    now: datetime,
    *,
    keep_digest: str | None = None,
) -> int:
    """End every open session of an agent (but the one whose digest is ``keep_digest``);
    returns how many ended."""
    statement = (
        update(SigninSession)
        .where(col(SigninSession.agent_id) == agent_id, col(SigninSession.ended_at).is_(None))
        .values(ended_at=now, ended_why=why)
    )
    if keep_digest is not None:
        statement = statement.where(col(SigninSession.token_sha256) != keep_digest)
    result = session.exec(statement)
    return int(result.rowcount)
