"""`hotline audit verify` against a real server (tests/site.py): the server signs a checkpoint
when it stops (SIGTERM), an entry deleted from the end behind its back is found at the next
start, each problem is one line and the exit code 1; without its key the server neither starts
nor verifies, and says why."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from casebook import audit, site_secrets
from casebook.models import AuditEvent
from tests.conftest import BACKENDS, owner_connection
from tests.recordings.test_audit_checkpoints import triggers_lifted
from tests.site import Site, backend_url, running_site


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    """One site per backend, its tests in the order written: each leaves the site worse than it
    found it (a broken log, then no key), which the tests after it do not mind."""
    url = backend_url(request)
    with running_site(url) as running:
        yield running


def checkpoint_lines(site: Site) -> list[dict[str, object]]:
    path = audit.checkpoint_file(site.settings())
    return [json.loads(line) for line in path.read_text().splitlines()]


def last_entry(site: Site) -> AuditEvent:
    with site.database() as (db, _settings), db.session() as session:
        last = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc())).first()
    assert last is not None
    return last


def test_db_upgrade_made_the_sites_keys_0600_in_a_0700_folder(site: Site) -> None:
    folder = site.settings().secrets.folder
    assert folder == site.folder / "var" / "secrets"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in site_secrets.SITE_KEYS:
        path = site_secrets.key_path(site.settings().secrets, name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = site.operator("db", "upgrade")
    assert again.returncode == 0 and f"site keys in place: {folder}" in again.stdout


def test_a_clean_stop_is_signed_and_an_entry_deleted_after_it_is_found(site: Site) -> None:
    admin = site.people["admin"]
    intact = admin.ok("audit", "verify")
    assert "audit log intact" in intact.stdout and "signed checkpoints" in intact.stdout
    site.stop()  # SIGTERM: the server signs the log as it ends
    last = last_entry(site)
    signed = checkpoint_lines(site)[-1]
    assert (signed["reason"], signed["entry_seq"]) == ("shutdown", last.seq)

    with (
        site.database() as (db, _settings),
        triggers_lifted(db, "audit_event"),
        owner_connection(db) as connection,
    ):
        connection.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": last.seq})
    site.start()
    report = json.loads(admin.run("audit", "verify", "--json").stdout)
    assert report["intact"] is False
    (truncated,) = [p for p in report["problems"] if p["kind"] == "truncated"]
    assert (truncated["first_seq"], truncated["last_seq"]) == (last.seq, last.seq)
    assert f"entry {last.seq} deleted" in truncated["message"]
    # The entries since (this verify's own) took the deleted one's number: still found.
    broken = admin.run("audit", "verify")
    assert broken.returncode == 1, broken.stderr
    lines = broken.stdout.splitlines()
    assert "audit log broken" in lines[0]
    problem_lines = lines[1:]
    assert problem_lines and all(line.startswith("  - ") for line in problem_lines)
    assert any(
        f"up to entry {last.seq}," in line and "at a clean stop" in line for line in problem_lines
    )


def test_without_its_key_the_server_does_not_verify_nor_start(site: Site) -> None:
    key = site_secrets.key_path(site.settings().secrets, site_secrets.AUDIT_KEY)
    saved = key.read_bytes()
    key.unlink()
    refused = site.people["admin"].run("audit", "verify")
    assert refused.returncode != 0 and refused.stdout == ""
    assert "audit-checkpoints.key is missing: run hotline db upgrade" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    site.stop()
    start = site.operator("api")
    assert start.returncode != 0
    assert "audit-checkpoints.key is missing" in start.stdout + start.stderr
    # A key others may read is refused the same way.
    key.write_bytes(saved)
    key.chmod(0o644)
    start = site.operator("api")
    assert start.returncode != 0 and "readable by others" in start.stdout + start.stderr
