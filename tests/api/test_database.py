"""A locked database is the server's to ride out (issue 16 item 5): a request waits while
SQLite is locked and succeeds once it is released; past database.retry_seconds it is a clear
503 database_unavailable, never a 500."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.api.conftest import ApiSite
from tests.api.unix_http import Answer


@contextmanager
def write_lock(api_site: ApiSite) -> Iterator[None]:
    """Another process's write transaction on the SQLite file, held for the block."""
    url = api_site.settings.database.url
    if not url.startswith("sqlite:///"):
        pytest.skip("holds a SQLite write lock")
    holder = sqlite3.connect(Path(url.removeprefix("sqlite:///")), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


@contextmanager
def retrying_for(api_site: ApiSite, seconds: float) -> Iterator[None]:
    database = api_site.settings.database
    before = database.retry_seconds
    database.retry_seconds = seconds
    try:
        yield
    finally:
        database.retry_seconds = before


def test_a_locked_database_makes_a_request_wait_and_succeed(api_site: ApiSite) -> None:
    reference = api_site.case(department="billing")
    answers: list[Answer] = []
    request = threading.Thread(
        target=lambda: answers.append(api_site.client("biller").get(f"/v1/cases/{reference}"))
    )
    with retrying_for(api_site, 120.0), write_lock(api_site):
        request.start()
        request.join(1.0)
        assert request.is_alive(), "the request did not wait for the lock"
        assert answers == []
    request.join(60.0)
    (answer,) = answers
    assert answer.status == 200
    assert answer.json()["reference"] == reference


def test_a_database_held_past_the_retry_window_is_503(api_site: ApiSite) -> None:
    with retrying_for(api_site, 0.3), write_lock(api_site):
        answer = api_site.client("biller").get("/v1/cases")
        sign_in = api_site.sign_in("biller")
    for refused in (answer, sign_in):
        assert refused.status == 503
        assert refused.error["code"] == "database_unavailable"
        assert "database" in refused.error["error"]
    assert api_site.client("biller").get("/v1/cases").status == 200


def test_a_vanished_database_file_is_503_never_a_new_site(api_site: ApiSite) -> None:
    url = api_site.settings.database.url
    if not url.startswith("sqlite:///"):
        pytest.skip("moves the SQLite file away")
    path = Path(url.removeprefix("sqlite:///"))
    away = path.with_name(path.name + ".away")
    with retrying_for(api_site, 0.3):
        path.rename(away)
        try:
            answer = api_site.client("biller").get("/v1/cases")
            assert not path.exists()  # no new empty database in its place
        finally:
            away.rename(path)
    assert answer.status == 503
    assert answer.error["code"] == "database_unavailable"
    assert str(path) in answer.error["error"]
    # Put back, the same file serves again.
    assert api_site.client("biller").get("/v1/cases").status == 200
