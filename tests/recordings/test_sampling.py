"""QA sampling: per agent and per stratum, reproducible with a seed, never twice for a reviewer
unless asked, what is left out counted per reason."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlmodel import Session, select

from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import QASample, Recording, RecordingKind
from hotline.app.config import Settings
from recordings.ingest import ingest_recording
from recordings.sampling import (
    DELETED,
    DRAWN_BEFORE,
    IVR_ONLY,
    OUT_OF_PERIOD,
    REVIEWED,
    UNVERIFIED,
    Sample,
    draw_sample,
)
from recordings.scorecard import score_recording
from tests.conftest import Staff
from tests.recordings.helpers import LISTENER, recorded_call, write_wav
from tests.recordings.test_scorecard import CODES


def a_week_of_calls(db: Database, settings: Settings, staff: Staff) -> None:
    carer, biller = staff.actor("carer").agent_id, staff.actor("biller").agent_id
    for n in range(3):
        recorded_call(db, settings, f"carer-billing-{n}", agent_id=carer, category="billing")
    for n in range(2):
        recorded_call(db, settings, f"carer-network-{n}", agent_id=carer, category="network")
        recorded_call(db, settings, f"biller-{n}", agent_id=biller, category="billing")
        recorded_call(db, settings, f"abandoned-{n}", abandoned=True)
    recorded_call(db, settings, "callback-0", agent_id=carer, kind=RecordingKind.CALLBACK)
    # The caller's own message: no staff voice in it, so never QA material.
    write_wav(settings.recordings.root / "message.wav")
    message = str(settings.recordings.root / "message.wav")
    db.run(
        lambda s: ingest_recording(
            s, LISTENER, message, kind=RecordingKind.MESSAGE, root=settings.recordings.root
        )
    )


def draw(
    db: Database,
    reviewer: Actor,
    per_agent: int = 2,
    seed: int | None = 7,
    *,
    include_drawn: bool = False,
) -> Sample:
    now = utcnow()
    return db.run(
        lambda s: draw_sample(
            s,
            reviewer,
            since=now - timedelta(days=7),
            until=now + timedelta(minutes=1),
            per_agent=per_agent,
            seed=seed,
            include_drawn=include_drawn,
        )
    )


def test_the_sample_is_stratified_per_agent_and_per_category(
    db: Database, settings: Settings, staff: Staff
) -> None:
    a_week_of_calls(db, settings, staff)
    sample = draw(db, staff.actor("qa"))
    assert Counter(item.agent for item in sample.drawn) == {"carer": 2, "biller": 2, "-": 2}
    carers = [item.stratum for item in sample.drawn if item.agent == "carer"]
    assert len(set(carers)) == 2 and set(carers) <= {"billing", "network", "callback"}
    assert {item.stratum for item in sample.drawn if item.agent == "-"} == {"abandoned"}
    assert all(item.recording.kind != RecordingKind.MESSAGE.value for item in sample.drawn)


def test_the_same_seed_on_the_same_data_draws_the_same_recordings(
    db: Database, settings: Settings, staff: Staff
) -> None:
    a_week_of_calls(db, settings, staff)
    first = draw(db, staff.actor("qa"), seed=12345)
    second = draw(db, staff.actor("supervisor"), seed=12345)  # a reviewer with nothing drawn yet
    assert [i.recording.id for i in first.drawn] == [i.recording.id for i in second.drawn]
    assert first.seed == second.seed == 12345


def test_a_reviewer_never_gets_the_same_recording_twice(
    db: Database, settings: Settings, staff: Staff
) -> None:
    a_week_of_calls(db, settings, staff)
    qa = staff.actor("qa")
    seen: list[int | None] = []
    for _ in range(4):
        seen += [item.recording.id for item in draw(db, qa, seed=None).drawn]
    assert len(seen) == len(set(seen)) == 10  # every call recording once, then nothing more
    assert draw(db, qa).drawn == []


def test_the_same_seed_twice_draws_the_same_sample_and_says_it_is_a_repeat(
    db: Database, settings: Settings, staff: Staff
) -> None:
    a_week_of_calls(db, settings, staff)
    qa = staff.actor("qa")
    first = draw(db, qa, seed=99)
    second = draw(db, qa, seed=99)
    assert [i.recording.id for i in second.drawn] == [i.recording.id for i in first.drawn]
    assert (first.repeated, second.repeated) == (False, True)
    assert (second.since, second.until) == (first.since, first.until)
    with db.session() as session:
        rows = session.exec(select(QASample).where(QASample.seed == 99)).all()
    assert len(rows) == len(first.drawn)  # a repeat writes nothing twice
    # Another sample leaves out what the first drew, and says so.
    other = draw(db, qa, seed=100)
    assert not {i.recording.id for i in other.drawn} & {i.recording.id for i in first.drawn}
    assert other.excluded[DRAWN_BEFORE] == len(first.drawn)


def test_what_is_left_out_is_counted_per_reason(
    db: Database, settings: Settings, staff: Staff
) -> None:
    a_week_of_calls(db, settings, staff)
    carer = staff.actor("carer").agent_id
    recorded_call(db, settings, "old", agent_id=carer, created=utcnow() - timedelta(days=30))
    gone = recorded_call(db, settings, "gone", agent_id=carer)

    def delete(session: Session) -> None:
        row = session.get(Recording, gone.id)
        assert row is not None
        row.deleted_at = utcnow()
        session.add(row)

    db.run(delete)
    qa = staff.actor("qa")
    scored = recorded_call(db, settings, "scored", agent_id=carer).id or 0
    db.run(lambda s: score_recording(s, settings.qa, qa, scored, dict.fromkeys(CODES, 1.0)))
    sample = draw(db, qa, per_agent=20)
    assert sample.excluded == {
        OUT_OF_PERIOD: 1,
        IVR_ONLY: 1,
        DELETED: 1,
        UNVERIFIED: 0,
        REVIEWED: 1,
        DRAWN_BEFORE: 0,
    }
    assert len(sample.drawn) == 10
    again = draw(db, qa, per_agent=20, seed=8)
    assert (again.excluded[DRAWN_BEFORE], again.excluded[REVIEWED], again.drawn) == (10, 1, [])
    # Asked for, what was drawn or scored before is drawn again.
    included = draw(db, qa, per_agent=20, seed=9, include_drawn=True)
    assert len(included.drawn) == 11
    assert included.excluded[DRAWN_BEFORE] == included.excluded[REVIEWED] == 0
