"""References are numbered with the site's own key (the secrets folder), so two sites say
nothing about each other; a site upgraded from the unkeyed numbering keeps the references it
issued, and a new one that would land on an old one takes the next candidate."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlmodel import Session, select

from casebook import cases, site_secrets
from casebook.access import Actor
from casebook.db import Database
from casebook.errors import CasebookError
from casebook.models import Case
from casebook.reference import is_valid, reference_for_id
from hotline.app.config import Settings
from tests.conftest import with_site_keys


def register(db: Database, settings: Settings) -> Case:
    return db.run(
        lambda s: cases.register_complaint(
            s,
            settings,
            Actor.system("ivr"),
            caller_number="0910000001",
            uniqueid=uuid.uuid4().hex,
            draft_text="الفاتورة غير صحيحة",
        )
    )


def reference_key(settings: Settings) -> bytes:
    return site_secrets.load_key(settings.secrets, site_secrets.REFERENCE_KEY)


def test_cases_are_numbered_with_the_sites_key(db: Database, settings: Settings) -> None:
    key = reference_key(settings)
    registered = [register(db, settings) for _ in range(3)]
    for case in registered:
        assert case.id is not None
        assert case.reference == reference_for_id(case.id, key)


def test_two_sites_with_different_secrets_give_different_references_for_the_same_ids(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    other = with_site_keys(settings.model_copy(deep=True), tmp_path / "other-site")
    other.database.owner_url = None  # the other site is a SQLite file: no roles
    other.database.url = f"sqlite:///{tmp_path / 'other-site' / 'hotline.db'}"
    other_db = Database(other.database, create=True)
    try:
        ours = [register(db, settings) for _ in range(3)]
        theirs = [register(other_db, other) for _ in range(3)]
    finally:
        other_db.dispose()
    assert [c.id for c in ours] == [c.id for c in theirs]  # the same ids...
    assert all(a.reference != b.reference for a, b in zip(ours, theirs, strict=True))  # ...not


def test_a_reference_issued_before_the_key_is_kept_and_a_new_case_steps_around_it(
    db: Database, settings: Settings
) -> None:
    key = reference_key(settings)
    old = register(db, settings)
    old_id = old.id
    assert old_id is not None
    # As if the unkeyed numbering had given the old case what the keyed one gives the next id.
    taken = reference_for_id(old_id + 1, key)

    def issued_before(session: Session) -> None:
        stored = session.get(Case, old_id)
        assert stored is not None
        stored.reference = taken
        session.add(stored)

    db.run(issued_before)
    new = register(db, settings)
    assert new.id == old_id + 1
    assert new.reference == reference_for_id(new.id, key, 1) != taken
    assert is_valid(new.reference)
    with db.session() as s:
        references = set(s.exec(select(Case.reference)).all())
    assert references == {taken, new.reference}  # the old one as stored


def test_when_no_candidate_is_free_the_registration_says_so(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = reference_key(settings)
    old_id = register(db, settings).id
    assert old_id is not None

    def issued_before(session: Session) -> None:
        stored = session.get(Case, old_id)
        assert stored is not None
        stored.reference = reference_for_id(old_id + 1, key)
        session.add(stored)

    db.run(issued_before)
    monkeypatch.setattr(cases, "_REFERENCE_ATTEMPTS", 1)
    with pytest.raises(CasebookError, match="no free reference number for case"):
        register(db, settings)
    with db.session() as s:
        assert len(s.exec(select(Case)).all()) == 1  # nothing half registered


def test_a_site_without_its_reference_key_registers_nothing(
    db: Database, settings: Settings
) -> None:
    site_secrets.key_path(settings.secrets, site_secrets.REFERENCE_KEY).unlink()
    with pytest.raises(site_secrets.SiteSecretError, match="run hotline db upgrade"):
        register(db, settings)
    with db.session() as s:
        assert s.exec(select(Case)).all() == []
